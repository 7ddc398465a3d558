"""The plugin registry: a pluggy PluginManager plus the tables of what plugins registered.

Built-in layers, kernels and losses are plugins like any other, registered from ``BUILTIN_PLUGINS``;
third-party plugins come from the entry-point group ``minicnn``. Set
``MINICNN_DISABLE_PLUGIN_AUTOLOAD=1`` (or build a ``Registry(load_entry_points=False)``) to skip
entry points, as tests do.
"""

import importlib
import os
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import PluginError
from .kernel import Kernel

PROJECT = "minicnn"
hookimpl = pluggy.HookimplMarker(PROJECT)

# Module names of the built-in plugins, in registration order (layers before their kernels).
BUILTIN_PLUGINS = [
    "minicnn.layers.activation",
    "minicnn.layers.activation_cpu",
    "minicnn.layers.linear",
    "minicnn.layers.linear_cpu",
    "minicnn.layers.shape",
    "minicnn.layers.shape_cpu",
    "minicnn.layers.merge",
    "minicnn.layers.merge_cpu",
    "minicnn.layers.conv",
    "minicnn.layers.conv_cpu",
    "minicnn.layers.conv_transpose",
    "minicnn.layers.conv_transpose_cpu",
    "minicnn.layers.pad",
    "minicnn.layers.pad_cpu",
    "minicnn.layers.pool",
    "minicnn.layers.pool_cpu",
    "minicnn.layers.norm",
    "minicnn.layers.norm_cpu",
    "minicnn.layers.dropout",
    "minicnn.layers.dropout_cpu",
    "minicnn.layers.softmax",
    "minicnn.layers.softmax_cpu",
    "minicnn.losses",
    "minicnn.losses_cpu",
    "minicnn.data.plugin",
    "minicnn.zoo",
    "minicnn.commands.info",
    "minicnn.commands.train",
    "minicnn.commands.check_plugin",
]

# Kernel modules of the "cuda" device: registered by ``Registry.enable_device("cuda")`` the first
# time a registry is used on that device (they import numba.cuda, which a CPU-only run never does).
CUDA_PLUGINS = [
    "minicnn.layers.activation_cuda",
    "minicnn.layers.linear_cuda",
    "minicnn.layers.shape_cuda",
    "minicnn.layers.merge_cuda",
    "minicnn.layers.conv_cuda",
    "minicnn.layers.conv_transpose_cuda",
    "minicnn.layers.pad_cuda",
    "minicnn.layers.pool_cuda",
    "minicnn.layers.norm_cuda",
    "minicnn.layers.dropout_cuda",
    "minicnn.layers.softmax_cuda",
    "minicnn.losses_cuda",
]

# hook name -> table it fills
_TABLE_HOOKS = ("minicnn_layers", "minicnn_kernels", "minicnn_losses", "minicnn_models",
                "minicnn_datasets", "minicnn_commands")


