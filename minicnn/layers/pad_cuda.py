"""CUDA kernels of ConstantPad2d / ZeroPad2d: one thread per written element, both directions.

Arrays are flat views of (P, H, W) planes (P = the product of the leading axes), the geometry
``(H, W, OH, OW, top, left)`` one cached device int64 array. Forward: output (i, j) reads input
(i - top, j - left) where that is inside the input, else writes ``value`` (any float, -inf
included). Backward: ``gx[h, w] = gy[h + top, w + left]`` (0 where cropping removed the position).
Memory-bound copies: no shared memory; each element is written once (deterministic).
"""

from ..cuda_device import const_array, cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl


@cuda.jit
def pad_forward(x, y, hp, value):
    H, W, OH, OW, top, left = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        j = idx % OW
        r = idx // OW
        i = r % OH
        p = r // OH
        h = i - top
        w = j - left
        if h >= 0 and h < H and w >= 0 and w < W:
            y[idx] = x[(p * H + h) * W + w]
        else:
            y[idx] = value


@cuda.jit
def pad_backward(gy, gx, hp, zero):
    H, W, OH, OW, top, left = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
    for idx in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        w = idx % W
        r = idx // W
        h = r % H
        p = r // H
        i = h + top
        j = w + left
        if i >= 0 and i < OH and j >= 0 and j < OW:
            gx[idx] = gy[(p * OH + i) * OW + j]
        else:
            gx[idx] = zero


def _geometry(layer, x_shape, y_shape):
    left, _, top, _ = layer.padding
    x_shape, y_shape = tuple(x_shape), tuple(y_shape)   # the simulator's shapes lack [-1]
    return const_array((x_shape[-2], x_shape[-1], y_shape[-2], y_shape[-1], top, left))


class ConstantPad2dCUDA(Kernel):
    layer, device = "ConstantPad2d", "cuda"

    def forward(self, layer, xs, ys, ws):
        hp = _geometry(layer, xs[0].shape, ys[0].shape)
        launch(pad_forward, ys[0].size, flat(xs[0]), flat(ys[0]), hp,
               ys[0].dtype.type(layer.value))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        hp = _geometry(layer, xs[0].shape, gys[0].shape)
        launch(pad_backward, gxs[0].size, flat(gys[0]), flat(gxs[0]), hp, gxs[0].dtype.type(0))


class ZeroPad2dCUDA(ConstantPad2dCUDA):
    layer = "ZeroPad2d"


@hookimpl
def minicnn_kernels():
    return [ConstantPad2dCUDA, ZeroPad2dCUDA]
