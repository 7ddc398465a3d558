"""Slow, obviously correct references for the detection ops: plain Python loops in float64,
transcribed from torchvision's CPU kernels (roi_pool_kernel.cpp, roi_align_kernel.cpp,
nms_kernel.cpp), py-faster-rcnn's generate_anchors.py and torchvision's BoxCoder. No code shared
with the plugin."""

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


def iou(a, b):
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = area_a + area_b - inter
    return inter / union if union != 0 else math.nan


def box_iou(a, b):
    return np.array([[iou(p, q) for q in b] for p in a]).reshape(len(a), len(b))


def nms(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])   # sorted() is stable
    keep, removed = [], set()
    for pos, i in enumerate(order):
        if i in removed:
            continue
        keep.append(i)
        for j in order[pos + 1:]:
            if j not in removed and iou(boxes[i], boxes[j]) > threshold:  # nan > t is False
                removed.add(j)
    return keep


def encode(ref, gt, weights):
    out = []
    for r, g in zip(ref, gt, strict=True):
        rw, rh = r[2] - r[0], r[3] - r[1]
        gw, gh = g[2] - g[0], g[3] - g[1]
        rx, ry = r[0] + rw / 2, r[1] + rh / 2
        gx, gy = g[0] + gw / 2, g[1] + gh / 2
        out.append([weights[0] * (gx - rx) / rw, weights[1] * (gy - ry) / rh,
                    weights[2] * math.log(gw / rw), weights[3] * math.log(gh / rh)])
    return np.array(out).reshape(-1, 4)


CLIP = math.log(1000 / 16)


def decode(ref, deltas, weights, clip=CLIP):
    out = []
    for r, d in zip(ref, deltas, strict=True):
        rw, rh = r[2] - r[0], r[3] - r[1]
        rx, ry = r[0] + rw / 2, r[1] + rh / 2
        cx = d[0] / weights[0] * rw + rx
        cy = d[1] / weights[1] * rh + ry
        w = math.exp(min(d[2] / weights[2], clip)) * rw
        h = math.exp(min(d[3] / weights[3], clip)) * rh
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(out).reshape(-1, 4)


def py_faster_rcnn_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)):
    """py-faster-rcnn's generate_anchors, row by row (numpy's round: halves to even)."""
    def whctrs(a):
        w, h = a[2] - a[0] + 1, a[3] - a[1] + 1
        return w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)

    def mk(w, h, cx, cy):
        return [cx - 0.5 * (w - 1), cy - 0.5 * (h - 1), cx + 0.5 * (w - 1), cy + 0.5 * (h - 1)]

    base = [0.0, 0.0, base_size - 1.0, base_size - 1.0]
    w, h, cx, cy = whctrs(base)
    rows = []
    for ratio in ratios:
        ws = float(np.round(math.sqrt(w * h / ratio)))
        hs = float(np.round(ws * ratio))
        ra = mk(ws, hs, cx, cy)
        w2, h2, cx2, cy2 = whctrs(ra)
        for s in scales:
            rows.append(mk(w2 * s, h2 * s, cx2, cy2))
    return np.array(rows)
