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
