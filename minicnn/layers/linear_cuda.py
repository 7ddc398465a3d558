"""CUDA kernels of Linear: one thread per output element, gather-style in every direction; large
layers run as GEMMs on the tiled implicit-GEMM kernels of ``conv_tiled_cuda`` (Linear is a 1x1
convolution of an (N, in_features, 1, 1) batch: the same memory layout).

``y[n, o] = b[o] + sum_i x[n, i] w[o, i]``; ``gx[n, i] = sum_o gy[n, o] w[o, i]``;
``gw[o, i] = sum_n gy[n, o] x[n, i]``; ``gb[o] = sum_n gy[n, o]``. Every element is a serial sum
in a fixed order by one thread (no atomics): bit-identical from run to run. Sums run in the array
dtype (a typed zero starts them). The tiled path runs when the layer has at least
``TILED_MACS`` multiply-adds and ``conv_tiled_cuda.MIN_CHANNELS`` rows in the GEMM's output
(its weight gradient splits the batch reduction into chunks: the ``gw_part`` workspace).
Both forward paths can apply a fused activation as they store (``forward_fused``). Inputs
(N, *, in_features) reach the kernels as (rows, in_features) views (``cuda_device.matrix``).
"""

from ..cuda_device import cuda, flat, launch, matrix, zero_of
from ..kernel import Kernel
from ..registry import hookimpl
from . import conv_tiled_cuda as tiled
from .activation_cuda import NO_EPILOGUE, activate, epilogue_args
from .linear import rows

TILED_MACS = 1 << 22      # N * in * out multiply-adds from which the tiled GEMM runs


@cuda.jit
def linear_forward(x, w, b, y, has_bias, zero, op, alpha, act_out):
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
        if op != NO_EPILOGUE:     # a fused activation (Kernel.forward_fused) writes act_out too
            act_out[r, o] = activate(acc, op, alpha)


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
def linear_backward_params(x, gy, gw, gb, need_w, need_b, zero):
    """gw (thread per element) and gb (thread per output, after them) in one launch."""
    n, k = x.shape
    out = gy.shape[1]
    weights = out * k if need_w else 0
    for idx in range(cuda.grid(1), weights + (out if need_b else 0), cuda.gridsize(1)):
        acc = zero
        if idx < weights:
            o = idx // k
            i = idx - o * k
            for r in range(n):
                acc += gy[r, o] * x[r, i]
            gw[o, i] = acc
        else:
            o = idx - weights
            for r in range(n):
                acc += gy[r, o]
            gb[o] = acc


def _tiled(n, k, m):
    """Whether the tiled GEMM runs for a batch n, in_features k, out_features m."""
    return n * k * m >= TILED_MACS and min(k, m) >= tiled.MIN_CHANNELS


def _splits(n, k, m):
    return tiled.split_count(m, k, n)


class LinearCUDA(Kernel):
    layer, device = "Linear", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, k, m = rows(in_shapes[0]), layer.in_features, layer.out_features
        if _tiled(n, k, m) and _splits(n, k, m) > 1:
            return {"gw_part": ((_splits(n, k, m) * k * m,), dtype)}
        return {}

    def forward(self, layer, xs, ys, ws):
        self.forward_fused(layer, xs, ys, ws, None, None)

    def forward_fused(self, layer, xs, ys, ws, act, out):
        # inputs (N, *, in_features): the kernels see (rows, features) matrices
        w, x, y = layer.weight.data, matrix(xs[0]), matrix(ys[0])
        n, k, m = x.shape[0], layer.in_features, layer.out_features
        if _tiled(n, k, m):
            b = flat(layer.bias.data) if layer.bias is not None else flat(w)
            tiled.forward(flat(x), flat(w), b, flat(y), tiled.gemm_values(n, k, m),
                          layer.bias is not None, act, None if out is None else flat(out))
            return
        b = layer.bias.data if layer.bias is not None else w[0]
        op, alpha = epilogue_args(act)
        launch(linear_forward, y.size, x, w, b, y, layer.bias is not None,
               zero_of(w.dtype), op, alpha, matrix(out) if out is not None else y)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        gy, x = matrix(gys[0]), matrix(xs[0])
        zero = zero_of(gy.dtype)
        n, k, m = x.shape[0], layer.in_features, layer.out_features
        big = _tiled(n, k, m)
        values = tiled.gemm_values(n, k, m)
        gw = grads.get("weight")
        if gxs[0] is not None:
            if big:
                tiled.backward_data(flat(gy), flat(layer.weight.data), flat(gxs[0]), values)
            else:
                launch(linear_backward_input, gxs[0].size, gy, layer.weight.data,
                       matrix(gxs[0]), zero)
        gb = grads.get("bias")
        if gw is not None:
            splits = _splits(n, k, m) if big else 0
            part = ws.get("gw_part")
            if splits > 1 and (part is None or part.size != splits * gw.size):
                splits = 0            # planned with other settings: the direct kernel
            if splits:
                tiled.backward_weight(flat(x), flat(gy), flat(gw),
                                      part if splits > 1 else gw, values, splits)
                gw = None
        if gw is not None or gb is not None:      # the direct kernels, one launch for both
            size = (gw.size if gw is not None else 0) + (gb.size if gb is not None else 0)
            launch(linear_backward_params, size, x, gy,
                   gw if gw is not None else layer.weight.data,
                   gb if gb is not None else gy[0], gw is not None, gb is not None, zero)


@hookimpl
def minicnn_kernels():
    return [LinearCUDA]
