"""CPU kernels of ConstantPad2d / ZeroPad2d: a parallel copy over the (leading axes x channel)
planes.

Arrays are viewed as (P, H, W) planes. Output row i reads input row i - top, column j reads column
j - left; outside the input the fill value is written. Memory-bound, so one thread per plane and a
plain copy loop; each output (and input-gradient) element is written by exactly one thread.
"""

from numba import prange

from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl


def _pad_forward_impl(x, y, top, left, value):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in prange(P):
        for i in range(OH):
            h = i - top
            if h < 0 or h >= H:
                for j in range(OW):
                    y[p, i, j] = value
                continue
            for j in range(OW):
                w = j - left
                y[p, i, j] = x[p, h, w] if 0 <= w < W else value


def _pad_backward_impl(gy, gx, top, left):
    P, H, W = gx.shape
    OH, OW = gy.shape[1], gy.shape[2]
    for p in prange(P):
        for h in range(H):
            i = h + top
            for w in range(W):
                j = w + left
                gx[p, h, w] = gy[p, i, j] if (0 <= i < OH and 0 <= j < OW) else 0.0


pad_forward = cpu_kernel(_pad_forward_impl)
pad_backward = cpu_kernel(_pad_backward_impl)


def _planes(a):
    return a.reshape((-1,) + a.shape[-2:])


class ConstantPad2dCPU(Kernel):
    layer = "ConstantPad2d"
    device = "cpu"

    def forward(self, layer, xs, ys, ws):
        left, _, top, _ = layer.padding
        pad_forward(_planes(xs[0]), _planes(ys[0]), top, left, ys[0].dtype.type(layer.value))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        left, _, top, _ = layer.padding
        pad_backward(_planes(gys[0]), _planes(gxs[0]), top, left)


class ZeroPad2dCPU(ConstantPad2dCPU):
    layer = "ZeroPad2d"


@hookimpl
def minicnn_kernels():
    return [ConstantPad2dCPU, ZeroPad2dCPU]

