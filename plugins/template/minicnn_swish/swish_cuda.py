"""The GPU kernel of Swish: ``SwishCUDA``, minicnn's kernel contract on the ``"cuda"`` device.

This module stays light: the numba.cuda code lives in :mod:`minicnn_swish.swish_cuda_kernels`,
imported on the first launch. minicnn imports numba.cuda only when a model is moved to the GPU, so
registering this kernel (``plugin.minicnn_kernels``) costs a CPU-only process nothing; by the time
a launch happens, minicnn's CUDA device exists and numba.cuda is set up (or its simulator, with
``NUMBA_ENABLE_CUDASIM=1``).

The executor hands over numba device arrays (C-contiguous); the kernels take flat views.
"""

from minicnn.kernel import Kernel


def _flat(array):
    return array.reshape(array.size)


class SwishCUDA(Kernel):
    layer, device = "Swish", "cuda"

    def forward(self, layer, xs, ys, ws):
        from . import swish_cuda_kernels as gpu
        x, c = xs[0], layer.num_features
        gpu.forward(_flat(x), layer.beta.data, _flat(ys[0]), c, x.size // (x.shape[0] * c))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        from . import swish_cuda_kernels as gpu
        x, gx, c = xs[0], gxs[0], layer.num_features
        gpu.backward(_flat(x), layer.beta.data, _flat(gys[0]), None if gx is None else _flat(gx),
                     grads.get("beta"), c, x.size // (x.shape[0] * c))
