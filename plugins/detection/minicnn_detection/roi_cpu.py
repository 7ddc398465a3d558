"""CPU kernels of :class:`RoIPool` and :class:`RoIAlign` (numba).

Layouts: features ``x (N, C, H, W)``, rois ``(K, 5)``, outputs ``y (K, C, PH, PW)``; the batch
index of each ROI is checked and converted to ``int64`` in Python first (:func:`roi_batch`).

* Forward: one ROI per ``prange`` iteration. The box geometry (bins, sample positions, bilinear
  weights) is computed once per bin or sample and applied to every channel, so each output element
  is written by exactly one thread.
* Backward, gather-style and deterministic: the input gradient of image ``n`` is owned by one
  thread per ``(n, channel block)`` (ROI Align) or ``(n, channel)`` (ROI pool), which visits the
  ROIs of that image in a fixed order (their index order) and adds their contributions. No
  atomics, no races, the same sums in the same order at every run and thread count.
* ROI pool's forward stores the flat arg-max ``h * W + w`` of each output (-1: empty bin) in an
  ``int64`` workspace; its backward adds each output gradient there.

Geometry is computed in float64 whatever the data type (torchvision computes it in the data type;
the bins differ only for boxes within float32 rounding of a bin edge).
"""

import math

import numpy as np
from minicnn import InputError, Kernel
from minicnn.jit import cpu_kernel
from numba import prange

CHANNEL_BLOCK = 16   # channels per thread item in ROI Align's backward (geometry shared)


@cpu_kernel
def roi_pool_forward(x, rois, batch, scale, y, argmax):
    H, W = x.shape[2], x.shape[3]
    C, PH, PW = y.shape[1], y.shape[2], y.shape[3]
    for k in prange(rois.shape[0]):
        n = batch[k]
        v = rois[k, 1] * scale
        sw = int(math.floor(abs(v) + 0.5) * (1.0 if v >= 0 else -1.0))   # round half away
        v = rois[k, 2] * scale
        sh = int(math.floor(abs(v) + 0.5) * (1.0 if v >= 0 else -1.0))
        v = rois[k, 3] * scale
        ew = int(math.floor(abs(v) + 0.5) * (1.0 if v >= 0 else -1.0))
        v = rois[k, 4] * scale
        eh = int(math.floor(abs(v) + 0.5) * (1.0 if v >= 0 else -1.0))
        bin_h = max(eh - sh + 1, 1) / PH
        bin_w = max(ew - sw + 1, 1) / PW
        for ph in range(PH):
            h0 = min(max(int(math.floor(ph * bin_h)) + sh, 0), H)
            h1 = min(max(int(math.ceil((ph + 1) * bin_h)) + sh, 0), H)
            for pw in range(PW):
                w0 = min(max(int(math.floor(pw * bin_w)) + sw, 0), W)
                w1 = min(max(int(math.ceil((pw + 1) * bin_w)) + sw, 0), W)
                empty = h1 <= h0 or w1 <= w0
                for c in range(C):
                    best = 0.0 if empty else -np.inf
                    arg = -1
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            val = x[n, c, h, w]
                            if val > best:
                                best = val
                                arg = h * W + w
                    y[k, c, ph, pw] = best
                    argmax[k, c, ph, pw] = arg


@cpu_kernel
def roi_pool_backward(gy, argmax, order, starts, gx):
    N, C, W = gx.shape[0], gx.shape[1], gx.shape[3]
    PH, PW = gy.shape[2], gy.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        gx[n, c] = 0.0
        for t in range(starts[n], starts[n + 1]):
            k = order[t]
            for ph in range(PH):
                for pw in range(PW):
                    a = argmax[k, c, ph, pw]
                    if a >= 0:
                        gx[n, c, a // W, a % W] += gy[k, c, ph, pw]


@cpu_kernel(parallel=False)
def _bilinear(yy, xx, H, W, out_idx, out_w):
    """torchvision's bilinear rule at (yy, xx): four (flat index, weight) pairs; False when the
    point is outside [-1, H] x [-1, W] (it contributes 0)."""
    if yy < -1.0 or yy > H or xx < -1.0 or xx > W:
        return False
    if yy <= 0.0:
        yy = 0.0
    if xx <= 0.0:
        xx = 0.0
    y_low = int(yy)
    x_low = int(xx)
    if y_low >= H - 1:
        y_low = H - 1
        y_high = H - 1
        yy = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= W - 1:
        x_low = W - 1
        x_high = W - 1
        xx = float(x_low)
    else:
        x_high = x_low + 1
    ly = yy - y_low
    lx = xx - x_low
    hy = 1.0 - ly
    hx = 1.0 - lx
    out_idx[0] = y_low * W + x_low
    out_idx[1] = y_low * W + x_high
    out_idx[2] = y_high * W + x_low
    out_idx[3] = y_high * W + x_high
    out_w[0] = hy * hx
    out_w[1] = hy * lx
    out_w[2] = ly * hx
    out_w[3] = ly * lx
    return True


@cpu_kernel(parallel=False)
def _align_geometry(rois, k, scale, sampling_ratio, aligned, PH, PW):
    """(y0, x0, bin_h, bin_w, grid_h, grid_w, count) of ROI k."""
    offset = 0.5 if aligned else 0.0
    x0 = rois[k, 1] * scale - offset
    y0 = rois[k, 2] * scale - offset
    roi_w = rois[k, 3] * scale - offset - x0
    roi_h = rois[k, 4] * scale - offset - y0
    if not aligned:
        roi_w = max(roi_w, 1.0)
        roi_h = max(roi_h, 1.0)
    bin_h = roi_h / PH
    bin_w = roi_w / PW
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / PH))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / PW))
    count = max(grid_h * grid_w, 1)
    return y0, x0, bin_h, bin_w, grid_h, grid_w, count


