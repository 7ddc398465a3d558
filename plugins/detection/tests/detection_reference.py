"""Slow, obviously correct references for the box ops: plain Python loops in float64,
transcribed from torchvision's CPU kernels (nms_kernel.cpp), py-faster-rcnn's generate_anchors.py
and torchvision's BoxCoder. No code shared with the plugin. The ROI layers' references ship with
the package (:mod:`minicnn_detection.references`: the layers' ``reference_forward`` uses them)."""

import math

import numpy as np


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
