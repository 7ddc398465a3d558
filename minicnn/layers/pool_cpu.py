"""CPU kernels of the pooling layers: plain parallel loops over the (n, c) planes.

Pooling is memory-bound, so one thread per plane (``prange`` over N*C) with a scalar window loop is
the right shape. Arrays are viewed as (N*C, H, W) planes. The window bounds come from the layer as
per-axis tables (``layer.windows``: first in-bounds index, tap count, divisor factor), which
already encode padding, ceil_mode, count_include_pad, divisor_override and the adaptive rule; the
kernels never see padded positions.

Each kernel is a serial function over a range of planes plus a parallel driver that runs it once
per plane under ``prange``; tensors under ``SERIAL_BELOW`` elements call the serial function
directly (a parallel launch costs microseconds, milliseconds on a busy machine).

Speed notes (measured): indices are cast to unsigned before indexing, which drops numba's
negative-index wrap-around code and lets LLVM if-convert and vectorise; and the common 2x2 and 3x3
windows at column stride 2 (dilation 1) have copies of the window loop with literal sizes for the
whole-window columns of each row (``AxisWindows.inner``), which LLVM unrolls. Together these made
the 2x2 max pool about 5x faster than the table-driven loop, which still serves every other window
(borders, dilation, other sizes, adaptive pools). Two kernels per direction cover every pool:

* max pool: forward stores the flat arg-max (h * W + w) of each output in an int32 workspace;
  backward zeroes each input plane and adds the output gradients at their arg-max, one plane per
  thread, in output order (deterministic, no atomics).
* sum pools (average, adaptive average, LP): ``y = f(sum g(x) / (rdiv[i] * cdiv[j]))`` with g, f
  the identity (``norm == 0``) or x^p and the p-th root (LP). Sums accumulate in float64. Backward
  scatters each output gradient over its window within the plane's thread.
"""

import math

import numpy as np
from numba import prange

from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl


@cpu_kernel(parallel=False)
def max_pool_forward_planes(x, y, argmax, r0, rn, c0, cn, lo, hi, fast, pad_w, dil_h, dil_w,
                            p0, p1):
    W = x.shape[2]
    OH, OW = y.shape[1], y.shape[2]
    for p in range(p0, p1):
        for oh in range(OH):
            h0, nh = r0[oh], rn[oh]
            a, b = (lo, hi) if nh == fast else (0, 0)   # this row's whole-window columns
            # fast paths, K x K windows at column stride 2 (literal sizes: unrolled, if-converted)
            if fast == 2:
                for ow in range(a, b):
                    w0 = 2 * ow - pad_w
                    best = -np.inf
                    arg = h0 * W + w0
                    for i in range(2):
                        for j in range(2):
                            v = x[p, np.uint64(h0 + i), np.uint64(w0 + j)]
                            if v > best or np.isnan(v):
                                best = v
                                arg = (h0 + i) * W + w0 + j
                    y[p, oh, ow] = best
                    argmax[p, oh, ow] = arg
            elif fast == 3:
                for ow in range(a, b):
                    w0 = 2 * ow - pad_w
                    best = -np.inf
                    arg = h0 * W + w0
                    for i in range(3):
                        for j in range(3):
                            v = x[p, np.uint64(h0 + i), np.uint64(w0 + j)]
                            if v > best or np.isnan(v):
                                best = v
                                arg = (h0 + i) * W + w0 + j
                    y[p, oh, ow] = best
                    argmax[p, oh, ow] = arg
            for k in range(OW - (b - a)):     # everything else: any window, from the tables
                ow = k if k < a else k + b - a
                w0, nw = c0[ow], cn[ow]
                best = -np.inf
                arg = h0 * W + w0 if (nh > 0 and nw > 0) else -1   # all -inf: first element
                for i in range(nh):
                    h = h0 + i * dil_h
                    for j in range(nw):
                        w = w0 + j * dil_w
                        v = x[p, np.uint64(h), np.uint64(w)]
                        if v > best or np.isnan(v):   # strict: the first maximum wins (PyTorch)
                            best = v
                            arg = h * W + w
                y[p, oh, ow] = best
                argmax[p, oh, ow] = arg


@cpu_kernel(parallel=False)
def max_pool_backward_planes(gy, argmax, gx, p0, p1):
    # gy, argmax: (P, OH*OW); gx: (P, H*W)
    M = gx.shape[1]
    K = gy.shape[1]
    for p in range(p0, p1):
        for i in range(M):
            gx[p, i] = 0.0
        for o in range(K):
            a = argmax[p, o]
            if a >= 0:
                gx[p, a] += gy[p, o]


