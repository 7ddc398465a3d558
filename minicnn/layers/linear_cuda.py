"""CUDA kernels of Linear: one thread per output element, gather-style in every direction.

``y[n, o] = b[o] + sum_i x[n, i] w[o, i]``; ``gx[n, i] = sum_o gy[n, o] w[o, i]``;
``gw[o, i] = sum_n gy[n, o] x[n, i]``; ``gb[o] = sum_n gy[n, o]``. Every element is a serial sum
in a fixed order by one thread (no atomics): bit-identical from run to run. Sums run in the array
dtype (a typed zero starts them). Plain loops, no shared-memory tiles yet: correct first; a tiled
GEMM is the next step for speed on large layers.
"""

from ..cuda_device import cuda, launch, zero_of
from ..kernel import Kernel
from ..registry import hookimpl


@cuda.jit
def linear_forward(x, w, b, y, has_bias, zero):
    n, k = x.shape
    out = w.shape[0]
    for idx in range(cuda.grid(1), n * out, cuda.gridsize(1)):
        r = idx // out
        o = idx - r * out
        acc = zero
        for i in range(k):
            acc += x[r, i] * w[o, i]
        if has_bias:
            acc += b[o]
        y[r, o] = acc


@cuda.jit
def linear_backward_input(gy, w, gx, zero):
    n, out = gy.shape
    k = w.shape[1]
    for idx in range(cuda.grid(1), n * k, cuda.gridsize(1)):
        r = idx // k
        i = idx - r * k
        acc = zero
        for o in range(out):
            acc += gy[r, o] * w[o, i]
        gx[r, i] = acc


@cuda.jit
def linear_backward_weight(x, gy, gw, zero):
    n, k = x.shape
    out = gy.shape[1]
    for idx in range(cuda.grid(1), out * k, cuda.gridsize(1)):
        o = idx // k
        i = idx - o * k
        acc = zero
        for r in range(n):
            acc += gy[r, o] * x[r, i]
        gw[o, i] = acc


@cuda.jit
def linear_backward_bias(gy, gb, zero):
    n, out = gy.shape
    for o in range(cuda.grid(1), out, cuda.gridsize(1)):
        acc = zero
        for r in range(n):
            acc += gy[r, o]
        gb[o] = acc


class LinearCUDA(Kernel):
    layer, device = "Linear", "cuda"

    def forward(self, layer, xs, ys, ws):
        w = layer.weight.data
        b = layer.bias.data if layer.bias is not None else w[0]
        launch(linear_forward, ys[0].size, xs[0], w, b, ys[0], layer.bias is not None,
               zero_of(w.dtype))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        gy = gys[0]
        zero = zero_of(gy.dtype)
        if gxs[0] is not None:
            launch(linear_backward_input, gxs[0].size, gy, layer.weight.data, gxs[0], zero)
        if grads.get("weight") is not None:
            launch(linear_backward_weight, grads["weight"].size, xs[0], gy, grads["weight"], zero)
        if grads.get("bias") is not None:
            launch(linear_backward_bias, grads["bias"].size, gy, grads["bias"], zero)


@hookimpl
def minicnn_kernels():
    return [LinearCUDA]
