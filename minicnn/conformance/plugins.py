"""Which plugin to check, and which layer types are its: plugin names, distribution names,
entry-point names, module paths and package names resolve to a registered plugin."""

import importlib
from importlib.metadata import entry_points

from .. import errors
from ..registry import PROJECT

# the submodule of a package that holds a plugin's hooks, by convention (``minicnn_swish.plugin``)
PLUGIN_SUBMODULE = "plugin"


def resolve_plugin(name, registry):
    """The registered plugin name for ``name``, registering the plugin first when it is not.

    In order: a registered plugin name (``swish``, ``minicnn.layers.activation``); the
    distribution of a registered plugin (``minicnn-swish``, ``minicnn_swish``); the module path of
    a registered plugin (``minicnn_swish.plugin``) or the package holding it
    (``minicnn_swish``); an installed entry point of group ``minicnn`` not loaded into this
    registry (entry points off, ``MINICNN_DISABLE_PLUGIN_AUTOLOAD=1``) found by its name, its
    distribution, its module or that module's package, registered under the entry point's name;
    last an importable module, registered under its own name: the module itself when it has hook
    implementations, else its ``plugin`` submodule when it is a package that has one
    (``check-plugin my_package`` for ``my_package/plugin.py``).
    """
    if name in registry.plugin_names():
        return name
    wanted = _normalized(name)
    by_dist = [p for p, dist in registry.distributions.items()
               if dist and _normalized(dist) == wanted]
    if by_dist:
        return by_dist[0]
    for plugin_name in registry.plugin_names():
        if getattr(registry.pm.get_plugin(plugin_name), "__name__", None) == name:
            return plugin_name
    in_package = _registered_in_package(name, registry)
    if in_package is not None:
        return in_package
    from_entry_point = _from_entry_point(name, registry)
    if from_entry_point is not None:
        return from_entry_point
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        known = ", ".join(registry.plugin_names())
        raise errors.PluginError(f"no plugin of this name is registered and no module of this "
                                 f"name can be imported ({exc}); registered plugins: {known}",
                                 plugin=name) from exc
    module, plugin_name = _plugin_module(module, name)
    already = registered_name(module, registry)
    if already is not None:
        return already
    registry.register(module, name=plugin_name)
    return plugin_name


def _normalized(name):
    """A distribution name compared without case, ``-`` and ``_`` alike (``minicnn_swish`` finds
    ``minicnn-swish``; a dot stays a dot, so module paths never read as distributions)."""
    return str(name).lower().replace("_", "-")


def has_hooks(module):
    """True when ``module`` defines (or imports) at least one minicnn hook implementation."""
    marker = f"{PROJECT}_impl"
    return any(hasattr(getattr(module, attr, None), marker) for attr in dir(module))


def _registered_in_package(name, registry):
    """The registered plugin whose module is ``NAME.plugin``, or else the only registered plugin
    whose module lies inside package ``NAME``; None when there is none (or several)."""
    names = {n: getattr(registry.pm.get_plugin(n), "__name__", None)
             for n in registry.plugin_names()}
    exact = [n for n, module in names.items() if module == f"{name}.{PLUGIN_SUBMODULE}"]
    if exact:
        return exact[0]
    inside = [n for n, module in names.items()
              if isinstance(module, str) and module.startswith(name + ".")]
    return inside[0] if len(inside) == 1 else None


def _from_entry_point(name, registry):
    """Register and return the installed entry point (group ``minicnn``) that ``name`` names:
    by entry-point name, distribution name, module path or the package of its module."""
    wanted = _normalized(name)
    for ep in entry_points(group=PROJECT):
        module_path = ep.value.split(":")[0].strip()
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        if not (ep.name == name or module_path == name or module_path.rsplit(".", 1)[0] == name
                or (dist_name and _normalized(dist_name) == wanted)):
            continue
        registered = registry.pm.get_plugin(ep.name)
        if registered is not None:
            return ep.name
        try:
            plugin = ep.load()
        except Exception as exc:
            raise errors.PluginError(f"failed to import {ep.value!r}: {exc!r}", plugin=ep.name,
                                     hook="import") from exc
        plugin_name = registered_name(plugin, registry)
        if plugin_name is None:
            plugin_name = ep.name
            registry.register(plugin, name=plugin_name)
        if dist_name:
            registry.distributions.setdefault(plugin_name, dist_name)
        return plugin_name
    return None


def _plugin_module(module, name):
    """``(module to register, its name)``: the module itself when it has hooks (or is no
    package), else its ``plugin`` submodule when that imports and has hooks."""
    if has_hooks(module) or not hasattr(module, "__path__"):
        return module, name
    submodule = f"{module.__name__}.{PLUGIN_SUBMODULE}"
    try:
        plugin = importlib.import_module(submodule)
    except ModuleNotFoundError as exc:
        if exc.name != submodule:      # the submodule exists but one of its imports is missing
            raise errors.PluginError(f"failed to import {submodule!r}: {exc!r}",
                                     plugin=name, hook="import") from exc
        return module, name
    return (plugin, submodule) if has_hooks(plugin) else (module, name)


def registered_name(module, registry):
    """The name ``module`` (a plugin object) is registered under in ``registry``, or None."""
    names = [n for n in registry.plugin_names() if registry.pm.get_plugin(n) is module]
    return names[0] if names else None


def plugin_layer_types(registry, plugin):
    """Layer types a plugin registers, then those it only adds kernels for (sorted each)."""
    own = sorted(t for t, (_, owner) in registry.layers.items() if owner == plugin)
    kernels = sorted({t for (t, _), (_, owner) in registry.kernels.items()
                      if owner == plugin and t not in own and t in registry.layers})
    return own + kernels


def enable_available_devices(registry, devices):
    """Enable each of ``devices`` that is available here, so that the kernels plugins load with a
    device (``minicnn_device_kernels``) are registered before the layer types are listed. A device
    that is missing, or fails to enable, is left to the ``cuda`` check, which says why."""
    from ..device import get_device
    for device in devices:
        try:
            get_device(device)
            registry.enable_device(device)
        except Exception:      # reported per layer by the parity check
            continue
