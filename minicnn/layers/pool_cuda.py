"""CUDA kernels of the pooling layers: one thread per output element forward, one thread per input
element backward (a gather: no atomics, a fixed summation order).

The windows come from the layer as per-axis tables (``layer.windows``: first in-bounds index, tap
count, divisor factor), exactly as on the CPU, uploaded once per shape. Backward needs the inverse:
for each input row (column), the output rows (columns) whose window covers it, as a CSR table
(``ptr``, ``idx``) built on the host once per shape. Arrays are flat views of (N*C, H, W) planes.

* max pool: forward stores the flat arg-max ``h * W + w`` of each output (int32, -1 for an empty
  window); the gradient of an input element is the sum, in output order, of the output gradients
  whose arg-max it is.
* sum pools (average, adaptive average, LP): ``y = f(sum g(x) / (rdiv[i] * cdiv[j]))`` with g, f
  the identity (``norm == 0``) or x^p and the p-th root (LP); float64 sums, as on the CPU.
"""

import math

import numpy as np

from ..cuda_device import const_array, cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl


@cuda.jit
def max_pool_forward(x, y, argmax, r0, rn, c0, cn, hp):
    H, W, OH, OW, dil_h, dil_w = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        ow = idx % OW
        r = idx // OW
        oh = r % OH
        p = r // OH
        h0, nh, w0, nw = r0[oh], rn[oh], c0[ow], cn[ow]
        base = p * H * W
        best = -math.inf
        arg = h0 * W + w0 if (nh > 0 and nw > 0) else -1   # all -inf: the first element
        for i in range(nh):
            h = h0 + i * dil_h
            for j in range(nw):
                w = w0 + j * dil_w
                v = x[base + h * W + w]
                if v > best or v != v:     # strict: the first maximum wins; NaN propagates
                    best = v
                    arg = h * W + w
        y[idx] = best
        argmax[idx] = arg


@cuda.jit
def max_pool_backward(gy, argmax, gx, rptr, ridx, cptr, cidx, hp, zero):
    H, W, OH, OW = hp[0], hp[1], hp[2], hp[3]
    for idx in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        w = idx % W
        r = idx // W
        h = r % H
        p = r // H
        me = h * W + w
        acc = zero
        for a in range(rptr[h], rptr[h + 1]):
            orow = (p * OH + ridx[a]) * OW
            for b in range(cptr[w], cptr[w + 1]):
                o = orow + cidx[b]
                if argmax[o] == me:
                    acc += gy[o]
        gx[idx] = acc


@cuda.jit
def sum_pool_forward(x, y, r0, rn, rdiv, c0, cn, cdiv, hp, norm):
    H, W, OH, OW, dil_h, dil_w = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
    inv_norm = 1.0 / norm if norm > 0.0 else 0.0
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        ow = idx % OW
        r = idx // OW
        oh = r % OH
        p = r // OH
        h0, nh, w0, nw = r0[oh], rn[oh], c0[ow], cn[ow]
        base = p * H * W
        div = rdiv[oh] * cdiv[ow]
        acc = 0.0
        for i in range(nh):
            row = base + (h0 + i * dil_h) * W
            for j in range(nw):
                v = x[row + w0 + j * dil_w]
                if norm == 0.0:
                    acc += v
                elif norm == 2.0:
                    acc += v * v
                else:
                    acc += v ** norm
        if norm == 0.0:
            y[idx] = acc / div
        elif norm == 2.0:
            y[idx] = math.sqrt(acc / div)
        else:
            y[idx] = (acc / div) ** inv_norm


