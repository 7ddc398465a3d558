"""Registration through minicnn's plugin hooks, and the ``minicnn style`` command from an
installed entry point."""

import minicnn
import pytest
from minicnn import PluginError
from minicnn.cli import main
from minicnn.registry import Registry, set_registry

import minicnn_style_transfer
from minicnn_style_transfer import plugin

LAYERS = ("GramMatrix", "StyleLoss", "ContentLoss", "TotalVariationLoss")


@pytest.fixture
def registry():
    """A fresh registry (built-ins, no entry points) with the plugin registered, made current."""
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="style_transfer")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_registers_layers_losses_kernels_and_command(registry):
    for name in LAYERS:
        assert registry.layers[name] == (getattr(minicnn_style_transfer, name), "style_transfer")
        assert registry.kernel(name, "cpu") is not None
        assert registry.devices_for(name) == ["cpu"]
    assert set(registry.losses) >= {"StyleLoss", "ContentLoss", "TotalVariationLoss"}
    assert "GramMatrix" not in registry.losses
    command = registry.commands["style"][0]
    assert isinstance(command, minicnn.Command) and command.name == "style"


def test_registering_twice_is_refused_but_ensure_registered_is_idempotent(registry):
    with pytest.raises(PluginError, match="already registered"):
        registry.register(plugin, name="style_transfer")
    assert plugin.ensure_registered(registry) is registry


def test_unregister_removes_everything(registry):
    registry.unregister("style_transfer")
    assert "GramMatrix" not in registry.layers and "style" not in registry.commands
    assert registry.kernel("StyleLoss", "cpu") is None


def test_minicnn_plugins_lists_the_layers(registry, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    for name in ("GramMatrix", "StyleLoss", "style"):
        assert name in lines and "style_transfer" in lines[name].split()


def test_every_layer_has_a_docstring_with_its_formula():
    for name in LAYERS:
        doc = getattr(minicnn_style_transfer, name).__doc__ or ""
        assert "(N, C" in doc or "(N, C, H, W)" in doc or "shape" in doc, name


def test_entry_point_is_declared():
    import tomllib
    from pathlib import Path
    project = tomllib.loads((Path(minicnn_style_transfer.__file__).parents[1] /
                             "pyproject.toml").read_text())
    assert project["project"]["name"] == "minicnn-style-transfer"
    assert "minicnn" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["minicnn"] == {
        "style_transfer": "minicnn_style_transfer.plugin"}


def test_loaded_from_the_entry_point(tmp_path):
    """As if installed: a distribution whose entry point names the plugin module; a fresh
    ``python -m minicnn style --help`` finds the command."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    dist = tmp_path / "minicnn_style_transfer-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: minicnn-style-transfer\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[minicnn]\nstyle_transfer = "
                                           "minicnn_style_transfer.plugin\n")
    root = Path(minicnn_style_transfer.__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(root), env.get("PYTHONPATH", "")])
    helped = subprocess.run([sys.executable, "-m", "minicnn", "style", "--help"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    for option in ("--size", "--iterations", "--weights", "--style-layers", "--optimizer",
                   "--device", "--snapshot-every", "--scales", "--dry-run"):
        assert option in helped.stdout


def test_every_layer_passes_every_conformance_check_on_the_cpu(registry):
    """What ``minicnn check-plugin style_transfer`` runs, on each layer's own cases: the float32
    forward against the float64 loops of :mod:`minicnn_style_transfer.references`, gradcheck,
    layout, repeat, state, and the declared refusals (bad hyper-parameters, ranks, targets).
    Every column passes in full; the cuda column is test_style_cuda.py's (simulator)."""
    from minicnn import conformance
    report = conformance.check_plugin("style_transfer", registry, devices=())
    assert sorted(r.type_name for r in report.layers) == sorted(LAYERS)
    for layer in report.layers:
        assert layer.cases_from.endswith(" (class)"), report.format()
        assert layer.failed == [], report.format()
        for check in conformance.CHECKS[:-1]:
            assert layer.status(check) == conformance.PASS and not layer.partial(check), \
                (layer.type_name, check, report.format(verbose=True))
        assert layer.status("cuda") == conformance.SKIP


def test_check_plugin_finds_the_plugin_by_its_package_name(registry):
    """``minicnn check-plugin minicnn_style_transfer`` (the package, not its ``.plugin``
    module): the registered plugin, or, where it is not registered, its plugin module."""
    from minicnn import conformance
    assert conformance.resolve_plugin("minicnn_style_transfer", registry) == "style_transfer"
    fresh = Registry(load_entry_points=False)
    name = conformance.resolve_plugin("minicnn_style_transfer", fresh)
    assert name == "minicnn_style_transfer.plugin"
    assert all(fresh.layers[t][1] == name for t in LAYERS)
