"""The module minicnn loads from the entry point ``swish``: it registers the layer and its kernels.

Imports are lazy so that loading the plugin (every ``minicnn`` command does) stays cheap. The GPU
kernel comes from ``minicnn_device_kernels``, which minicnn calls only when a model first runs on
``"cuda"``: a CPU-only process never imports :mod:`minicnn_swish.swish_cuda` (nor numba.cuda).
"""

import minicnn


@minicnn.hookimpl
def minicnn_layers():
    from .swish import Swish
    return [Swish]


@minicnn.hookimpl
def minicnn_kernels():
    from .swish_cpu import SwishCPU
    return [SwishCPU]


@minicnn.hookimpl
def minicnn_device_kernels(device):
    if device != "cuda":
        return []
    from .swish_cuda import SwishCUDA  # imports numba.cuda, now that "cuda" is in use
    return [SwishCUDA]
