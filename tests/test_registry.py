"""The plugin registry: built-ins through hooks, duplicates, broken plugins, entry points, the
CLI."""

import sys
import textwrap

import numpy as np
import pytest

import minicnn
from minicnn import Kernel, Layer, PluginError, hookimpl
from minicnn.cli import main
from minicnn.registry import BUILTIN_PLUGINS, Registry


class Double(Layer):
    """y = 2x, a stand-in third-party layer."""

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]


class DoubleCPU(Kernel):
    layer, device = "Double", "cpu"

    def forward(self, layer, xs, ys, ws):
        np.multiply(xs[0], 2, out=ys[0])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            np.multiply(gys[0], 2, out=gxs[0])


class DoublePlugin:
    @hookimpl
    def minicnn_layers(self):
        return [Double]

    @hookimpl
    def minicnn_kernels(self):
        return [DoubleCPU]


def test_builtins_register_through_hooks():
    registry = Registry(load_entry_points=False)
    assert set(BUILTIN_PLUGINS) <= set(registry.plugin_names())
    assert registry.layers["ReLU"][1] == "minicnn.layers.activation"
    assert registry.kernel("ReLU", "cpu").layer == "ReLU"
    assert registry.devices_for("Linear") == ["cpu"]


def test_third_party_layer_runs_in_a_model():
    registry = Registry(load_entry_points=False)
    registry.register(DoublePlugin(), name="double-plugin")
    previous = minicnn.registry.set_registry(registry)
    try:
        model = minicnn.nn.Sequential(Double(), minicnn.nn.ReLU())
        x = np.array([[-1.0, 2.0]], np.float32)
        np.testing.assert_array_equal(model(x), [[0.0, 4.0]])
        np.testing.assert_array_equal(model.backward(np.ones((1, 2), np.float32)), [[0.0, 2.0]])
        assert minicnn.nn.Double is Double     # nn finds plugin layers through the registry
    finally:
        minicnn.registry.set_registry(previous)


def test_duplicate_layer_names_both_plugins():
    registry = Registry(load_entry_points=False)

    class Clash:
        @hookimpl
        def minicnn_layers(self):
            class ReLU(Layer):
                pass
            return [ReLU]

    with pytest.raises(PluginError, match=r"plugin 'clash'.*'ReLU'.*minicnn\.layers\.activation"):
        registry.register(Clash(), name="clash")
    assert registry.layers["ReLU"][1] == "minicnn.layers.activation"
    assert "clash" not in registry.plugin_names()


def test_kernel_override_needs_explicit_flag():
    registry = Registry(load_entry_points=False)

    class FastReLU(Kernel):
        layer, device = "ReLU", "cpu"

    class Plain:
        @hookimpl
        def minicnn_kernels(self):
            return [FastReLU]

    with pytest.raises(PluginError, match="already registered"):
        registry.register(Plain(), name="plain")

    class Overriding(Kernel):
        layer, device, override = "ReLU", "cpu", True

    class Explicit:
        @hookimpl
        def minicnn_kernels(self):
            return [Overriding]

    registry.register(Explicit(), name="explicit")
    assert isinstance(registry.kernel("ReLU", "cpu"), Overriding)
    assert registry.kernels[("ReLU", "cpu")][1] == "explicit"


def test_hook_that_raises_leaves_registry_clean():
    registry = Registry(load_entry_points=False)
    before = (dict(registry.layers), dict(registry.kernels))

    class Broken:
        @hookimpl
        def minicnn_layers(self):
            return [Double]

        @hookimpl
        def minicnn_kernels(self):
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match=r"plugin 'broken', hook 'minicnn_kernels'.*boom"):
        registry.register(Broken(), name="broken")
    assert (registry.layers, registry.kernels) == before
    assert "broken" not in registry.plugin_names()


def test_unknown_hook_name_is_a_plugin_error():
    registry = Registry(load_entry_points=False)

    class Typo:
        @hookimpl
        def minicnn_layer(self):   # missing "s"
            return []

    with pytest.raises(PluginError, match="typo"):
        registry.register(Typo(), name="typo")


def test_unregister_removes_everything():
    registry = Registry(load_entry_points=False)
    registry.register(DoublePlugin(), name="double-plugin")
    registry.unregister("double-plugin")
    assert "Double" not in registry.layers and ("Double", "cpu") not in registry.kernels


def _fake_distribution(tmp_path, module_source, value):
    (tmp_path / "fake_minicnn_plugin.py").write_text(textwrap.dedent(module_source))
    dist = tmp_path / "fake_minicnn_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-minicnn-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[minicnn]\nfake = {value}\n")


