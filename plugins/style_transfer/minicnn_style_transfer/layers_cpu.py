"""CPU kernels of the style-transfer layers (Numba).

Layout: the features of sample ``n`` are viewed as the ``(C, M)`` matrix ``F`` (``M = H W``), a
free reshape of a C-contiguous NCHW array. The Gram matrix ``F F^T`` and the gradient ``S F`` are
computed in blocks of rows: one ``np.dot`` (SciPy's BLAS, held to one thread; see
:mod:`minicnn.jit`) per (sample, block of rows), spread over Numba's threads. Each output row is
written by exactly one task and the block size depends on the shape only, so results do not depend
on the number of threads.

The scalar losses add float64 partial sums of fixed-size chunks (one chunk per task), then add the
partials in chunk order: deterministic, whatever the thread count.

A ``layers_cuda.py`` twin (kernels with ``device = "cuda"``) can be added beside this file;
:func:`minicnn_style_transfer.plugin.minicnn_kernels` registers it when it is present.
"""

import numpy as np
from minicnn.jit import cpu_kernel, limit_blas_threads
from minicnn.kernel import Kernel
from numba import prange

CHUNK = 4096            # elements per partial sum of the content loss
PARALLEL_MIN = 1 << 15  # elements (or multiply-adds / 8 for the Gram kernels) from which the
#                         parallel drivers run: a parallel launch costs microseconds (much more
#                         on a busy machine), a serial jitted call a fraction of one


