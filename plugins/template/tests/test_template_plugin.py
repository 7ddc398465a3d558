"""Registration through minicnn's hooks (the GPU kernel lazily, with the device), the declared
entry point, and ``minicnn plugins``."""

import tomllib
from pathlib import Path

import pytest
from minicnn import PluginError
from minicnn.cli import main
from minicnn.registry import Registry, set_registry

import minicnn_swish
from minicnn_swish import Swish, plugin
from minicnn_swish.swish_cpu import SwishCPU


@pytest.fixture
def registry():
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="swish")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_registers_the_layer_and_its_cpu_kernel(registry):
    """The GPU kernel comes with the "cuda" device (``minicnn_device_kernels``, checked in
    test_template_cuda.py under the simulator): until then only the CPU kernel is registered."""
    assert registry.layers["Swish"] == (Swish, "swish")
    assert isinstance(registry.kernel("Swish", "cpu"), SwishCPU)
    assert registry.kernel("Swish", "cuda") is None
    assert registry.devices_for("Swish") == ["cpu"]
    assert plugin.minicnn_device_kernels("opencl") == []     # no kernels for other devices


def test_loading_the_plugin_does_not_import_numba_cuda():
    """Registering the plugin and running it on the CPU never imports the GPU module (nor
    numba.cuda): it loads with the "cuda" device."""
    import subprocess
    import sys
    code = ("import sys\n"
            "import numpy as np\n"
            "from minicnn.registry import Registry, set_registry\n"
            "from minicnn_swish import Swish, plugin\n"
            "registry = Registry(load_entry_points=False)\n"
            "registry.register(plugin, name='swish')\n"
            "set_registry(registry)\n"
            "Swish(2)(np.ones((1, 2, 3), np.float32))\n"        # and a run on the CPU
            "print(sorted(m for m in sys.modules if m.startswith('numba.cuda') or "
            "m == 'minicnn_swish.swish_cuda'))\n")
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
    assert line.split()[1:] == ["cpu", "swish"]       # the cuda kernel loads with the device


def test_entry_point_is_declared():
    project = tomllib.loads((Path(minicnn_swish.__file__).parents[1] /
                             "pyproject.toml").read_text())
    assert project["project"]["name"] == "minicnn-swish"
    assert "minicnn" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["minicnn"] == {"swish": "minicnn_swish.plugin"}