class Registry:
    """What every plugin registered: layers, kernels per device, losses, models, datasets,
    commands."""

    def __init__(self, *, builtins=True, load_entry_points=None):
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.layers = {}      # type_name -> (class, plugin name)
        self.kernels = {}     # (type_name, device) -> (kernel, plugin name)
        self.losses = {}      # type_name -> (class, plugin name)
        self.models = {}      # name -> (factory, plugin name)
        self.datasets = {}    # name -> (factory, plugin name)
        self.commands = {}    # name -> (Command, plugin name)
        self.distributions = {}   # plugin name -> installed distribution (package) that provides it
        self._builtins = builtins
        self._devices_enabled = set()
        self._device_hooks_called = set()   # (plugin name, device): minicnn_device_kernels ran
        if builtins:
            for module_name in BUILTIN_PLUGINS:
                self.register(importlib.import_module(module_name), name=module_name)
        if load_entry_points is None:
            load_entry_points = not os.environ.get("MINICNN_DISABLE_PLUGIN_AUTOLOAD")
        if load_entry_points:
            self.load_entry_points()

    # -- registration ---------------------------------------------------------------------------

    def load_entry_points(self, group=PROJECT):
        """Register every plugin installed under the entry-point group; a broken one is a
        PluginError."""
        for ep in entry_points(group=group):
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"failed to import {ep.value!r}: {exc!r}", plugin=ep.name,
                                  hook="import") from exc
            self.register(plugin, name=ep.name)
            dist = getattr(ep, "dist", None)
            if dist is not None:
                self.distributions[ep.name] = dist.metadata["Name"]

    def enable_device(self, device):
        """Load the kernels of a lazily loaded device (``"cuda"``) the first time it is used.

        First the built-in kernel modules of ``"cuda"`` (``CUDA_PLUGINS``) are registered, then the
        ``minicnn_device_kernels(device)`` hook of every registered plugin is called, in
        registration order, once per plugin and device (a plugin registered later is asked at
        registration). ``"cpu"`` needs nothing and a device already enabled costs a set lookup.

        The caller has created the device already (``minicnn.device.get_device``), so numba.cuda is
        importable. A kernel module that fails to import, or a hook that raises, is a PluginError
        naming the plugin and the hook; that plugin's kernels for the device are not added, the
        device stays not enabled and the next call tries the plugins not yet asked again."""
        if device == "cpu" or device in self._devices_enabled:
            return
        if device == "cuda" and self._builtins:
            for module_name in CUDA_PLUGINS:
                if self.pm.get_plugin(module_name) is not None:
                    continue
                try:
                    module = importlib.import_module(module_name)
                except Exception as exc:
                    raise PluginError(f"failed to import {module_name!r}: {exc!r}",
                                      plugin=module_name, hook="import") from exc
                self.register(module, name=module_name)
        for name, plugin in list(self.pm.list_name_plugin()):
            if plugin is None or (name, device) in self._device_hooks_called:
                continue
            self._add_staged(self._collect(plugin, name, devices=(device,), tables=False), name)
            self._device_hooks_called.add((name, device))
        self._devices_enabled.add(device)

    def provider_of(self, type_name):
        """(plugin name, distribution name or None) that registered a layer type, or None."""
        entry = self.layers.get(type_name)
        if entry is None:
            return None
        return entry[1], self.distributions.get(entry[1])

    def register(self, plugin, name=None):
        """Register one plugin (a module or object with hook implementations); all or nothing."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if self.pm.get_plugin(name) is not None or self.pm.is_registered(plugin):
            raise PluginError("a plugin with this name is already registered", plugin=name)
        try:
            self.pm.register(plugin, name=name)   # validates signatures of known hooks
        except Exception as exc:
            raise PluginError(str(exc), plugin=name) from exc
        try:
            self.pm.check_pending()                # a hook name no spec knows (a typo)
        except Exception as exc:
            self.pm.unregister(plugin)
            raise PluginError(str(exc), plugin=name) from exc
        devices = sorted(self._devices_enabled)   # asked now: they will not be enabled again
        try:
            staged = self._collect(plugin, name, devices=devices)
        except Exception:
            self.pm.unregister(plugin)
            raise
        self._add_staged(staged, name)
        self._device_hooks_called.update((name, device) for device in devices)
        return plugin

    @staticmethod
    def _add_staged(staged, name):
        for table, key, value in staged:
            table[key] = (value, name)

    def unregister(self, name):
        """Remove a plugin and everything it registered."""
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            raise PluginError("no plugin of this name is registered", plugin=name)
        self.pm.unregister(plugin)
        for table in (self.layers, self.kernels, self.losses, self.models, self.datasets,
                      self.commands):
            for key in [k for k, (_, owner) in table.items() if owner == name]:
                del table[key]
        self._device_hooks_called = {(n, d) for n, d in self._device_hooks_called if n != name}

    def _collect(self, plugin, name, devices=(), tables=True):
        """Call the plugin's own hook implementations (the table hooks, when ``tables``, and
        ``minicnn_device_kernels`` for each of ``devices``); return (table, key, value) rows to
        add."""
        staged = []
        pending = {}   # (id(table), key) -> owner, for duplicates inside one plugin
        calls = [(hook_name, {}) for hook_name in (_TABLE_HOOKS if tables else ())]
        calls += [("minicnn_device_kernels", {"device": device}) for device in devices]
        for hook_name, kwargs in calls:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
                    rows = list(self._rows(hook_name, result, kwargs.get("device")))
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(f"raised {exc!r}", plugin=name, hook=hook_name) from exc
                for table, key, value, override in rows:
                    owner = pending.get((id(table), key))
                    if owner is None and key in table and not override:
                        owner = table[key][1]
                    if owner is not None:
                        raise PluginError(f"{_describe(key)} is already registered by plugin "
                                          f"'{owner}'", plugin=name, hook=hook_name)
                    pending[(id(table), key)] = name
                    staged.append((table, key, value))
        return staged

    def _rows(self, hook_name, result, device=None):
        if result is None:
            return
        if hook_name in ("minicnn_layers", "minicnn_losses"):
            for cls in result:
                type_name = getattr(cls, "type_name", None) or cls.__name__
                yield self.layers, type_name, cls, False
                if hook_name == "minicnn_losses":
                    yield self.losses, type_name, cls, False
        elif hook_name in ("minicnn_kernels", "minicnn_device_kernels"):
            for kernel in result:
                if isinstance(kernel, type):
                    kernel = kernel()
                if not isinstance(kernel, Kernel) or not kernel.layer:
                    raise ValueError(f"{kernel!r} is not a minicnn.Kernel with a layer name")
                if device is not None and kernel.device != device:
                    raise ValueError(f"{kernel!r} is a '{kernel.device}' kernel, returned for "
                                     f"device '{device}'")
                yield self.kernels, (kernel.layer, kernel.device), kernel, kernel.override
        elif hook_name == "minicnn_commands":
            for command in result:
                yield self.commands, command.name, command, False
        else:
            table = self.models if hook_name == "minicnn_models" else self.datasets
            for key, factory in dict(result).items():
                yield table, key, factory, False

    # -- lookup ---------------------------------------------------------------------------------

    def kernel(self, type_name, device):
        """The kernel for a layer type on a device, or None."""
        entry = self.kernels.get((type_name, device))
        return entry[0] if entry else None

    def devices_for(self, type_name):
        """Devices that have a kernel for this layer type, sorted."""
        return sorted(dev for (name, dev) in self.kernels if name == type_name)

    def plugin_names(self):
        return [name for name, _ in self.pm.list_name_plugin()]


def _describe(key):
    if isinstance(key, tuple):
        return f"kernel for layer '{key[0]}' on device '{key[1]}'"
    return f"name '{key}'"


_default = None


def get_registry():
    """The process-wide registry, built on first use (built-ins, then entry points)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def set_registry(registry):
    """Replace the process-wide registry (tests use this); returns the previous one."""
    global _default
    previous, _default = _default, registry
    return previous
