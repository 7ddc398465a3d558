"""The plugin module minicnn loads from the entry point ``style_transfer`` (group ``minicnn``):
the layer :class:`GramMatrix`, the losses :class:`StyleLoss`, :class:`ContentLoss` and
:class:`TotalVariationLoss` with their CPU kernels, and the ``minicnn style`` command.

GPU kernels live in :mod:`.layers_cuda`, the twin of ``layers_cpu.py`` (``device = "cuda"``),
registered by :func:`minicnn_device_kernels` when minicnn first uses the ``"cuda"`` device.
"""

import minicnn

PLUGIN_NAME = "style_transfer"


@minicnn.hookimpl
def minicnn_layers():
    from .layers import LAYERS
    return list(LAYERS)


@minicnn.hookimpl
def minicnn_losses():
    from .layers import LOSSES
    return list(LOSSES)


@minicnn.hookimpl
def minicnn_kernels():
    from .layers_cpu import KERNELS
    return list(KERNELS)


@minicnn.hookimpl
def minicnn_device_kernels(device):
    """The CUDA kernels (:mod:`.layers_cuda`), asked for when minicnn first uses the ``"cuda"``
    device (``network.to("cuda")``): only then is numba.cuda imported."""
    if device != "cuda":
        return []
    from .layers_cuda import KERNELS
    return list(KERNELS)


@minicnn.hookimpl
def minicnn_commands():
    from .cli import command
    return [command()]


def ensure_registered(registry=None):
    """Register this plugin in ``registry`` (default: minicnn's current one) unless it already
    is (installed plugins are registered from their entry point; a checkout is not)."""
    import sys
    registry = registry or minicnn.get_registry()
    if "GramMatrix" not in registry.layers:
        registry.register(sys.modules[__name__], name=PLUGIN_NAME)
    return registry
