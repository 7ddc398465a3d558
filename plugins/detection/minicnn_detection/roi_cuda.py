"""CUDA kernels of :class:`RoIPool` and :class:`RoIAlign` (numba.cuda), ``device = "cuda"``.

This module imports numba.cuda, so only the plugin's ``minicnn_device_kernels("cuda")`` hook
imports it, when minicnn first runs something on the ``"cuda"`` device (after minicnn has set
numba.cuda up, or its simulator with ``NUMBA_ENABLE_CUDASIM=1``). The semantics are the CPU
kernels' (:mod:`.roi_cpu`, torchvision's): the same geometry, computed in float64 whatever the data
type, in the same expressions.

Layouts: the executor hands over C-contiguous device arrays; the kernels take flat views of
features ``x (N, C, H, W)``, rois ``(K, 5)`` and outputs ``y (K, C, PH, PW)``. Every kernel is a
grid-stride loop (any grid size covers any shape); sizes travel as one small int64 device array
``hp = (N, C, H, W, K, PH, PW, sampling_ratio, aligned, channel block)`` uploaded once per shape.

* Forward: one thread per output element ``(k, c, ph, pw)``, which computes its ROI's geometry
  and its bin (a max over the bin for ROI pool, the average of ``grid_h x grid_w`` bilinear
  samples for ROI Align, summed in float64).
* Backward, gather-style and deterministic: one thread per ``(n, channel block, h, w)`` of the
  feature gradient owns those ``CHANNEL_BLOCK`` elements and writes them alone. It visits the ROIs
  of image ``n`` in index order (a ``(K,)`` order and an ``(N + 1,)`` start table built on the host
  in forward, as on the CPU), skips the ROIs and bins whose extent misses cell ``(h, w)``, and
  adds the contributions of the rest in the CPU kernels' order (ROI, ph, pw, then the samples iy,
  ix and their four bilinear taps for ROI Align; ROI, ph, pw for ROI pool, where the forward's
  arg-max says which cell gets each output gradient). No float atomics, no races: the same bits
  in every run, whatever the grid. The skip tests only prune: each candidate bin or sample is then
  tested with the forward's own expressions, so nothing is dropped.
* ROI pool's forward stores the flat arg-max ``h * W + w`` of each output (-1: empty bin) in an
  ``int32`` workspace.

Host work: the batch indices are validated exactly as on the CPU (:func:`.roi_cpu.roi_batch`,
the same ``InputError`` messages), which copies the ``(K, 5)`` rois to the host once per forward
(a few KB; in Faster R-CNN they came from the host anyway); the batch index, order and start
tables are uploaded into the ``index`` workspace, so backward does no host work.

Differences from the CPU: ROI Align sums its samples in float64 and divides once (the CPU kernel
accumulates in the output's data type), so float32 results differ in the last bits; on a real GPU
NVVM may contract ``a * b + c`` into fused multiply-adds (float64 differences of about 1e-16
relative; the CPU kernels, compiled with ``fastmath={"contract"}``, may fuse too). ROI pool's
maxima and gradient sums are exact and in the CPU's order: the CPU's bits.

Launches go through minicnn's public helpers (:mod:`minicnn.cuda_device`: ``launch``, ``flat``,
``const_array``), so threads per block and the block cap are minicnn's settings
(``minicnn.cuda_device.set_launch``). ``CHANNEL_BLOCK`` is this module's own
(:func:`set_channel_block`); tests shrink all three to force several blocks and grid-stride
iterations.
"""

import math

import numpy as np
from minicnn import to_numpy
from minicnn.cuda_device import const_array, flat, launch
from minicnn.kernel import Kernel
from numba import cuda

from .roi_cpu import _by_image, roi_batch

CHANNEL_BLOCK = 4     # feature-gradient channels per backward thread (the geometry is shared)


def set_channel_block(channel_block):
    """Change the feature-gradient channels per backward thread (tests: a block that does not
    divide the channels); returns the old value. Threads per block and the block cap are
    minicnn's (``minicnn.cuda_device.set_launch``)."""
    global CHANNEL_BLOCK
    if int(channel_block) < 1:
        raise ValueError(f"channel_block must be at least 1, got {channel_block!r}")
    old, CHANNEL_BLOCK = CHANNEL_BLOCK, int(channel_block)
    return old


