"""Registration through minicnn's plugin hooks, the entry point, and ``minicnn plugins``."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import minicnn
import pytest
from minicnn import PluginError
from minicnn.cli import main
from minicnn.registry import Registry, set_registry

import minicnn_saliency
from minicnn_saliency import plugin


@pytest.fixture
def registry():
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="saliency")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_registers_the_command(registry, capsys):
    command, owner = registry.commands["saliency"]
    assert isinstance(command, minicnn.Command) and owner == "saliency"
    assert main(["plugins"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ")}
    assert lines["saliency"].split()[-1] == "saliency"


def test_registering_twice_is_refused_and_unregister_cleans_up(registry):
    with pytest.raises(PluginError, match="already registered"):
        registry.register(plugin, name="saliency")
    registry.unregister("saliency")
    assert "saliency" not in registry.commands


def test_entry_point_is_declared():
    root = Path(minicnn_saliency.__file__).parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "minicnn-saliency" and "minicnn" in project["dependencies"]
    assert project["entry-points"]["minicnn"] == {"saliency": "minicnn_saliency.plugin"}


def test_loaded_from_the_entry_point(tmp_path):
    """As if installed: a fresh ``python -m minicnn saliency --help`` finds the command."""
    dist = tmp_path / "minicnn_saliency-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: minicnn-saliency\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[minicnn]\nsaliency = minicnn_saliency.plugin\n")
    root = Path(minicnn_saliency.__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(root), env.get("PYTHONPATH", "")])
    helped = subprocess.run([sys.executable, "-m", "minicnn", "saliency", "--help"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "--method" in helped.stdout and "{cam,gradcam,gradient}" in helped.stdout