@cuda.jit
def sum_pool_backward(x, y, gy, gx, rdiv, cdiv, rptr, ridx, cptr, cidx, hp, norm):
    H, W, OH, OW = hp[0], hp[1], hp[2], hp[3]
    for idx in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        w = idx % W
        r = idx // W
        h = r % H
        p = r // H
        xv = x[idx]
        acc = 0.0
        for a in range(rptr[h], rptr[h + 1]):
            oh = ridx[a]
            orow = (p * OH + oh) * OW
            for b in range(cptr[w], cptr[w + 1]):
                ow = cidx[b]
                o = orow + ow
                g = gy[o] / (rdiv[oh] * cdiv[ow])
                if norm == 0.0 or norm == 1.0:
                    acc += g
                    continue
                yv = y[o]
                if yv == 0.0:
                    continue
                if norm == 2.0:
                    acc += g / yv * xv
                else:
                    acc += g * yv ** (1.0 - norm) * xv ** (norm - 1.0)
        gx[idx] = acc


_tables = {}


def _axis_tables(axis, size):
    """Device tables of one axis: first, count, div, and the inverse CSR (ptr, idx)."""
    key = (axis.first.tobytes(), axis.count.tobytes(), axis.div.tobytes(), axis.dilation, size)
    tables = _tables.get(key)
    if tables is None:
        covers = [[] for _ in range(size)]
        for o, (f, c) in enumerate(zip(axis.first.tolist(), axis.count.tolist(), strict=True)):
            for t in range(c):
                covers[f + t * axis.dilation].append(o)
        ptr = np.zeros(size + 1, np.int64)
        ptr[1:] = np.cumsum([len(c) for c in covers])
        idx = np.array([o for c in covers for o in c] or [0], np.int64)
        if len(_tables) > 512:
            _tables.clear()
        tables = _tables[key] = (const_array(axis.first), const_array(axis.count),
                                 const_array(axis.div, np.float64), const_array(ptr),
                                 const_array(idx))
    return tables


def _setup(layer, shape):
    rows, cols = layer.windows(shape)
    h, w = shape[2], shape[3]
    oh, ow = len(rows.first), len(cols.first)
    hp = const_array((h, w, oh, ow, rows.dilation, cols.dilation))
    return _axis_tables(rows, h), _axis_tables(cols, w), hp


class MaxPool2dCUDA(Kernel):
    layer, device = "MaxPool2d", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {"argmax": (out_shapes[0], np.int32)}

    def forward(self, layer, xs, ys, ws):
        rt, ct, hp = _setup(layer, xs[0].shape)
        launch(max_pool_forward, ys[0].size, flat(xs[0]), flat(ys[0]), flat(ws["argmax"]),
               rt[0], rt[1], ct[0], ct[1], hp)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        rt, ct, hp = _setup(layer, xs[0].shape)
        launch(max_pool_backward, gxs[0].size, flat(gys[0]), flat(ws["argmax"]), flat(gxs[0]),
               rt[3], rt[4], ct[3], ct[4], hp, gys[0].dtype.type(0))


class _SumPoolCUDA(Kernel):
    device = "cuda"

    def norm(self, layer):
        return 0.0

    def forward(self, layer, xs, ys, ws):
        rt, ct, hp = _setup(layer, xs[0].shape)
        launch(sum_pool_forward, ys[0].size, flat(xs[0]), flat(ys[0]), rt[0], rt[1], rt[2],
               ct[0], ct[1], ct[2], hp, float(self.norm(layer)))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        rt, ct, hp = _setup(layer, xs[0].shape)
        launch(sum_pool_backward, gxs[0].size, flat(xs[0]), flat(ys[0]), flat(gys[0]),
               flat(gxs[0]), rt[2], ct[2], rt[3], rt[4], ct[3], ct[4], hp,
               float(self.norm(layer)))


class AvgPool2dCUDA(_SumPoolCUDA):
    layer = "AvgPool2d"


class LPPool2dCUDA(_SumPoolCUDA):
    layer = "LPPool2d"

    def norm(self, layer):
        return layer.norm_type


class AdaptiveAvgPool2dCUDA(_SumPoolCUDA):
    layer = "AdaptiveAvgPool2d"


class GlobalAvgPool2dCUDA(_SumPoolCUDA):
    layer = "GlobalAvgPool2d"


@hookimpl
def minicnn_kernels():
    return [MaxPool2dCUDA, AvgPool2dCUDA, LPPool2dCUDA, AdaptiveAvgPool2dCUDA, GlobalAvgPool2dCUDA]
