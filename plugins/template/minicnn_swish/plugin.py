"""The module minicnn loads from the entry point ``swish``: it registers the layer and its kernels.

Imports are lazy so that loading the plugin (every ``minicnn`` command does) stays cheap; the GPU
kernel's module does not import numba.cuda until a model runs on ``"cuda"``.
"""

import minicnn


@minicnn.hookimpl
def minicnn_layers():
    from .swish import Swish
    return [Swish]


@minicnn.hookimpl
def minicnn_kernels():
    from .swish_cpu import SwishCPU
    from .swish_cuda import SwishCUDA
    return [SwishCPU, SwishCUDA]
