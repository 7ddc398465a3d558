"""Which plugin to check, and which layer types are its: plugin names, distribution names and
module paths resolve to a registered plugin."""

import importlib

from .. import errors


def resolve_plugin(name, registry):
    """The registered plugin name for a plugin name, a distribution name or a module path; a
    module that is importable but not registered is registered now."""
    if name in registry.plugin_names():
        return name
    by_dist = [p for p, dist in registry.distributions.items()
               if dist and dist.lower().replace("_", "-") == name.lower().replace("_", "-")]
    if by_dist:
        return by_dist[0]
    for plugin_name in registry.plugin_names():
        if getattr(registry.pm.get_plugin(plugin_name), "__name__", None) == name:
            return plugin_name
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        known = ", ".join(registry.plugin_names())
        raise errors.PluginError(f"no plugin of this name is registered and no module of this "
                                 f"name can be imported ({exc}); registered plugins: {known}",
                                 plugin=name) from exc
    registry.register(module, name=name)
    return name


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
