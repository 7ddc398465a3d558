"""CUDA kernels of the style-transfer layers (numba.cuda), ``device = "cuda"``.

Only the plugin's ``minicnn_device_kernels("cuda")`` hook imports this module, when minicnn first
uses the ``"cuda"`` device (after minicnn has set numba.cuda up, or its simulator with
``NUMBA_ENABLE_CUDASIM=1``). The semantics are the CPU kernels' (:mod:`.layers_cpu`).

Layout: the executor hands over C-contiguous device arrays; the kernels take flat views. For sample
``n`` the features are the ``(C, M)`` matrix ``F`` (``M = H W``). Every kernel is a grid-stride
loop (any grid covers any shape) and every output element is written by exactly one thread, with
a fixed summation order: no float atomics, no races, the same bits in every run and for any
launch shape.

* Gram matrix: one thread per upper-triangle entry ``(n, k, j)``, ``j >= k``, sums
  ``F[k, m] F[j, m]`` over ``m`` in order (in float64) and writes both ``G[k, j]`` and ``G[j, k]``
  (exactly symmetric). With few entries and long rows (VGG's conv1_1 at 256 x 256: 2,080 entries
  of 65,536 products) that leaves the GPU nearly idle, so the rows are cut into ``gram_chunks``
  chunks: a thread per (entry, chunk) sums its chunk in order (``gram_partials``), then a thread
  per entry adds the chunks in order (``gram_combine``). No shared-memory tiling yet.
* ``S F`` products of the backward passes (Gram: ``S = gy + gy^T``; style: ``S = D + D^T``,
  ``D = G - T``): one thread per ``gx[n, k, m]`` gathers ``sum_j S[k, j] F[j, m]`` in order.
* Scalar losses: per-row (style), per-chunk (content, ``CHUNK`` elements) or per rows of a plane
  (total variation, ``tv_chunks``) float64 partial sums, one thread each, into a float64
  workspace; then one thread adds the partials in index order and writes the scaled loss. The
  total variation sums each chunk of rows in the CPU kernel's order.
* The output gradient of a loss is a device scalar: backward kernels read it on the device (no
  copy back to the host).

Launches go through minicnn's public helpers (:mod:`minicnn.cuda_device`: ``launch``, ``flat``,
``const_array``), so threads per block and the block cap are minicnn's settings
(``minicnn.cuda_device.set_launch``); tests shrink them to force several blocks and grid-stride
iterations.
"""

import numpy as np
from minicnn.cuda_device import const_array, flat, launch
from minicnn.kernel import Kernel
from numba import cuda

CHUNK = 4096            # elements per partial sum of the content loss
GRAM_THREADS = 1 << 16  # the Gram's partial sums aim at about this many threads ...
MIN_GRAM_CHUNK = 512    # ... each summing at least this many products
TV_THREADS = 4096       # the total variation's row chunks aim at about this many threads


# -- kernels --------------------------------------------------------------------------------------

@cuda.jit(device=True)
def _upper_entry(r, C):
    """(k, j), j >= k, of entry r of a C x C upper triangle stored row by row."""
    k = 0                              # row k of the upper triangle holds C - k entries
    while r >= C - k:
        r -= C - k
        k += 1
    return k, k + r


@cuda.jit
def gram_forward(f, y, N, C, M, scale):
    """``y[n] = scale F_n F_n^T``: one thread per (n, k, j), j >= k, writing both halves."""
    tri = C * (C + 1) // 2
    for i in range(cuda.grid(1), N * tri, cuda.gridsize(1)):
        n = i // tri
        k, j = _upper_entry(i % tri, C)
        a = (n * C + k) * M
        b = (n * C + j) * M
        acc = 0.0
        for m in range(M):
            acc += np.float64(f[a + m]) * np.float64(f[b + m])
        v = scale * acc
        y[(n * C + k) * C + j] = v
        y[(n * C + j) * C + k] = v


@cuda.jit
def gram_partials(f, part, N, C, M, chunks):
    """``part[(n * chunks + s) * tri + e]``: the sum over chunk s of the m of F[k, m] F[j, m]
    for upper entry e = (k, j), in order (float64). Consecutive threads take consecutive entries
    of one chunk, so they share row k's reads."""
    tri = C * (C + 1) // 2
    size = (M + chunks - 1) // chunks
    for i in range(cuda.grid(1), N * chunks * tri, cuda.gridsize(1)):
        r = i // tri
        n = r // chunks
        k, j = _upper_entry(i - r * tri, C)
        lo = (r - n * chunks) * size
        hi = lo + size
        if hi > M:
            hi = M
        a = (n * C + k) * M
        b = (n * C + j) * M
        acc = 0.0
        for m in range(lo, hi):
            acc += np.float64(f[a + m]) * np.float64(f[b + m])
        part[i] = acc