def row_block(channels):
    """Rows of ``F F^T`` (or of ``S F``) per task: at most 8 tasks per sample, at least 8 rows."""
    return max(8, -(-channels // 8))


def _parallel(work):
    return work >= PARALLEL_MIN


# -- Gram matrices: one np.dot per (sample, block of rows) ----------------------------------------

@cpu_kernel(parallel=False)
def _gram_task(f, y, task, blocks, block, scale):
    """``y[n, lo:hi] = scale * f[n, lo:hi] @ f[n]^T`` for task = (sample n, row block)."""
    i = task // blocks
    lo = (task % blocks) * block
    hi = min(f.shape[1], lo + block)
    np.dot(f[i, lo:hi], f[i].T, y[i, lo:hi])
    if scale != 1.0:
        y[i, lo:hi] *= scale


@cpu_kernel(parallel=False)
def gram_rows_serial(f, y, block, scale):
    blocks = (f.shape[1] + block - 1) // block
    for task in range(f.shape[0] * blocks):
        _gram_task(f, y, task, blocks, block, scale)


@cpu_kernel
def gram_rows_parallel(f, y, block, scale):
    blocks = (f.shape[1] + block - 1) // block
    for task in prange(f.shape[0] * blocks):
        _gram_task(f, y, task, blocks, block, scale)


@cpu_kernel(parallel=False)
def _rows_task(s, f, gx, task, blocks, block):
    """``gx[n, lo:hi] = s[n, lo:hi] @ f[n]`` for task = (sample n, row block)."""
    i = task // blocks
    lo = (task % blocks) * block
    hi = min(f.shape[1], lo + block)
    np.dot(s[i, lo:hi], f[i], gx[i, lo:hi])


@cpu_kernel(parallel=False)
def rows_times_features_serial(s, f, gx, block):
    blocks = (f.shape[1] + block - 1) // block
    for task in range(f.shape[0] * blocks):
        _rows_task(s, f, gx, task, blocks, block)


@cpu_kernel
def rows_times_features_parallel(s, f, gx, block):
    blocks = (f.shape[1] + block - 1) // block
    for task in prange(f.shape[0] * blocks):
        _rows_task(s, f, gx, task, blocks, block)


def gram_rows(f, y, scale):
    """``y[n] = scale * F_n F_n^T`` for ``f`` (N, C, M)."""
    n, c, m = f.shape
    driver = gram_rows_parallel if _parallel(n * c * c * m // 8) else gram_rows_serial
    driver(f, y, row_block(c), scale)


def rows_times_features(s, f, gx):
    """``gx[n] = S_n F_n`` for ``s`` (N, C, C) and ``f`` (N, C, M)."""
    n, c, m = f.shape
    driver = rows_times_features_parallel if _parallel(n * c * c * m // 8) \
        else rows_times_features_serial
    driver(s, f, gx, row_block(c))


@cpu_kernel(parallel=False)
def symmetrize(a, out, scale):
    """``out[n] = scale * (a[n] + a[n]^T)``."""
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            for j in range(a.shape[2]):
                out[i, k, j] = scale * (a[i, k, j] + a[i, j, k])


@cpu_kernel(parallel=False)
def gram_difference(g, t, diff):
    """``diff = g - t``; returns ``sum diff^2`` accumulated in float64 (row by row, in order)."""
    total = 0.0
    for i in range(g.shape[0]):
        for k in range(g.shape[1]):
            acc = 0.0
            for j in range(g.shape[2]):
                d = g[i, k, j] - t[i, k, j]
                diff[i, k, j] = d
                acc += np.float64(d) * np.float64(d)
            total += acc
    return total


@cpu_kernel(parallel=False)
def ordered_sum(partial):
    total = 0.0
    for k in range(partial.size):
        total += partial[k]
    return total


# -- content loss: chunked float64 sums ------------------------------------------------------------

@cpu_kernel(parallel=False)
def _squared_chunk(x, t, k):
    acc = 0.0
    for i in range(k * CHUNK, min(x.size, (k + 1) * CHUNK)):
        d = np.float64(x[i]) - np.float64(t[i])
        acc += d * d
    return acc


@cpu_kernel(parallel=False)
def squared_distance_serial(x, t, partial):
    for k in range(partial.size):
        partial[k] = _squared_chunk(x, t, k)


@cpu_kernel
def squared_distance_parallel(x, t, partial):
    for k in prange(partial.size):
        partial[k] = _squared_chunk(x, t, k)


@cpu_kernel(parallel=False)
def _difference_chunk(x, t, gx, scale, k):
    for i in range(k * CHUNK, min(x.size, (k + 1) * CHUNK)):
        gx[i] = scale * (x[i] - t[i])


@cpu_kernel(parallel=False)
def scaled_difference_serial(x, t, gx, scale):
    for k in range((x.size + CHUNK - 1) // CHUNK):
        _difference_chunk(x, t, gx, scale, k)


@cpu_kernel
def scaled_difference_parallel(x, t, gx, scale):
    for k in prange((x.size + CHUNK - 1) // CHUNK):
        _difference_chunk(x, t, gx, scale, k)


# -- total variation: one plane per task ------------------------------------------------------

@cpu_kernel(parallel=False)
def _tv_plane(x, p, power):
    """The total variation of plane ``p`` of ``x`` (P, H, W), in float64."""
    h, w = x.shape[1], x.shape[2]
    acc = 0.0
    for i in range(h):
        for j in range(w):
            v = np.float64(x[p, i, j])
            if i + 1 < h:
                d = np.float64(x[p, i + 1, j]) - v
                acc += d * d if power == 2 else abs(d)
            if j + 1 < w:
                d = np.float64(x[p, i, j + 1]) - v
                acc += d * d if power == 2 else abs(d)
    return acc


@cpu_kernel(parallel=False)
def tv_planes_serial(x, power, partial):
    for p in range(x.shape[0]):
        partial[p] = _tv_plane(x, p, power)


@cpu_kernel
def tv_planes_parallel(x, power, partial):
    for p in prange(x.shape[0]):
        partial[p] = _tv_plane(x, p, power)


@cpu_kernel(parallel=False)
def _tv_plane_backward(x, p, power, scale, gx):
    """Each pixel gathers the terms of its (up to) four differences: written once."""
    h, w = x.shape[1], x.shape[2]
    for i in range(h):
        for j in range(w):
            v = x[p, i, j]
            g = 0.0
            if i + 1 < h:
                d = x[p, i + 1, j] - v
                g -= 2.0 * d if power == 2 else np.sign(d)
            if i > 0:
                d = v - x[p, i - 1, j]
                g += 2.0 * d if power == 2 else np.sign(d)
            if j + 1 < w:
                d = x[p, i, j + 1] - v
                g -= 2.0 * d if power == 2 else np.sign(d)
            if j > 0:
                d = v - x[p, i, j - 1]
                g += 2.0 * d if power == 2 else np.sign(d)
            gx[p, i, j] = scale * g


@cpu_kernel(parallel=False)
def tv_backward_serial(x, power, scale, gx):
    for p in range(x.shape[0]):
        _tv_plane_backward(x, p, power, scale, gx)


@cpu_kernel
def tv_backward_parallel(x, power, scale, gx):
    for p in prange(x.shape[0]):
        _tv_plane_backward(x, p, power, scale, gx)


def _matrices(x):
    """An (N, C, H, W) array as (N, C, H W) without copying (a copy only if not contiguous)."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x).reshape(n, c, h * w)


class GramMatrixCPU(Kernel):
    layer, device = "GramMatrix", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {"sym": (out_shapes[0], dtype)}

    def forward(self, layer, xs, ys, ws):
        limit_blas_threads()
        gram_rows(_matrices(xs[0]), ys[0], layer.scale(xs[0].shape))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        f = _matrices(xs[0])
        symmetrize(np.ascontiguousarray(gys[0]), ws["sym"], layer.scale(xs[0].shape))
        rows_times_features(ws["sym"], f, gxs[0].reshape(f.shape))


class StyleLossCPU(Kernel):
    layer, device = "StyleLoss", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, c = in_shapes[0][:2]
        return {"gram": ((n, c, c), dtype), "diff": ((n, c, c), dtype),
                "sym": ((n, c, c), dtype)}

    def forward(self, layer, xs, ys, ws):
        limit_blas_threads()
        f = _matrices(xs[0])
        gram_rows(f, ws["gram"], 1.0)
        total = gram_difference(ws["gram"], np.ascontiguousarray(xs[1]), ws["diff"])
        ys[0][...] = layer.scale(xs[0].shape) * total

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        f = _matrices(xs[0])
        coef = 2.0 * layer.scale(xs[0].shape) * float(gys[0])
        symmetrize(ws["diff"], ws["sym"], coef)
        rows_times_features(ws["sym"], f, gxs[0].reshape(f.shape))


class ContentLossCPU(Kernel):
    layer, device = "ContentLoss", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        size = int(np.prod(in_shapes[0]))
        return {"partial": ((max(1, -(-size // CHUNK)),), np.float64)}

    def forward(self, layer, xs, ys, ws):
        x, t = (np.ascontiguousarray(a).reshape(-1) for a in xs)
        driver = squared_distance_parallel if _parallel(x.size) else squared_distance_serial
        driver(x, t, ws["partial"])
        ys[0][...] = layer.scale(xs[0].shape) * ordered_sum(ws["partial"])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, t = (np.ascontiguousarray(a).reshape(-1) for a in xs)
        coef = 2.0 * layer.scale(xs[0].shape) * float(gys[0])
        driver = scaled_difference_parallel if _parallel(x.size) else scaled_difference_serial
        driver(x, t, gxs[0].reshape(-1), coef)


class TotalVariationLossCPU(Kernel):
    layer, device = "TotalVariationLoss", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, c = in_shapes[0][:2]
        return {"partial": ((n * c,), np.float64)}

    def forward(self, layer, xs, ys, ws):
        n, c, h, w = xs[0].shape
        driver = tv_planes_parallel if _parallel(xs[0].size) else tv_planes_serial
        driver(np.ascontiguousarray(xs[0]).reshape(n * c, h, w), layer.power, ws["partial"])
        ys[0][...] = layer.scale(xs[0].shape) * ordered_sum(ws["partial"])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        n, c, h, w = xs[0].shape
        coef = layer.scale(xs[0].shape) * float(gys[0])
        driver = tv_backward_parallel if _parallel(xs[0].size) else tv_backward_serial
        driver(np.ascontiguousarray(xs[0]).reshape(n * c, h, w), layer.power, coef,
               gxs[0].reshape(n * c, h, w))


KERNELS = [GramMatrixCPU, StyleLossCPU, ContentLossCPU, TotalVariationLossCPU]