# -- device functions: the CPU kernels' geometry, expression for expression -----------------------

@cuda.jit(device=True)
def _round_half_away(v):
    return int(math.floor(abs(v) + 0.5) * (1.0 if v >= 0 else -1.0))


@cuda.jit(device=True)
def _clip(v, hi):
    if v < 0:
        return 0
    if v > hi:
        return hi
    return v


@cuda.jit(device=True)
def _pool_box(rois, k, scale, PH, PW):
    """(start column, start row, bin height, bin width) of ROI k, rounded as torchvision."""
    sw = _round_half_away(rois[k * 5 + 1] * scale)
    sh = _round_half_away(rois[k * 5 + 2] * scale)
    ew = _round_half_away(rois[k * 5 + 3] * scale)
    eh = _round_half_away(rois[k * 5 + 4] * scale)
    roi_h = eh - sh + 1
    if roi_h < 1:
        roi_h = 1
    roi_w = ew - sw + 1
    if roi_w < 1:
        roi_w = 1
    return sw, sh, roi_h / PH, roi_w / PW


@cuda.jit(device=True)
def _align_geometry(rois, k, scale, sampling_ratio, aligned, PH, PW):
    """(y0, x0, bin_h, bin_w, grid_h, grid_w, count) of ROI k."""
    offset = 0.5 if aligned else 0.0
    x0 = rois[k * 5 + 1] * scale - offset
    y0 = rois[k * 5 + 2] * scale - offset
    roi_w = rois[k * 5 + 3] * scale - offset - x0
    roi_h = rois[k * 5 + 4] * scale - offset - y0
    if not aligned:
        if roi_w < 1.0:
            roi_w = 1.0
        if roi_h < 1.0:
            roi_h = 1.0
    bin_h = roi_h / PH
    bin_w = roi_w / PW
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / PH))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / PW))
    count = grid_h * grid_w
    if count < 1:
        count = 1
    return y0, x0, bin_h, bin_w, grid_h, grid_w, count


@cuda.jit(device=True)
def _axis(v, size):
    """One axis of torchvision's bilinear rule for a point inside [-1, size]: (low, high,
    fraction above low)."""
    if v <= 0.0:
        v = 0.0
    low = int(v)
    if low >= size - 1:
        low = size - 1
        high = size - 1
        v = float(low)
    else:
        high = low + 1
    return low, high, v - low


@cuda.jit(device=True)
def _near(lo, hi, cell):
    """Whether a sample in [min(lo, hi), max(lo, hi)] can touch ``cell`` (bilinear taps reach one
    cell either side, two from [-1, 0]; a margin of 2 covers every case and float rounding)."""
    if hi < lo:
        lo, hi = hi, lo
    return cell >= lo - 2.0 and cell <= hi + 2.0


# -- kernels --------------------------------------------------------------------------------------

@cuda.jit
def roi_pool_forward(x, rois, index, y, argmax, hp, scale):
    C, H, W, PH, PW = hp[1], hp[2], hp[3], hp[5], hp[6]
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        pw = i % PW
        r = i // PW
        ph = r % PH
        r = r // PH
        c = r % C
        k = r // C
        n = index[k]
        sw, sh, bin_h, bin_w = _pool_box(rois, k, scale, PH, PW)
        h0 = _clip(int(math.floor(ph * bin_h)) + sh, H)
        h1 = _clip(int(math.ceil((ph + 1) * bin_h)) + sh, H)
        w0 = _clip(int(math.floor(pw * bin_w)) + sw, W)
        w1 = _clip(int(math.ceil((pw + 1) * bin_w)) + sw, W)
        best = 0.0 if (h1 <= h0 or w1 <= w0) else -math.inf
        arg = -1
        base = (n * C + c) * H * W
        for h in range(h0, h1):
            for w in range(w0, w1):
                v = x[base + h * W + w]
                if v > best:           # strict: the first maximum wins, NaN never does (as CPU)
                    best = v
                    arg = h * W + w
        y[i] = best
        argmax[i] = arg