@cuda.jit
def gram_combine(part, y, N, C, chunks, scale):
    """``y[n] = scale (the chunks' partial sums added in chunk order)``, both halves."""
    tri = C * (C + 1) // 2
    for i in range(cuda.grid(1), N * tri, cuda.gridsize(1)):
        n = i // tri
        e = i - n * tri
        acc = 0.0
        for s in range(chunks):
            acc += part[(n * chunks + s) * tri + e]
        k, j = _upper_entry(e, C)
        v = scale * acc
        y[(n * C + k) * C + j] = v
        y[(n * C + j) * C + k] = v


@cuda.jit
def sym_times_features(s, f, gx, N, C, M, scale, gy):
    """``gx[n, k, m] = scale gy[0] sum_j (S[k, j] + S[j, k]) F[j, m]``, one thread per element."""
    coef = scale * np.float64(gy[0])
    for i in range(cuda.grid(1), N * C * M, cuda.gridsize(1)):
        m = i % M
        r = i // M
        k = r % C
        n = r // C
        base = n * C * C
        acc = 0.0
        for j in range(C):
            acc += (np.float64(s[base + k * C + j]) + np.float64(s[base + j * C + k])) \
                * np.float64(f[(n * C + j) * M + m])
        gx[i] = coef * acc


@cuda.jit
def gram_difference_rows(g, t, diff, partial, rows, C):
    """``diff = g - t``; ``partial[row] = sum_j diff[row, j]^2`` (float64, in order)."""
    for r in range(cuda.grid(1), rows, cuda.gridsize(1)):
        acc = 0.0
        for j in range(r * C, (r + 1) * C):
            d = g[j] - t[j]
            diff[j] = d
            acc += np.float64(d) * np.float64(d)
        partial[r] = acc


@cuda.jit
def ordered_sum(partial, y, scale):
    """One thread: ``y[0] = scale * sum partial`` in index order."""
    for i in range(cuda.grid(1), 1, cuda.gridsize(1)):
        total = 0.0
        for k in range(partial.size):
            total += partial[k]
        y[i] = scale * total


@cuda.jit
def squared_distance_chunks(x, t, partial, chunk):
    for k in range(cuda.grid(1), partial.size, cuda.gridsize(1)):
        hi = (k + 1) * chunk
        if hi > x.size:
            hi = x.size
        acc = 0.0
        for i in range(k * chunk, hi):
            d = np.float64(x[i]) - np.float64(t[i])
            acc += d * d
        partial[k] = acc


@cuda.jit
def scaled_difference(x, t, gx, scale, gy):
    coef = scale * np.float64(gy[0])
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        gx[i] = coef * (x[i] - t[i])


@cuda.jit(device=True)
def _term(d, power):
    if power == 2:
        return d * d
    return abs(d)


@cuda.jit(device=True)
def _slope(d, power):
    """The derivative of ``_term`` (0 at 0 for power 1, as np.sign)."""
    if power == 2:
        return 2.0 * d
    if d > 0:
        return 1.0
    if d < 0:
        return -1.0
    return 0.0


@cuda.jit
def tv_planes(x, partial, H, W, power, chunks):
    """``partial[p * chunks + s]``: the total variation terms of rows chunk s of plane p (their
    differences down and right), in the CPU kernel's order."""
    size = (H + chunks - 1) // chunks
    for t in range(cuda.grid(1), partial.size, cuda.gridsize(1)):
        p = t // chunks
        lo = (t - p * chunks) * size
        hi = lo + size
        if hi > H:
            hi = H
        base = p * H * W
        acc = 0.0
        for i in range(lo, hi):
            for j in range(W):
                v = np.float64(x[base + i * W + j])
                if i + 1 < H:
                    acc += _term(np.float64(x[base + (i + 1) * W + j]) - v, power)
                if j + 1 < W:
                    acc += _term(np.float64(x[base + i * W + j + 1]) - v, power)
        partial[t] = acc


