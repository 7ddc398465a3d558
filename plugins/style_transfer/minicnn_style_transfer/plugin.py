"""The plugin module minicnn loads from the entry point ``style_transfer`` (group ``minicnn``):
the layer :class:`GramMatrix`, the losses :class:`StyleLoss`, :class:`ContentLoss` and
:class:`TotalVariationLoss` with their CPU kernels, and the ``minicnn style`` command.

GPU kernels live in a ``layers_cuda.py`` twin of ``layers_cpu.py`` (``device = "cuda"``); when
that module is present it is registered here too, so nothing else has to change.
"""

import importlib.util

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
    kernels = list(KERNELS)
    if importlib.util.find_spec(f"{__package__}.layers_cuda") is not None:
        from .layers_cuda import KERNELS as CUDA_KERNELS  # the GPU twin, when written
        kernels += list(CUDA_KERNELS)
    return kernels


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