@cpu_kernel
def roi_align_forward(x, rois, batch, scale, sampling_ratio, aligned, y):
    H, W = x.shape[2], x.shape[3]
    C, PH, PW = y.shape[1], y.shape[2], y.shape[3]
    xf = x.reshape(x.shape[0], C, H * W)
    for k in prange(rois.shape[0]):
        n = batch[k]
        idx = np.empty(4, np.int64)
        wt = np.empty(4, np.float64)
        y0, x0, bin_h, bin_w, grid_h, grid_w, count = _align_geometry(
            rois, k, scale, sampling_ratio, aligned, PH, PW)
        for ph in range(PH):
            for pw in range(PW):
                for c in range(C):
                    y[k, c, ph, pw] = 0.0
                for iy in range(grid_h):
                    yy = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        xx = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        if not _bilinear(yy, xx, H, W, idx, wt):
                            continue
                        for c in range(C):
                            y[k, c, ph, pw] += (wt[0] * xf[n, c, idx[0]] + wt[1] * xf[n, c, idx[1]]
                                                + wt[2] * xf[n, c, idx[2]]
                                                + wt[3] * xf[n, c, idx[3]])
                for c in range(C):
                    y[k, c, ph, pw] /= count


@cpu_kernel
def roi_align_backward(gy, rois, order, starts, scale, sampling_ratio, aligned, gx, block):
    N, C, H, W = gx.shape[0], gx.shape[1], gx.shape[2], gx.shape[3]
    PH, PW = gy.shape[2], gy.shape[3]
    gxf = gx.reshape(N, C, H * W)
    blocks = (C + block - 1) // block
    for item in prange(N * blocks):
        n = item // blocks
        c0 = (item - n * blocks) * block
        c1 = min(c0 + block, C)
        idx = np.empty(4, np.int64)
        wt = np.empty(4, np.float64)
        for c in range(c0, c1):
            gxf[n, c] = 0.0
        for t in range(starts[n], starts[n + 1]):
            k = order[t]
            y0, x0, bin_h, bin_w, grid_h, grid_w, count = _align_geometry(
                rois, k, scale, sampling_ratio, aligned, PH, PW)
            for ph in range(PH):
                for pw in range(PW):
                    for iy in range(grid_h):
                        yy = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            xx = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            if not _bilinear(yy, xx, H, W, idx, wt):
                                continue
                            for c in range(c0, c1):
                                g = gy[k, c, ph, pw] / count
                                for q in range(4):
                                    gxf[n, c, idx[q]] += wt[q] * g


def roi_batch(layer, features, rois):
    """The ROIs' batch indices as int64, checked: whole numbers in [0, N), finite coordinates
    (the executor adds the node and layer type to the message)."""
    if not np.isfinite(rois).all():
        bad = int(np.flatnonzero(~np.isfinite(rois).all(axis=1))[0])
        raise InputError(f"rois[{bad}] = {rois[bad].tolist()} is not finite")
    batch = rois[:, 0].astype(np.int64)
    n = features.shape[0]
    wrong = (batch != rois[:, 0]) | (batch < 0) | (batch >= n)
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        raise InputError(f"rois[{bad}] has batch index {float(rois[bad, 0])}; expected a whole "
                         f"number in [0, {n}) (the features' batch size)")
    return batch


def _by_image(batch, n):
    """ROI indices grouped by image (stable: index order within an image) and group starts."""
    order = np.argsort(batch, kind="stable").astype(np.int64)
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(batch, minlength=n), out=starts[1:])
    return order, starts


class RoIPoolCPU(Kernel):
    layer, device = "RoIPool", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return {"argmax": (out_shapes[0], np.int64)}

    def forward(self, layer, xs, ys, ws):
        x, rois = xs
        batch = roi_batch(layer, x, rois)
        roi_pool_forward(x, rois, batch, layer.spatial_scale, ys[0], ws["argmax"])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, rois = xs
        order, starts = _by_image(roi_batch(layer, x, rois), x.shape[0])
        roi_pool_backward(np.ascontiguousarray(gys[0]), ws["argmax"], order, starts, gxs[0])


class RoIAlignCPU(Kernel):
    layer, device = "RoIAlign", "cpu"

    def forward(self, layer, xs, ys, ws):
        x, rois = xs
        batch = roi_batch(layer, x, rois)
        roi_align_forward(x, rois, batch, layer.spatial_scale, layer.sampling_ratio,
                          layer.aligned, ys[0])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, rois = xs
        order, starts = _by_image(roi_batch(layer, x, rois), x.shape[0])
        roi_align_backward(np.ascontiguousarray(gys[0]), rois, order, starts,
                           layer.spatial_scale, layer.sampling_ratio, layer.aligned, gxs[0],
                           CHANNEL_BLOCK)