@cuda.jit
def roi_pool_backward(gy, rois, index, argmax, gx, hp, scale):
    N, C, H, W, K, PH, PW, cblock = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5], hp[6], hp[9]
    blocks = (C + cblock - 1) // cblock
    for i in range(cuda.grid(1), N * blocks * H * W, cuda.gridsize(1)):
        w = i % W
        r = i // W
        h = r % H
        r = r // H
        c0 = (r % blocks) * cblock
        n = r // blocks
        c1 = c0 + cblock
        if c1 > C:
            c1 = C
        me = h * W + w
        for c in range(c0, c1):
            gx[((n * C + c) * H + h) * W + w] = 0.0
        for t in range(index[2 * K + n], index[2 * K + n + 1]):
            k = index[K + t]
            sw, sh, bin_h, bin_w = _pool_box(rois, k, scale, PH, PW)
            if h < sh - 1 or h > sh + PH * bin_h + 1 or w < sw - 1 or w > sw + PW * bin_w + 1:
                continue           # outside every bin of this ROI (a generous superset)
            for ph in range(PH):
                h0 = _clip(int(math.floor(ph * bin_h)) + sh, H)
                h1 = _clip(int(math.ceil((ph + 1) * bin_h)) + sh, H)
                if h < h0 or h >= h1:
                    continue
                for pw in range(PW):
                    w0 = _clip(int(math.floor(pw * bin_w)) + sw, W)
                    w1 = _clip(int(math.ceil((pw + 1) * bin_w)) + sw, W)
                    if w < w0 or w >= w1:
                        continue
                    for c in range(c0, c1):
                        o = ((k * C + c) * PH + ph) * PW + pw
                        if argmax[o] == me:
                            gx[((n * C + c) * H + h) * W + w] += gy[o]


@cuda.jit
def roi_align_forward(x, rois, index, y, hp, scale):
    C, H, W, PH, PW, sampling_ratio, aligned = hp[1], hp[2], hp[3], hp[5], hp[6], hp[7], hp[8]
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        pw = i % PW
        r = i // PW
        ph = r % PH
        r = r // PH
        c = r % C
        k = r // C
        n = index[k]
        y0, x0, bin_h, bin_w, grid_h, grid_w, count = _align_geometry(
            rois, k, scale, sampling_ratio, aligned != 0, PH, PW)
        base = (n * C + c) * H * W
        acc = 0.0
        for iy in range(grid_h):
            yy = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
            if yy < -1.0 or yy > H:
                continue
            y_low, y_high, ly = _axis(yy, H)
            hy = 1.0 - ly
            for ix in range(grid_w):
                xx = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                if xx < -1.0 or xx > W:
                    continue
                x_low, x_high, lx = _axis(xx, W)
                hx = 1.0 - lx
                lo = base + y_low * W
                hi = base + y_high * W
                acc += (hy * hx * x[lo + x_low] + hy * lx * x[lo + x_high]
                        + ly * hx * x[hi + x_low] + ly * lx * x[hi + x_high])
        y[i] = acc / count


