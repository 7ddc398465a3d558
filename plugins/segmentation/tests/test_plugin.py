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