def test_entry_point_plugins_load_and_can_be_switched_off(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, """
        import minicnn

        class Swishy(minicnn.Layer):
            def infer_shapes(self, in_shapes):
                return [tuple(in_shapes[0])]

        @minicnn.hookimpl
        def minicnn_layers():
            return [Swishy]
    """, "fake_minicnn_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MINICNN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    registry = Registry()
    assert registry.layers["Swishy"][1] == "fake"
    monkeypatch.setenv("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "Swishy" not in Registry().layers
    sys.modules.pop("fake_minicnn_plugin", None)


def test_entry_point_that_fails_to_import(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "raise ImportError('needs a missing library')\n",
                       "fake_minicnn_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"plugin 'fake', hook 'import'.*missing library"):
        Registry(load_entry_points=True)
    sys.modules.pop("fake_minicnn_plugin", None)


def test_cli_plugins_lists_layers_with_devices(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "minicnn.layers.activation" in out
    line = next(l for l in out.splitlines() if l.strip().startswith("Linear "))
    assert "cpu" in line


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "plugins" in capsys.readouterr().out


def test_every_hook_is_documented():
    from minicnn import hookspecs
    names = [n for n in dir(hookspecs) if n.startswith("minicnn_")]
    assert len(names) >= 6
    for name in names:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert ":return:" in doc, f"hook {name} must document what it returns"


# -- kernels loaded with their device (minicnn_device_kernels) -------------------------------------

class DoubleGPU(Kernel):
    """A stand-in "cuda" kernel (plain Python: these tests never import numba.cuda)."""

    layer, device = "Double", "cuda"


class LazyGPUPlugin:
    """Registers Double and its CPU kernel at once, its GPU kernel only when "cuda" is used."""

    def __init__(self, kernels=(DoubleGPU,), error=None):
        self.calls = []
        self.kernels, self.error = list(kernels), error

    @hookimpl
    def minicnn_device_kernels(self, device):
        self.calls.append(device)
        if self.error is not None:
            raise self.error
        return self.kernels if device == "cuda" else []


def _lazy_registry(*plugins):
    """No built-ins: enabling "cuda" then imports none of minicnn's own CUDA modules."""
    registry = Registry(builtins=False, load_entry_points=False)
    registry.register(DoublePlugin(), name="double-plugin")
    for name, plugin in plugins:
        registry.register(plugin, name=name)
    return registry


def test_device_kernels_are_asked_for_once_when_the_device_is_enabled():
    lazy = LazyGPUPlugin()
    registry = _lazy_registry(("lazy", lazy))
    assert lazy.calls == [] and registry.kernel("Double", "cuda") is None
    registry.enable_device("cpu")                   # the executor does this on every build
    assert lazy.calls == []
    registry.enable_device("cuda")
    assert lazy.calls == ["cuda"]
    assert isinstance(registry.kernel("Double", "cuda"), DoubleGPU)
    assert registry.kernels[("Double", "cuda")][1] == "lazy"
    assert registry.devices_for("Double") == ["cpu", "cuda"]
    registry.enable_device("cuda")
    assert lazy.calls == ["cuda"]

    later = LazyGPUPlugin(kernels=[])               # registered after: asked at registration
    registry.register(later, name="later")
    assert later.calls == ["cuda"]
    registry.enable_device("cuda")
    assert (lazy.calls, later.calls) == (["cuda"], ["cuda"])

    registry.unregister("lazy")
    assert registry.kernel("Double", "cuda") is None
    registry.register(lazy, name="lazy")            # registered again: asked again
    assert lazy.calls == ["cuda", "cuda"] and registry.kernel("Double", "cuda") is not None


def test_device_hook_without_the_device_argument_and_other_devices():
    class NoArgument:
        @hookimpl
        def minicnn_device_kernels(self):
            return [DoubleGPU]

    registry = _lazy_registry(("no-argument", NoArgument()))
    registry.enable_device("cuda")
    assert registry.kernels[("Double", "cuda")][1] == "no-argument"
    lazy = LazyGPUPlugin()
    registry = _lazy_registry(("lazy", lazy))
    registry.enable_device("opencl")                # any device but "cpu" is asked for
    assert lazy.calls == ["opencl"] and registry.devices_for("Double") == ["cpu"]


def test_failing_device_hook_is_a_plugin_error_and_adds_nothing():
    broken = LazyGPUPlugin(error=RuntimeError("no GPU library"))
    registry = _lazy_registry(("broken-gpu", broken))
    assert "Double" in registry.layers               # registering it called no device hook
    with pytest.raises(PluginError, match=r"plugin 'broken-gpu', hook 'minicnn_device_kernels'"
                                          r".*no GPU library"):
        registry.enable_device("cuda")
    assert registry.kernel("Double", "cuda") is None
    assert "broken-gpu" in registry.plugin_names()   # its layer and CPU kernel stay
    with pytest.raises(PluginError, match="broken-gpu"):
        registry.enable_device("cuda")               # not enabled: the next use says it again
    assert broken.calls == ["cuda", "cuda"]


@pytest.mark.parametrize("kernels, message", [
    ([DoubleCPU], r"'cpu' kernel, returned for device 'cuda'"),
    ([object()], r"is not a minicnn\.Kernel"),
])
def test_device_hook_returning_the_wrong_kernels_is_a_plugin_error(kernels, message):
    registry = _lazy_registry(("wrong", LazyGPUPlugin(kernels=kernels)))
    with pytest.raises(PluginError, match=r"plugin 'wrong', hook 'minicnn_device_kernels'.*"
                                          + message):
        registry.enable_device("cuda")
    assert registry.devices_for("Double") == ["cpu"]


def test_device_kernel_clash_names_both_plugins_and_late_registration_is_all_or_nothing():
    registry = _lazy_registry(("first", LazyGPUPlugin()))
    registry.enable_device("cuda")
    with pytest.raises(PluginError, match=r"plugin 'second', hook 'minicnn_device_kernels'.*"
                                          r"'Double' on device 'cuda'.*plugin 'first'"):
        registry.register(LazyGPUPlugin(), name="second")
    assert "second" not in registry.plugin_names()
    assert registry.kernels[("Double", "cuda")][1] == "first"

    class BrokenLate(LazyGPUPlugin):
        @hookimpl
        def minicnn_layers(self):
            class Triple(Double):
                """y = 2x again, another name."""
            return [Triple]

    with pytest.raises(PluginError, match="broken-late"):
        registry.register(BrokenLate(error=RuntimeError("boom")), name="broken-late")
    assert "Triple" not in registry.layers and "broken-late" not in registry.plugin_names()


LAZY_PLUGIN_MODULE = '''
import numpy as np
import minicnn

CALLS = []


class Triple(minicnn.Layer):
    """y = 3x."""

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]


class TripleCPU(minicnn.Kernel):
    layer, device = "Triple", "cpu"

    def forward(self, layer, xs, ys, ws):
        np.multiply(xs[0], 3, out=ys[0])


@minicnn.hookimpl
def minicnn_layers():
    return [Triple]


@minicnn.hookimpl
def minicnn_kernels():
    return [TripleCPU]


@minicnn.hookimpl
def minicnn_device_kernels(device):
    CALLS.append(device)
    from fake_gpu_module import TripleGPU      # the plugin's GPU module: imports numba.cuda
    return [TripleGPU]
'''

LAZY_GPU_MODULE = '''
import minicnn
from numba import cuda  # noqa: F401


class TripleGPU(minicnn.Kernel):
    layer, device = "Triple", "cuda"
'''

LAZY_SCRIPT = '''
import sys
import numpy as np
import minicnn
from minicnn.registry import Registry, set_registry
import fake_lazy_plugin

registry = Registry(load_entry_points=False)
registry.register(fake_lazy_plugin, name="lazy")
set_registry(registry)
model = minicnn.Sequential(fake_lazy_plugin.Triple(), minicnn.nn.ReLU())
assert np.array_equal(model(np.array([[-1.0, 2.0]], np.float32)), [[0.0, 6.0]])
loaded = sorted(m for m in sys.modules if m.startswith("numba.cuda") or m == "fake_gpu_module")
print("cpu:", loaded, fake_lazy_plugin.CALLS)
if sys.argv[1:] == ["cuda"]:
    model.to("cuda")           # the simulator: the device hooks run, the GPU module is imported
    print("cuda:", "fake_gpu_module" in sys.modules, fake_lazy_plugin.CALLS,
          type(registry.kernel("Triple", "cuda")).__name__)
'''


def _run_lazy_script(tmp_path, *args):
    import os
    import subprocess
    (tmp_path / "fake_lazy_plugin.py").write_text(LAZY_PLUGIN_MODULE)
    (tmp_path / "fake_gpu_module.py").write_text(LAZY_GPU_MODULE)
    env = dict(os.environ, MINICNN_DISABLE_PLUGIN_AUTOLOAD="1", NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", LAZY_SCRIPT, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_registering_a_plugin_with_a_device_hook_does_not_import_numba_cuda(tmp_path):
    """``import minicnn``, registering the plugin and running a model on the CPU leave numba.cuda
    and the plugin's GPU module unimported; ``model.to("cuda")`` (numba's simulator) calls the
    hook once and registers the kernel."""
    lines = _run_lazy_script(tmp_path, "cuda")
    assert lines[0] == "cpu: [] []"
    assert lines[1] == "cuda: True ['cuda'] TripleGPU"
