"""CUDA kernels of Dropout, Dropout1d and Dropout2d: the CPU kernel's counter-based mask, bit for
bit.

Each training forward draws one 64-bit seed from ``layer.rng`` on the host (as the CPU kernel does,
so ``minicnn.manual_seed`` gives the same masks on either device); every thread computes the
``lowbias32`` hash bits of its own mask elements (``dropout_cpu.mask_bits``, written with 64-bit
products masked to 32 bits so that numba's CUDA target and the simulator agree), so no mask is
stored or transferred and backward recomputes it from the seed. One kernel serves both directions:
``dst = src * (keep * scale)``.
"""

import numpy as np

from ..cuda_device import _copy_kernel as copy_kernel
from ..cuda_device import cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl
from .dropout_cpu import K1, K2, keep_threshold

_MASK32 = np.uint64(0xFFFFFFFF)
_K1, _K2 = np.uint64(K1), np.uint64(K2)


@cuda.jit(device=True)
def lowbias32(x):
    x = np.uint64(x) & _MASK32
    x = x ^ (x >> np.uint64(16))
    x = (x * _K1) & _MASK32
    x = x ^ (x >> np.uint64(15))
    x = (x * _K2) & _MASK32
    return x ^ (x >> np.uint64(16))


@cuda.jit(device=True)
def mask_bits(key_lo, key_hi, j):
    counter = np.uint64(j)
    x = lowbias32(((counter & _MASK32) + key_lo) & _MASK32)
    return lowbias32(x ^ key_hi ^ (counter >> np.uint64(32)))


@cuda.jit
def dropout_apply(src, dst, key_lo, key_hi, threshold, scale, group):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        j = i // group
        keep = mask_bits(key_lo, key_hi, j) >= threshold
        dst[i] = src[i] * (scale if keep else 0.0)


class DropoutCUDA(Kernel):
    layer, device = "Dropout", "cuda"

    def __init__(self):
        self._state = {}   # id(workspace "seed" array) -> (masked, threshold, scale, seed)

    def group(self, shape):
        return 1

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {"seed": ((1,), np.uint64)}   # keys this plan's host-side state

    def forward(self, layer, xs, ys, ws):
        masked = layer.training and layer.p > 0.0
        seed = int(layer.rng.integers(0, 2 ** 64, dtype=np.uint64)) if masked else 0
        if len(self._state) > 1024:
            self._state.clear()
        self._state[id(ws["seed"])] = (masked, int(keep_threshold(layer.p)), self.scale(layer),
                                       seed)
        if not masked:
            launch(copy_kernel, ys[0].size, flat(ys[0]), flat(xs[0]))
            return
        self._apply(xs[0], ys[0], ws)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        if not self._state[id(ws["seed"])][0]:
            launch(copy_kernel, gxs[0].size, flat(gxs[0]), flat(gys[0]))
            return
        self._apply(gys[0], gxs[0], ws)

    def _apply(self, src, dst, ws):
        _, threshold, scale, seed = self._state[id(ws["seed"])]
        launch(dropout_apply, src.size, flat(src), flat(dst), np.uint64(seed & 0xFFFFFFFF),
               np.uint64(seed >> 32), np.uint64(threshold), float(scale),
               self.group(src.shape))

    @staticmethod
    def scale(layer):
        return 0.0 if layer.p >= 1.0 else 1.0 / (1.0 - layer.p)


class Dropout1dCUDA(DropoutCUDA):
    layer = "Dropout1d"

    def group(self, shape):
        return int(np.prod(shape[2:], dtype=np.int64))


class Dropout2dCUDA(Dropout1dCUDA):
    layer = "Dropout2d"


@hookimpl
def minicnn_kernels():
    return [DropoutCUDA, Dropout1dCUDA, Dropout2dCUDA]