@cuda.jit
def roi_align_backward(gy, rois, index, gx, hp, scale):
    N, C, H, W, K, PH, PW = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5], hp[6]
    sampling_ratio, aligned, cblock = hp[7], hp[8], hp[9]
    blocks = (C + cblock - 1) // cblock
    for i in range(cuda.grid(1), N * blocks * H * W, cuda.gridsize(1)):
        w = i % W
        r = i // W
        h = r % H
        r = r // H
        c0 = (r % blocks) * cblock
        n = r // blocks
        c1 = c0 + cblock
        if c1 > C:
            c1 = C
        for c in range(c0, c1):
            gx[((n * C + c) * H + h) * W + w] = 0.0
        for t in range(index[2 * K + n], index[2 * K + n + 1]):
            k = index[K + t]
            y0, x0, bin_h, bin_w, grid_h, grid_w, count = _align_geometry(
                rois, k, scale, sampling_ratio, aligned != 0, PH, PW)
            if grid_h <= 0 or grid_w <= 0:
                continue                                   # no samples
            if not _near(y0, y0 + PH * bin_h, h) or not _near(x0, x0 + PW * bin_w, w):
                continue                                   # the whole ROI is too far
            for ph in range(PH):
                if not _near(y0 + ph * bin_h, y0 + (ph + 1) * bin_h, h):
                    continue
                for pw in range(PW):
                    if not _near(x0 + pw * bin_w, x0 + (pw + 1) * bin_w, w):
                        continue
                    for iy in range(grid_h):
                        yy = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        if yy < -1.0 or yy > H:
                            continue
                        y_low, y_high, ly = _axis(yy, H)
                        if y_low != h and y_high != h:
                            continue
                        hy = 1.0 - ly
                        for ix in range(grid_w):
                            xx = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            if xx < -1.0 or xx > W:
                                continue
                            x_low, x_high, lx = _axis(xx, W)
                            if x_low != w and x_high != w:
                                continue
                            hx = 1.0 - lx
                            for c in range(c0, c1):           # the CPU's tap order
                                g = gy[((k * C + c) * PH + ph) * PW + pw] / count
                                o = ((n * C + c) * H + h) * W + w
                                if y_low == h and x_low == w:
                                    gx[o] += hy * hx * g
                                if y_low == h and x_high == w:
                                    gx[o] += hy * lx * g
                                if y_high == h and x_low == w:
                                    gx[o] += ly * hx * g
                                if y_high == h and x_high == w:
                                    gx[o] += ly * lx * g


# -- launches and host side -----------------------------------------------------------------------

def _hp(layer, x_shape, k):
    """The int64 device table of sizes (cached by value)."""
    n, c, h, w = (int(v) for v in x_shape)
    ph, pw = layer.output_size
    return const_array((n, c, h, w, int(k), ph, pw, int(getattr(layer, "sampling_ratio", 0)),
                        int(bool(getattr(layer, "aligned", False))), CHANNEL_BLOCK))


def _upload_index(layer, x, rois, ws):
    """Validate the batch indices on the host (the CPU kernel's checks and messages) and upload
    ``[batch (K), order (K), starts (N + 1)]`` into the ``index`` workspace."""
    host = np.asarray(to_numpy(rois))
    batch = roi_batch(layer, x, host)
    order, starts = _by_image(batch, x.shape[0])
    table = np.concatenate([batch, order, starts]).astype(np.int64)
    index = ws["index"]
    if hasattr(index, "copy_to_device"):
        index.copy_to_device(table)
    else:
        index[...] = table
    return index


class _RoICUDA(Kernel):
    device = "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, k = in_shapes[0][0], in_shapes[1][0]
        return {"index": ((2 * k + n + 1,), np.int64)}


class RoIPoolCUDA(_RoICUDA):
    layer = "RoIPool"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {**super().workspace(layer, in_shapes, out_shapes, dtype),
                "argmax": (out_shapes[0], np.int32)}

    def forward(self, layer, xs, ys, ws):
        x, rois = xs
        index = _upload_index(layer, x, rois, ws)
        launch(roi_pool_forward, ys[0].size, flat(x), flat(rois), index, flat(ys[0]),
               flat(ws["argmax"]), _hp(layer, x.shape, rois.shape[0]),
               float(layer.spatial_scale))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, rois = xs
        n, c, h, w = x.shape
        blocks = -(-c // CHANNEL_BLOCK)
        launch(roi_pool_backward, n * blocks * h * w, flat(gys[0]), flat(rois), ws["index"],
               flat(ws["argmax"]), flat(gxs[0]), _hp(layer, x.shape, rois.shape[0]),
               float(layer.spatial_scale))


class RoIAlignCUDA(_RoICUDA):
    layer = "RoIAlign"

    def forward(self, layer, xs, ys, ws):
        x, rois = xs
        index = _upload_index(layer, x, rois, ws)
        launch(roi_align_forward, ys[0].size, flat(x), flat(rois), index, flat(ys[0]),
               _hp(layer, x.shape, rois.shape[0]), float(layer.spatial_scale))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, rois = xs
        n, c, h, w = x.shape
        blocks = -(-c // CHANNEL_BLOCK)
        launch(roi_align_backward, n * blocks * h * w, flat(gys[0]), flat(rois),
               ws["index"], flat(gxs[0]), _hp(layer, x.shape, rois.shape[0]),
               float(layer.spatial_scale))
