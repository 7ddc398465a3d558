"""CPU kernels of Add and Concat: plain numpy copies and sums (memory-bound, numpy is at memory
speed)."""

import numpy as np

from ..kernel import Kernel
from ..registry import hookimpl


class AddCPU(Kernel):
    layer, device = "Add", "cpu"
    passes_gradient = True   # the executor hands gy on: backward runs only when called directly

    def forward(self, layer, xs, ys, ws):
        np.add(xs[0], xs[1], out=ys[0])
        for x in xs[2:]:
            ys[0] += x

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        for gx in gxs:
            if gx is not None:
                gx[...] = gys[0]


class ConcatCPU(Kernel):
    layer, device = "Concat", "cpu"

    def _slices(self, layer, xs):
        axis = layer.axis(xs[0].ndim)
        start = 0
        for x in xs:
            index = [slice(None)] * x.ndim
            index[axis] = slice(start, start + x.shape[axis])
            start += x.shape[axis]
            yield tuple(index)

    def forward(self, layer, xs, ys, ws):
        for x, index in zip(xs, self._slices(layer, xs), strict=True):
            ys[0][index] = x

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        for gx, index in zip(gxs, self._slices(layer, xs), strict=True):
            if gx is not None:
                gx[...] = gys[0][index]


@hookimpl
def minicnn_kernels():
    return [AddCPU, ConcatCPU]
