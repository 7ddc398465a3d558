"""Slow, obviously correct references of the ROI layers: plain Python loops in float64,
transcribed from torchvision's CPU kernels (roi_pool_kernel.cpp, roi_align_kernel.cpp). No code
shared with the kernels (:mod:`.roi_cpu`, :mod:`.roi_cuda`).

They ship with the package because :class:`~minicnn_detection.RoIPool` and
:class:`~minicnn_detection.RoIAlign` use them as ``reference_forward`` (what ``minicnn check-plugin
detection`` compares the kernels with); the plugin's tests use them too, backward included
(``from minicnn_detection import references``)."""

import math

import numpy as np


def round_half_away(v):
    """C's std::round."""
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def roi_pool(x, rois, output_size, scale):
    """(y, argmax) of torchvision's roi_pool forward; argmax (h, w) or None per output."""
    x = np.asarray(x, np.float64)
    _, C, H, W = x.shape
    PH, PW = output_size
    y = np.zeros((len(rois), C, PH, PW))
    arg = np.full((len(rois), C, PH, PW, 2), -1, np.int64)
    for k, roi in enumerate(np.asarray(rois, np.float64)):
        n = int(roi[0])
        sw, sh = round_half_away(roi[1] * scale), round_half_away(roi[2] * scale)
        ew, eh = round_half_away(roi[3] * scale), round_half_away(roi[4] * scale)
        rw, rh = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bh, bw = rh / PH, rw / PW
        for ph in range(PH):
            for pw in range(PW):
                hs = min(max(math.floor(ph * bh) + sh, 0), H)
                he = min(max(math.ceil((ph + 1) * bh) + sh, 0), H)
                ws = min(max(math.floor(pw * bw) + sw, 0), W)
                we = min(max(math.ceil((pw + 1) * bw) + sw, 0), W)
                for c in range(C):
                    if he <= hs or we <= ws:
                        y[k, c, ph, pw] = 0.0
                        continue
                    best, where = -math.inf, (-1, -1)
                    for h in range(hs, he):
                        for w in range(ws, we):
                            if x[n, c, h, w] > best:
                                best, where = x[n, c, h, w], (h, w)
                    y[k, c, ph, pw] = best
                    arg[k, c, ph, pw] = where
    return y, arg


def roi_pool_backward(x_shape, rois, gy, arg):
    gx = np.zeros(x_shape)
    for k in range(gy.shape[0]):
        n = int(rois[k][0])
        for c in range(gy.shape[1]):
            for ph in range(gy.shape[2]):
                for pw in range(gy.shape[3]):
                    h, w = arg[k, c, ph, pw]
                    if h >= 0:
                        gx[n, c, h, w] += gy[k, c, ph, pw]
    return gx


def bilinear_taps(H, W, y, x):
    """torchvision's bilinear_interpolate as a list of ((h, w), weight)."""
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return []
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= H - 1:
        y_high = y_low = H - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= W - 1:
        x_high = x_low = W - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return [((y_low, x_low), hy * hx), ((y_low, x_high), hy * lx),
            ((y_high, x_low), ly * hx), ((y_high, x_high), ly * lx)]


def roi_align_taps(H, W, roi, output_size, scale, sampling_ratio, aligned):
    """For each bin (ph, pw): the list of ((h, w), weight) it averages (weights include 1/count)."""
    PH, PW = output_size
    off = 0.5 if aligned else 0.0
    sw, sh = roi[1] * scale - off, roi[2] * scale - off
    ew, eh = roi[3] * scale - off, roi[4] * scale - off
    rw, rh = ew - sw, eh - sh
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bh, bw = rh / PH, rw / PW
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / PH)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / PW)
    count = max(gh * gw, 1)
    taps = {}
    for ph in range(PH):
        for pw in range(PW):
            lst = []
            for iy in range(gh):
                yy = sh + ph * bh + (iy + 0.5) * bh / gh
                for ix in range(gw):
                    xx = sw + pw * bw + (ix + 0.5) * bw / gw
                    lst += [(hw, wt / count) for hw, wt in bilinear_taps(H, W, yy, xx)]
            taps[ph, pw] = lst
    return taps


def roi_align(x, rois, output_size, scale, sampling_ratio=-1, aligned=True):
    x = np.asarray(x, np.float64)
    _, C, H, W = x.shape
    y = np.zeros((len(rois), C) + tuple(output_size))
    for k, roi in enumerate(np.asarray(rois, np.float64)):
        n = int(roi[0])
        for (ph, pw), lst in roi_align_taps(H, W, roi, output_size, scale, sampling_ratio,
                                            aligned).items():
            for c in range(C):
                y[k, c, ph, pw] = sum(wt * x[n, c, h, w] for (h, w), wt in lst)
    return y


def roi_align_backward(x_shape, rois, gy, output_size, scale, sampling_ratio=-1, aligned=True):
    gx = np.zeros(x_shape)
    H, W = x_shape[2:]
    for k, roi in enumerate(np.asarray(rois, np.float64)):
        n = int(roi[0])
        for (ph, pw), lst in roi_align_taps(H, W, roi, output_size, scale, sampling_ratio,
                                            aligned).items():
            for (h, w), wt in lst:
                gx[n, :, h, w] += wt * gy[k, :, ph, pw]
    return gx
