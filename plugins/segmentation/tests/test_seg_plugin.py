"""Registration through minicnn's plugin hooks, and the ``minicnn plugins`` listing."""

import minicnn
import pytest
from minicnn import PluginError
from minicnn.cli import main
from minicnn.registry import Registry, set_registry

import minicnn_segmentation
from minicnn_segmentation import plugin


@pytest.fixture
def registry():
    """A fresh registry (built-ins, no entry points) with the plugin registered, made current."""
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="segmentation")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_registers_models_datasets_and_command(registry):
    assert registry.models["fcn8s"] == (minicnn_segmentation.fcn8s, "segmentation")
    assert registry.models["unet"] == (minicnn_segmentation.unet, "segmentation")
    assert registry.datasets["segshapes"][0] is minicnn_segmentation.SegShapes
    assert registry.datasets["voc_segmentation"][0] is minicnn_segmentation.VOCSegmentation
    command = registry.commands["segment"][0]
    assert isinstance(command, minicnn.Command) and command.name == "segment"
    model = registry.models["unet"][0](num_classes=3, in_channels=1)
    assert isinstance(model, minicnn.Model)


def test_registering_twice_is_refused(registry):
    with pytest.raises(PluginError, match="already registered"):
        registry.register(plugin, name="segmentation")


def test_unregister_removes_everything(registry):
    registry.unregister("segmentation")
    assert "fcn8s" not in registry.models and "segment" not in registry.commands


def test_minicnn_plugins_lists_the_models(registry, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    for name in ("fcn8s", "unet", "segshapes", "segment"):
        assert name in lines and lines[name].split()[-1] == "segmentation"


def test_entry_point_is_declared():
    import tomllib
    from pathlib import Path
    project = tomllib.loads((Path(minicnn_segmentation.__file__).parents[1] /
                             "pyproject.toml").read_text())
    assert project["project"]["name"] == "minicnn-segmentation"
    assert "minicnn" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["minicnn"] == {
        "segmentation": "minicnn_segmentation.plugin"}


def test_loaded_from_the_entry_point(tmp_path):
    """As if installed: a distribution whose entry point names the plugin module; a fresh
    ``python -m minicnn`` lists the models and runs ``minicnn segment --help``."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    dist = tmp_path / "minicnn_segmentation-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: minicnn-segmentation\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[minicnn]\nsegmentation = "
                                           "minicnn_segmentation.plugin\n")
    root = Path(minicnn_segmentation.__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(root), env.get("PYTHONPATH", "")])
    listing = subprocess.run([sys.executable, "-m", "minicnn", "plugins"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()
             if line.startswith("  ")}
    assert lines["fcn8s"].split()[-1] == "segmentation"
    assert lines["unet"].split()[-1] == "segmentation"
    assert lines["segment"].split()[-1] == "segmentation"
    helped = subprocess.run([sys.executable, "-m", "minicnn", "segment", "--help"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--overlay" in helped.stdout
