"""CUDA kernels of Softmax and LogSoftmax: one thread per (outer, inner) position.

The input is viewed as (outer, D, inner) as on the CPU (D the softmax axis); each thread reduces
its position's D values in a fixed order (max in the data's dtype, sums in float64) and writes its
D outputs, so every element has one writer and results are reproducible. Backward likewise:
``gx = y (gy - sum gy y)`` (softmax) or ``gx = gy - exp(y) sum gy`` (log-softmax).
"""

import math

from ..cuda_device import cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl
from .softmax_cpu import _dims


@cuda.jit
def softmax_forward(x, y, d, inner, log):
    n = x.size // d
    for pos in range(cuda.grid(1), n, cuda.gridsize(1)):
        o = pos // inner
        i = pos - o * inner
        base = o * d * inner + i
        top = x[base]
        for k in range(1, d):
            v = x[base + k * inner]
            if v > top:
                top = v
        total = 0.0
        for k in range(d):
            total += math.exp(x[base + k * inner] - top)
        if log:
            lse = top + math.log(total)
            for k in range(d):
                y[base + k * inner] = x[base + k * inner] - lse
        else:
            r = 1.0 / total
            for k in range(d):
                y[base + k * inner] = math.exp(x[base + k * inner] - top) * r


@cuda.jit
def softmax_backward(y, gy, gx, d, inner, log):
    n = y.size // d
    for pos in range(cuda.grid(1), n, cuda.gridsize(1)):
        o = pos // inner
        i = pos - o * inner
        base = o * d * inner + i
        total = 0.0
        for k in range(d):
            j = base + k * inner
            total += gy[j] if log else gy[j] * y[j]
        for k in range(d):
            j = base + k * inner
            if log:
                gx[j] = gy[j] - math.exp(y[j]) * total
            else:
                gx[j] = y[j] * (gy[j] - total)


class SoftmaxCUDA(Kernel):
    layer, device = "Softmax", "cuda"
    log = False

    def forward(self, layer, xs, ys, ws):
        outer, d, inner = _dims(layer, xs[0].shape)
        launch(softmax_forward, outer * inner, flat(xs[0]), flat(ys[0]), d, inner, self.log)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        outer, d, inner = _dims(layer, ys[0].shape)
        launch(softmax_backward, outer * inner, flat(ys[0]), flat(gys[0]), flat(gxs[0]), d, inner,
               self.log)


class LogSoftmaxCUDA(SoftmaxCUDA):
    layer, log = "LogSoftmax", True


@hookimpl
def minicnn_kernels():
    return [SoftmaxCUDA, LogSoftmaxCUDA]