@cuda.jit
def tv_backward(x, gx, H, W, power, scale, gy):
    """Each pixel gathers the terms of its (up to) four differences: written once."""
    coef = scale * np.float64(gy[0])
    for o in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        j = o % W
        i = (o // W) % H
        v = np.float64(x[o])
        g = 0.0
        if i + 1 < H:
            g -= _slope(np.float64(x[o + W]) - v, power)
        if i > 0:
            g += _slope(v - np.float64(x[o - W]), power)
        if j + 1 < W:
            g -= _slope(np.float64(x[o + 1]) - v, power)
        if j > 0:
            g += _slope(v - np.float64(x[o - 1]), power)
        gx[o] = coef * g


# -- launches and host side -----------------------------------------------------------------------

def _one(dtype):
    """A device array ``[1]`` of ``dtype`` (the output gradient of a layer that has none)."""
    return const_array((1,), dtype)


def _sizes(shape):
    """(N, C, M = H W) of an (N, C, H, W) shape."""
    n, c, h, w = (int(v) for v in shape)
    return n, c, h * w


def tv_chunks(planes, rows):
    """Row chunks per plane of the total variation: an RGB image is 3 planes, so a thread per
    plane would leave the GPU idle; enough chunks for about TV_THREADS threads."""
    return max(1, min(rows, -(-TV_THREADS // planes)))


def gram_chunks(n, c, m):
    """Chunks per Gram row: enough (entry, chunk) threads to fill a GPU, each chunk at least
    MIN_GRAM_CHUNK long; 1: a thread per entry sums its whole row."""
    entries = n * c * (c + 1) // 2
    return max(1, min(-(-GRAM_THREADS // entries), m // MIN_GRAM_CHUNK))


def _gram_workspace(shape):
    n, c, m = _sizes(shape)
    chunks = gram_chunks(n, c, m)
    if chunks == 1:
        return {}
    return {"gram_part": ((n * chunks * c * (c + 1) // 2,), np.float64)}


def run_gram(x, out, scale, ws):
    """out = scale * the Gram matrices of x (N, C, H, W), chunked when that pays (and the
    workspace was planned for it)."""
    n, c, m = _sizes(x.shape)
    chunks = gram_chunks(n, c, m)
    part = ws.get("gram_part")
    tri = c * (c + 1) // 2
    if chunks > 1 and part is not None and part.size == n * chunks * tri:
        launch(gram_partials, part.size, flat(x), part, n, c, m, chunks)
        launch(gram_combine, n * tri, part, out, n, c, chunks, scale)
    else:
        launch(gram_forward, n * tri, flat(x), out, n, c, m, scale)


class GramMatrixCUDA(Kernel):
    layer, device = "GramMatrix", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return _gram_workspace(in_shapes[0])

    def forward(self, layer, xs, ys, ws):
        run_gram(xs[0], flat(ys[0]), float(layer.scale(xs[0].shape)), ws)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        n, c, m = _sizes(xs[0].shape)
        launch(sym_times_features, n * c * m, flat(gys[0]), flat(xs[0]), flat(gxs[0]),
               n, c, m, float(layer.scale(xs[0].shape)), _one(xs[0].dtype))


class StyleLossCUDA(Kernel):
    layer, device = "StyleLoss", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, c = in_shapes[0][:2]
        return {"gram": ((n, c, c), dtype), "diff": ((n, c, c), dtype),
                "partial": ((n * c,), np.float64), **_gram_workspace(in_shapes[0])}

    def forward(self, layer, xs, ys, ws):
        n, c, m = _sizes(xs[0].shape)
        gram, diff, partial = (flat(ws[k]) for k in ("gram", "diff", "partial"))
        run_gram(xs[0], gram, 1.0, ws)
        launch(gram_difference_rows, n * c, gram, flat(xs[1]), diff, partial, n * c, c)
        launch(ordered_sum, 1, partial, flat(ys[0]), float(layer.scale(xs[0].shape)))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        n, c, m = _sizes(xs[0].shape)
        launch(sym_times_features, n * c * m, flat(ws["diff"]), flat(xs[0]), flat(gxs[0]),
               n, c, m, 2.0 * float(layer.scale(xs[0].shape)), flat(gys[0]))


class ContentLossCUDA(Kernel):
    layer, device = "ContentLoss", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        size = int(np.prod(in_shapes[0]))
        return {"partial": ((max(1, -(-size // CHUNK)),), np.float64)}

    def forward(self, layer, xs, ys, ws):
        partial = ws["partial"]
        launch(squared_distance_chunks, partial.size, flat(xs[0]), flat(xs[1]), partial,
               CHUNK)
        launch(ordered_sum, 1, partial, flat(ys[0]), float(layer.scale(xs[0].shape)))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        launch(scaled_difference, xs[0].size, flat(xs[0]), flat(xs[1]), flat(gxs[0]),
               2.0 * float(layer.scale(xs[0].shape)), flat(gys[0]))


class TotalVariationLossCUDA(Kernel):
    layer, device = "TotalVariationLoss", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, c, h = (int(v) for v in in_shapes[0][:3])
        return {"partial": ((n * c * tv_chunks(n * c, h),), np.float64)}

    def forward(self, layer, xs, ys, ws):
        n, c, h, w = (int(v) for v in xs[0].shape)
        partial = ws["partial"]
        chunks = partial.size // (n * c)
        launch(tv_planes, partial.size, flat(xs[0]), partial, h, w, int(layer.power), chunks)
        launch(ordered_sum, 1, partial, flat(ys[0]), float(layer.scale(xs[0].shape)))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        h, w = (int(v) for v in xs[0].shape[2:])
        launch(tv_backward, xs[0].size, flat(xs[0]), flat(gxs[0]), h, w, int(layer.power),
               float(layer.scale(xs[0].shape)), flat(gys[0]))


KERNELS = [GramMatrixCUDA, StyleLossCUDA, ContentLossCUDA, TotalVariationLossCUDA]

__all__ = ["CHUNK", "GRAM_THREADS", "KERNELS", "MIN_GRAM_CHUNK", "TV_THREADS"]
