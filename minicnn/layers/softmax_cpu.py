"""CPU kernels of Softmax and LogSoftmax (one kernel per direction, ``log`` selects the variant).

The input is viewed as (outer, D, inner): D is the softmax axis, outer the axes before it, inner
the axes after it (inner = 1 when ``dim`` is the last axis, so each row is contiguous). Parallel
tasks are (outer index, chunk of inner positions); within a task the D values of each inner
position are reduced by one thread in a fixed order (deterministic), with the running maximum (in
the data's dtype: it is exact) and the sums (float64) kept in workspace arrays of shape
(outer, inner). Along D the loops run over 1-D views of contiguous inner positions (LLVM vectorises
them; 3-D indexing inside the loops was 3 times slower). ``exp`` runs once per element, in the
data's dtype, on x - max <= 0.
"""

import math

import numpy as np
from numba import prange

from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl

INNER_CHUNK = 512   # inner positions per parallel task


@cpu_kernel
def softmax_forward(x, y, mx, acc, log):
    outer, d, inner = x.shape
    n_chunks = (inner + INNER_CHUNK - 1) // INNER_CHUNK
    for task in prange(outer * n_chunks):
        o = task // n_chunks
        i0 = (task % n_chunks) * INNER_CHUNK
        i1 = min(i0 + INNER_CHUNK, inner)
        if inner == 1:     # contiguous row: scalar reductions
            top = x[o, 0, 0]
            for k in range(1, d):
                if x[o, k, 0] > top:
                    top = x[o, k, 0]
            total = 0.0
            if log:
                for k in range(d):
                    total += math.exp(x[o, k, 0] - top)
                lse = top + math.log(total)
                for k in range(d):
                    y[o, k, 0] = x[o, k, 0] - lse
            else:
                for k in range(d):
                    e = math.exp(x[o, k, 0] - top)
                    y[o, k, 0] = e
                    total += e
                r = 1.0 / total
                for k in range(d):
                    y[o, k, 0] *= r
            continue
        n = i1 - i0
        m = mx[o, i0:i1]       # 1-D views: plain unit-stride loops that LLVM vectorises
        a = acc[o, i0:i1]
        xr = x[o, 0, i0:i1]
        for j in range(n):
            m[j] = xr[j]
            a[j] = 0.0
        for k in range(1, d):
            xr = x[o, k, i0:i1]
            for j in range(n):
                v = xr[j]
                m[j] = v if v > m[j] else m[j]
        if log:
            for k in range(d):
                xr = x[o, k, i0:i1]
                for j in range(n):
                    a[j] += math.exp(xr[j] - m[j])
            for j in range(n):
                a[j] = m[j] + math.log(a[j])      # log-sum-exp
            for k in range(d):
                xr = x[o, k, i0:i1]
                yr = y[o, k, i0:i1]
                for j in range(n):
                    yr[j] = xr[j] - a[j]
        else:
            for k in range(d):
                xr = x[o, k, i0:i1]
                yr = y[o, k, i0:i1]
                for j in range(n):
                    e = math.exp(xr[j] - m[j])
                    yr[j] = e
                    a[j] += e
            for j in range(n):
                a[j] = 1.0 / a[j]
            for k in range(d):
                yr = y[o, k, i0:i1]
                for j in range(n):
                    yr[j] *= a[j]


@cpu_kernel
def softmax_backward(y, gy, gx, acc, log):
    outer, d, inner = y.shape
    n_chunks = (inner + INNER_CHUNK - 1) // INNER_CHUNK
    for task in prange(outer * n_chunks):
        o = task // n_chunks
        i0 = (task % n_chunks) * INNER_CHUNK
        i1 = min(i0 + INNER_CHUNK, inner)
        if inner == 1:     # contiguous row: scalar sums
            total = 0.0
            if log:
                for k in range(d):
                    total += gy[o, k, 0]
                for k in range(d):
                    gx[o, k, 0] = gy[o, k, 0] - math.exp(y[o, k, 0]) * total
            else:
                for k in range(d):
                    total += gy[o, k, 0] * y[o, k, 0]
                for k in range(d):
                    gx[o, k, 0] = y[o, k, 0] * (gy[o, k, 0] - total)
            continue
        n = i1 - i0
        a = acc[o, i0:i1]
        for j in range(n):
            a[j] = 0.0
        if log:   # gx = gy - softmax * sum(gy), softmax = exp(y)
            for k in range(d):
                gyr = gy[o, k, i0:i1]
                for j in range(n):
                    a[j] += gyr[j]
            for k in range(d):
                yr, gyr, gxr = y[o, k, i0:i1], gy[o, k, i0:i1], gx[o, k, i0:i1]
                for j in range(n):
                    gxr[j] = gyr[j] - math.exp(yr[j]) * a[j]
        else:     # gx = y * (gy - sum(gy * y))
            for k in range(d):
                yr, gyr = y[o, k, i0:i1], gy[o, k, i0:i1]
                for j in range(n):
                    a[j] += gyr[j] * yr[j]
            for k in range(d):
                yr, gyr, gxr = y[o, k, i0:i1], gy[o, k, i0:i1], gx[o, k, i0:i1]
                for j in range(n):
                    gxr[j] = yr[j] * (gyr[j] - a[j])


def _dims(layer, shape):
    axis = layer.axis(len(shape))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, shape[axis], inner


class SoftmaxCPU(Kernel):
    layer, device = "Softmax", "cpu"
    log = False

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        outer, _, inner = _dims(layer, in_shapes[0])
        return {"max": ((outer, inner), dtype), "sum": ((outer, inner), np.float64)}

    def forward(self, layer, xs, ys, ws):
        view = _dims(layer, xs[0].shape)
        softmax_forward(xs[0].reshape(view), ys[0].reshape(view), ws["max"], ws["sum"], self.log)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        view = _dims(layer, ys[0].shape)
        softmax_backward(ys[0].reshape(view), gys[0].reshape(view), gxs[0].reshape(view),
                         ws["sum"], self.log)


class LogSoftmaxCPU(SoftmaxCPU):
    layer, log = "LogSoftmax", True


@hookimpl
def minicnn_kernels():
    return [SoftmaxCPU, LogSoftmaxCPU]
