"""CPU kernels of Dropout, Dropout1d and Dropout2d.

The mask is counter-based: each forward draws one 64-bit seed from ``layer.rng`` (so
``minicnn.manual_seed`` and gradcheck's restoring of ``rng`` reproduce it) and mask element j keeps
its value when ``mask_bits(j) >= ceil(p * 2^32)``, where ``mask_bits`` is two rounds of the
``lowbias32`` integer hash keyed by the two halves of the seed. Every thread computes its own
elements' bits: drawing is parallel and costs about a memory pass (numpy's serial generator filling
a float array cost 4 to 10 times the whole kernel on a 32x64x56x56 tensor; a splitmix64 hash, 64-bit
multiplies that do not vectorise, twice this one). No mask is stored (backward recomputes it from
the saved seed), and a GPU kernel can reproduce the same mask bit for bit with 32-bit arithmetic.

One kernel serves both directions: ``dst = src * (keep * scale)``, branch-free (a random mask
mispredicts half the branches; like PyTorch's ``x * mask * scale``, a NaN or Inf input gives NaN
where dropped), the arrays seen flat and ``group`` consecutive values sharing one mask element
(1 for Dropout, the plane size H*W or L for channel dropout).
"""

import math

import numpy as np
from numba import prange

from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl

CHUNK = 4096   # elements per parallel task in the element-wise case

K1, K2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)   # lowbias32 (C. Wellons' hash prospector)
S15, S16, S32 = np.uint32(15), np.uint32(16), np.uint64(32)


@cpu_kernel(parallel=False)
def lowbias32(x):
    x = np.uint32(x ^ (x >> S16))
    x = np.uint32(x * K1)
    x = np.uint32(x ^ (x >> S15))
    x = np.uint32(x * K2)
    return np.uint32(x ^ (x >> S16))


@cpu_kernel(parallel=False)
def mask_bits(key_lo, key_hi, j):
    """32 uniform random bits for mask element j under the key (key_lo, key_hi)."""
    counter = np.uint64(j)
    x = lowbias32(np.uint32(np.uint32(counter & np.uint64(0xFFFFFFFF)) + key_lo))
    return lowbias32(np.uint32(x ^ key_hi ^ np.uint32(counter >> S32)))


@cpu_kernel
def dropout_apply(src, dst, key_lo, key_hi, threshold, scale, group):
    n = src.size
    if group == 1:
        n_chunks = (n + CHUNK - 1) // CHUNK
        for k in prange(n_chunks):
            stop = min(k * CHUNK + CHUNK, n)
            for i in range(k * CHUNK, stop):
                dst[i] = src[i] * ((mask_bits(key_lo, key_hi, i) >= threshold) * scale)
    else:
        for j in prange(n // group):
            factor = (mask_bits(key_lo, key_hi, j) >= threshold) * scale
            for i in range(j * group, (j + 1) * group):
                dst[i] = src[i] * factor


def keep_threshold(p):
    """Mask element kept when its 32 bits are >= this: probability 1 - p (to 2^-32)."""
    return np.uint64(min(math.ceil(p * 2.0 ** 32), 2 ** 32))   # 2^32 (p = 1): never kept


class DropoutCPU(Kernel):
    layer, device = "Dropout", "cpu"

    def group(self, shape):
        return 1

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        # state: [masked (0 or 1), threshold, scale] of the last forward; seed: its mask's seed
        return {"state": ((3,), np.float64), "seed": ((1,), np.uint64)}

    def forward(self, layer, xs, ys, ws):
        masked = layer.training and layer.p > 0.0
        state = ws["state"]
        state[0], state[1], state[2] = masked, float(keep_threshold(layer.p)), self.scale(layer)
        if not masked:
            ys[0][...] = xs[0]
            return
        ws["seed"][0] = layer.rng.integers(0, 2 ** 64, dtype=np.uint64)
        self._apply(xs[0], ys[0], ws)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        if not ws["state"][0]:
            gxs[0][...] = gys[0]
            return
        self._apply(gys[0], gxs[0], ws)

    def _apply(self, src, dst, ws):
        if src.size == 0:
            return
        state = ws["state"]
        seed = int(ws["seed"][0])
        dropout_apply(src.reshape(-1), dst.reshape(-1), np.uint32(seed & 0xFFFFFFFF),
                      np.uint32(seed >> 32), np.uint64(state[1]), state[2], self.group(src.shape))

    @staticmethod
    def scale(layer):
        return 0.0 if layer.p >= 1.0 else 1.0 / (1.0 - layer.p)


class Dropout1dCPU(DropoutCPU):
    layer = "Dropout1d"

    def group(self, shape):
        return int(np.prod(shape[2:], dtype=np.int64))


class Dropout2dCPU(Dropout1dCPU):
    layer = "Dropout2d"


@hookimpl
def minicnn_kernels():
    return [DropoutCPU, Dropout1dCPU, Dropout2dCPU]
