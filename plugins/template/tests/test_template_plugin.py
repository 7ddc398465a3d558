"""Registration through minicnn's hooks, the declared entry point, and ``minicnn plugins``."""

import tomllib
from pathlib import Path

import pytest
from minicnn import PluginError
from minicnn.cli import main
from minicnn.registry import Registry, set_registry

import minicnn_swish
from minicnn_swish import Swish, plugin
from minicnn_swish.swish_cpu import SwishCPU
from minicnn_swish.swish_cuda import SwishCUDA


@pytest.fixture
def registry():
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="swish")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_registers_the_layer_and_its_kernels(registry):
    assert registry.layers["Swish"] == (Swish, "swish")
    assert isinstance(registry.kernel("Swish", "cpu"), SwishCPU)
    assert isinstance(registry.kernel("Swish", "cuda"), SwishCUDA)
    assert registry.devices_for("Swish") == ["cpu", "cuda"]


def test_loading_the_plugin_does_not_import_numba_cuda():
    """Registering the GPU kernel is free on a CPU-only machine: numba.cuda loads with the
    device."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from minicnn.registry import Registry\n"
            "from minicnn_swish import plugin\n"
            "Registry(load_entry_points=False).register(plugin, name='swish')\n"
            "print(sorted(m for m in sys.modules if m.startswith('numba.cuda')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(minicnn_swish.__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_registering_twice_is_refused(registry):
    with pytest.raises(PluginError, match="already registered"):
        registry.register(plugin, name="swish")


def test_minicnn_plugins_lists_swish(registry, capsys):
    assert main(["plugins"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.split()[:1] == ["Swish"])
    assert line.split()[1:] == ["cpu,", "cuda", "swish"]


def test_entry_point_is_declared():
    project = tomllib.loads((Path(minicnn_swish.__file__).parents[1] /
                             "pyproject.toml").read_text())
    assert project["project"]["name"] == "minicnn-swish"
    assert "minicnn" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["minicnn"] == {"swish": "minicnn_swish.plugin"}