@cpu_kernel(parallel=False)
def sum_pool_forward_planes(x, y, r0, rn, rdiv, c0, cn, cdiv, lo, hi, fast, pad_w, norm, p0, p1):
    OH, OW = y.shape[1], y.shape[2]
    inv_norm = 1.0 / norm if norm > 0.0 else 0.0
    for p in range(p0, p1):
        for oh in range(OH):
            h0, nh = r0[oh], rn[oh]
            a, b = (lo, hi) if nh == fast else (0, 0)   # whole-window columns (averages only)
            if fast == 2:
                for ow in range(a, b):
                    w0 = 2 * ow - pad_w
                    acc = 0.0
                    for i in range(2):
                        for j in range(2):
                            acc += x[p, np.uint64(h0 + i), np.uint64(w0 + j)]
                    y[p, oh, ow] = acc / (rdiv[oh] * cdiv[ow])
            elif fast == 3:
                for ow in range(a, b):
                    w0 = 2 * ow - pad_w
                    acc = 0.0
                    for i in range(3):
                        for j in range(3):
                            acc += x[p, np.uint64(h0 + i), np.uint64(w0 + j)]
                    y[p, oh, ow] = acc / (rdiv[oh] * cdiv[ow])
            for k in range(OW - (b - a)):
                ow = k if k < a else k + b - a
                w0, nw = c0[ow], cn[ow]
                div = rdiv[oh] * cdiv[ow]
                acc = 0.0
                if norm == 0.0:          # average
                    for i in range(nh):
                        for j in range(nw):
                            acc += x[p, np.uint64(h0 + i), np.uint64(w0 + j)]
                    y[p, oh, ow] = acc / div
                elif norm == 2.0:        # L2: square root of the sum of squares
                    for i in range(nh):
                        for j in range(nw):
                            v = x[p, np.uint64(h0 + i), np.uint64(w0 + j)]
                            acc += v * v
                    y[p, oh, ow] = math.sqrt(acc / div)
                else:
                    for i in range(nh):
                        for j in range(nw):
                            acc += x[p, np.uint64(h0 + i), np.uint64(w0 + j)] ** norm
                    y[p, oh, ow] = (acc / div) ** inv_norm


@cpu_kernel(parallel=False)
def sum_pool_backward_planes(x, y, gy, gx, r0, rn, rdiv, c0, cn, cdiv, lo, hi, fast, pad_w, norm,
                             p0, p1):
    # LP: dy/dx = x^(p-1) y^(1-p) / div; an all-zero window (y == 0) gets gradient 0 when p != 1
    H, W = gx.shape[1], gx.shape[2]
    OH, OW = gy.shape[1], gy.shape[2]
    for p in range(p0, p1):
        for h in range(H):
            for w in range(W):
                gx[p, h, w] = 0.0
        for oh in range(OH):
            h0, nh = r0[oh], rn[oh]
            a, b = (lo, hi) if nh == fast else (0, 0)
            if fast == 2:
                for ow in range(a, b):
                    w0 = 2 * ow - pad_w
                    g = gy[p, oh, ow] / (rdiv[oh] * cdiv[ow])
                    for i in range(2):
                        for j in range(2):
                            gx[p, np.uint64(h0 + i), np.uint64(w0 + j)] += g
            elif fast == 3:
                for ow in range(a, b):
                    w0 = 2 * ow - pad_w
                    g = gy[p, oh, ow] / (rdiv[oh] * cdiv[ow])
                    for i in range(3):
                        for j in range(3):
                            gx[p, np.uint64(h0 + i), np.uint64(w0 + j)] += g
            for k in range(OW - (b - a)):
                ow = k if k < a else k + b - a
                w0, nw = c0[ow], cn[ow]
                g = gy[p, oh, ow] / (rdiv[oh] * cdiv[ow])
                if norm == 0.0 or norm == 1.0:
                    for i in range(nh):
                        for j in range(nw):
                            gx[p, np.uint64(h0 + i), np.uint64(w0 + j)] += g
                    continue
                yv = y[p, oh, ow]
                if yv == 0.0:
                    continue
                if norm == 2.0:
                    coef = g / yv
                    for i in range(nh):
                        for j in range(nw):
                            h, w = np.uint64(h0 + i), np.uint64(w0 + j)
                            gx[p, h, w] += coef * x[p, h, w]
                else:
                    coef = g * yv ** (1.0 - norm)
                    for i in range(nh):
                        for j in range(nw):
                            h, w = np.uint64(h0 + i), np.uint64(w0 + j)
                            gx[p, h, w] += coef * x[p, h, w] ** (norm - 1.0)


# the parallel drivers: one plane per prange iteration
@cpu_kernel
def max_pool_forward(x, y, argmax, r0, rn, c0, cn, lo, hi, fast, pad_w, dil_h, dil_w):
    for p in prange(x.shape[0]):
        max_pool_forward_planes(x, y, argmax, r0, rn, c0, cn, lo, hi, fast, pad_w, dil_h, dil_w,
                                p, p + 1)


