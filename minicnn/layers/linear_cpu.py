"""CPU kernel of Linear: matrix products with ``np.dot`` inside Numba, split into row blocks over
Numba's threads (BLAS held to one thread: one thread pool, see ``minicnn.jit``).

Each block of output rows is written by one thread, so results do not depend on scheduling:
forward and the input gradient split the batch; the weight gradient splits the output features.
Inputs (N, *, in_features) are (rows, in_features) matrices here (``matrix``).
"""

import numpy as np
from numba import prange

from ..jit import cpu_kernel, limit_blas_threads
from ..kernel import Kernel
from ..registry import hookimpl
from .linear import rows

_MIN_ROWS = 32   # below this a block is not worth a thread


@cpu_kernel
def linear_forward(x, w, b, y, has_bias):
    n = x.shape[0]
    blocks = max(1, min(n // _MIN_ROWS, 64))
    for k in prange(blocks):
        lo, hi = k * n // blocks, (k + 1) * n // blocks
        y[lo:hi] = np.dot(x[lo:hi], w.T)
        if has_bias:
            y[lo:hi] += b


@cpu_kernel
def linear_backward_input(gy, w, gx):
    n = gy.shape[0]
    blocks = max(1, min(n // _MIN_ROWS, 64))
    for k in prange(blocks):
        lo, hi = k * n // blocks, (k + 1) * n // blocks
        gx[lo:hi] = np.dot(gy[lo:hi], w)


@cpu_kernel
def linear_backward_params(x, gy, gy_t, gw, gb, want_w, want_b):
    out = gy.shape[1]
    gy_t[:] = gy.T          # row blocks of gy^T are contiguous: BLAS needs no hidden copy
    blocks = max(1, min(out // _MIN_ROWS, 64))
    for k in prange(blocks):
        lo, hi = k * out // blocks, (k + 1) * out // blocks
        if want_w:
            gw[lo:hi] = np.dot(gy_t[lo:hi], x)
        if want_b:
            for o in range(lo, hi):
                s = 0.0
                for i in range(gy.shape[0]):
                    s += gy_t[o, i]
                gb[o] = s


def matrix(a, output=False):
    """``a`` (N, *, features) as a (rows, features) matrix. An output must be a view written in
    place (the executor's buffers are contiguous: an error rather than a silent copy)."""
    if a.ndim == 2:
        return a
    if not output:
        return a.reshape(-1, a.shape[-1])
    view = a.view()
    view.shape = (-1, a.shape[-1])
    return view


class LinearCPU(Kernel):
    layer, device = "Linear", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {"gy_t": ((layer.out_features, rows(out_shapes[0])), dtype)}

    def forward(self, layer, xs, ys, ws):
        limit_blas_threads()
        y = matrix(ys[0], output=True)
        bias = layer.bias.data if layer.bias is not None else y[0]
        linear_forward(matrix(xs[0]), layer.weight.data, bias, y, layer.bias is not None)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        gy = matrix(gys[0])
        if gxs[0] is not None:
            linear_backward_input(gy, layer.weight.data, matrix(gxs[0], output=True))
        gw, gb = grads.get("weight"), grads.get("bias")
        if gw is not None or gb is not None:
            dummy = layer.weight.data
            linear_backward_params(matrix(xs[0]), gy, ws["gy_t"],
                                   gw if gw is not None else dummy,
                                   gb if gb is not None else dummy[0], gw is not None,
                                   gb is not None)


@hookimpl
def minicnn_kernels():
    return [LinearCPU]
