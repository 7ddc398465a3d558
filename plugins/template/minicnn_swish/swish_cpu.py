"""CPU kernels of Swish (Numba), one per direction for every dtype and input rank.

The input ``(N, C, *)`` is viewed as ``R = N * C`` rows of ``L`` elements (the executor hands over
C-contiguous arrays, so that is a free reshape); row ``r`` belongs to channel ``r % C``. Passing 2-D
views means one compiled kernel serves every input rank. Rows are split over Numba's threads; each
output element is written by one thread. The beta gradient is summed per row into a workspace
array, then over the batch in a fixed order, so it does not depend on the thread schedule.
"""

import math

import numpy as np
from minicnn.jit import cpu_kernel
from minicnn.kernel import Kernel
from numba import prange


@cpu_kernel
def swish_forward(x, beta, y):
    rows, length = x.shape
    c = beta.shape[0]
    for r in prange(rows):
        b = beta[r % c]
        for i in range(length):
            v = x[r, i]
            z = b * v
            if z >= 0:                      # two forms so that exp never overflows
                s = 1.0 / (1.0 + math.exp(-z))
            else:
                e = math.exp(z)
                s = e / (1.0 + e)
            y[r, i] = v * s


@cpu_kernel
def swish_backward(x, beta, gy, gx, row_sums, want_gx, want_beta):
    rows, length = x.shape
    c = beta.shape[0]
    for r in prange(rows):
        b = beta[r % c]
        acc = 0.0
        for i in range(length):
            v = x[r, i]
            z = b * v
            if z >= 0:
                s = 1.0 / (1.0 + math.exp(-z))
            else:
                e = math.exp(z)
                s = e / (1.0 + e)
            g = gy[r, i]
            if want_gx:
                gx[r, i] = g * s * (1.0 + z * (1.0 - s))
            if want_beta:
                acc += g * v * v * s * (1.0 - s)
        if want_beta:
            row_sums[r] = acc


def _rows(array, channels):
    return array.reshape(array.shape[0] * channels, -1)


class SwishCPU(Kernel):
    layer, device = "Swish", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, c = in_shapes[0][:2]
        return {"row_sums": ((n * c,), dtype)}

    def forward(self, layer, xs, ys, ws):
        c = layer.num_features
        swish_forward(_rows(xs[0], c), layer.beta.data, _rows(ys[0], c))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        c = layer.num_features
        x = _rows(xs[0], c)
        gx, gbeta = gxs[0], grads.get("beta")
        if gx is None and gbeta is None:
            return
        row_sums = ws["row_sums"]
        swish_backward(x, layer.beta.data, _rows(gys[0], c),
                       _rows(gx, c) if gx is not None else np.empty((0, 0), x.dtype),
                       row_sums, gx is not None, gbeta is not None)
        if gbeta is not None:
            # (N, C) per-row sums, added over the batch in order: deterministic
            np.sum(row_sums.reshape(-1, c), axis=0, out=gbeta)