@cpu_kernel
def max_pool_backward(gy, argmax, gx):
    for p in prange(gx.shape[0]):
        max_pool_backward_planes(gy, argmax, gx, p, p + 1)


@cpu_kernel
def sum_pool_forward(x, y, r0, rn, rdiv, c0, cn, cdiv, lo, hi, fast, pad_w, norm):
    for p in prange(x.shape[0]):
        sum_pool_forward_planes(x, y, r0, rn, rdiv, c0, cn, cdiv, lo, hi, fast, pad_w, norm,
                                p, p + 1)


@cpu_kernel
def sum_pool_backward(x, y, gy, gx, r0, rn, rdiv, c0, cn, cdiv, lo, hi, fast, pad_w, norm):
    for p in prange(x.shape[0]):
        sum_pool_backward_planes(x, y, gy, gx, r0, rn, rdiv, c0, cn, cdiv, lo, hi, fast, pad_w,
                                 norm, p, p + 1)


SERIAL_BELOW = 1 << 15   # elements: smaller tensors run serially (a parallel launch costs more)


def _launch(parallel_fn, serial_fn, size, planes, *args):
    if size < SERIAL_BELOW:
        serial_fn(*args, 0, planes)
    else:
        parallel_fn(*args)


def _fast_path(rows, cols):
    """2 or 3 for K x K windows (dilation 1) at column stride 2 (unrolled code exists); else 0."""
    if (rows.kernel == cols.kernel and rows.kernel in (2, 3) and cols.stride == 2
            and rows.dilation == 1 and cols.dilation == 1 and cols.inner[1] > cols.inner[0]):
        return rows.kernel
    return 0


def _planes(a, flat=False):
    """(N, C, H, W) -> (N*C, H, W) (or (N*C, H*W)) view; kernels get contiguous buffers."""
    if not a.flags.c_contiguous:
        raise ValueError("pool kernels need C-contiguous arrays (the executor provides them)")
    n, c, h, w = a.shape
    return a.reshape(n * c, h * w) if flat else a.reshape(n * c, h, w)


class MaxPool2dCPU(Kernel):
    layer, device = "MaxPool2d", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {"argmax": (out_shapes[0], np.int32)}

    def forward(self, layer, xs, ys, ws):
        rows, cols = layer.windows(xs[0].shape)
        fast = _fast_path(rows, cols)
        lo, hi = cols.inner if fast else (0, 0)
        x = _planes(xs[0])
        _launch(max_pool_forward, max_pool_forward_planes, x.size, x.shape[0], x, _planes(ys[0]),
                _planes(ws["argmax"]), rows.first, rows.count, cols.first, cols.count, lo, hi,
                fast, cols.padding, rows.dilation, cols.dilation)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            gx = _planes(gxs[0], True)
            _launch(max_pool_backward, max_pool_backward_planes, gx.size, gx.shape[0],
                    _planes(gys[0], True), _planes(ws["argmax"], True), gx)


class _SumPoolCPU(Kernel):
    device = "cpu"

    def norm(self, layer):
        return 0.0

    def _tables(self, layer, shape):
        rows, cols = layer.windows(shape)
        norm = self.norm(layer)
        fast = _fast_path(rows, cols) if norm == 0.0 else 0
        lo, hi = cols.inner if fast else (0, 0)
        return (rows.first, rows.count, rows.div, cols.first, cols.count, cols.div, lo, hi, fast,
                cols.padding, norm)

    def forward(self, layer, xs, ys, ws):
        x = _planes(xs[0])
        _launch(sum_pool_forward, sum_pool_forward_planes, x.size, x.shape[0], x, _planes(ys[0]),
                *self._tables(layer, xs[0].shape))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x = _planes(xs[0])
        _launch(sum_pool_backward, sum_pool_backward_planes, x.size, x.shape[0], x,
                _planes(ys[0]), _planes(gys[0]), _planes(gxs[0]), *self._tables(layer, xs[0].shape))


class AvgPool2dCPU(_SumPoolCPU):
    layer = "AvgPool2d"


class LPPool2dCPU(_SumPoolCPU):
    layer = "LPPool2d"

    def norm(self, layer):
        return layer.norm_type


class AdaptiveAvgPool2dCPU(_SumPoolCPU):
    layer = "AdaptiveAvgPool2d"


class GlobalAvgPool2dCPU(_SumPoolCPU):
    layer = "GlobalAvgPool2d"


@hookimpl
def minicnn_kernels():
    return [MaxPool2dCPU, AvgPool2dCPU, LPPool2dCPU, AdaptiveAvgPool2dCPU, GlobalAvgPool2dCPU]
