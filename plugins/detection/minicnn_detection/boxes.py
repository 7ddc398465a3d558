"""Boxes: IoU, NMS, encoding and decoding, clipping. Boxes are ``(x1, y1, x2, y2)`` rows.

Two conventions meet in detection and this module uses one of them everywhere:

* **continuous coordinates** (torchvision's): a box covers ``[x1, x2) x [y1, y2)``, its area is
  ``(x2 - x1) * (y2 - y1)`` and its width ``x2 - x1``. :func:`box_iou`, :func:`nms`,
  :func:`batched_nms`, :func:`encode_boxes` / :func:`decode_boxes` and everything built on them
  (anchor targets, proposals, evaluation) use it;
* **the +1 pixel convention** (py-faster-rcnn's, VOC's devkit): width ``x2 - x1 + 1``. Only
  :func:`minicnn_detection.generate_anchors` uses it, to return py-faster-rcnn's numbers exactly;
  the anchors are then used as continuous boxes (a 184-pixel anchor counts as 183 wide).

Degenerate inputs have a documented result, never a crash: no boxes give empty results; a
zero-area box has IoU 0 with any box of positive area and IoU ``nan`` (0 / 0, as torchvision)
with another zero-area box; :func:`nms` never lets such a ``nan`` suppress a box (``nan > t`` is
false, again as torchvision). Coordinates must be finite (``InputError`` otherwise).
"""

import math

import numpy as np
from minicnn import InputError
from minicnn.jit import cpu_kernel

# torchvision's BoxCoder clamp of dw, dh before exp(): boxes at most 1000/16 times the reference
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def as_boxes(boxes, what="boxes", dtype=None):
    """``boxes`` as a float ``(K, 4)`` array (a copy only when needed); ``InputError`` for any other
    shape or for non-finite coordinates."""
    b = np.asarray(boxes, dtype=dtype)
    if b.dtype.kind not in "fiu":
        raise InputError(f"{what}: expected numbers, got dtype {b.dtype}")
    if b.dtype.kind != "f":
        b = b.astype(np.float64)
    if b.size == 0 and b.ndim <= 2:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"{what}: expected shape (K, 4) of (x1, y1, x2, y2) rows, got shape "
                         f"{b.shape}")
    if not np.isfinite(b).all():
        raise InputError(f"{what}: coordinates must be finite")
    return b


def box_area(boxes):
    """``(x2 - x1) * (y2 - y1)`` of each box (continuous coordinates)."""
    b = as_boxes(boxes)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a, b):
    """Pairwise intersection over union ``(len(a), len(b))``, torchvision's ``box_iou``.

    ``inter / (area_a + area_b - inter)`` with continuous areas; 0 / 0 (two zero-area boxes) gives
    ``nan``, as in torchvision. Boxes with ``x2 < x1`` are not repaired (negative areas): order
    the corners first.
    """
    a, b = as_boxes(a, "box_iou: a"), as_boxes(b, "box_iou: b")
    dtype = np.result_type(a.dtype, b.dtype)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (inter / (area_a[:, None] + area_b[None, :] - inter)).astype(dtype, copy=False)


@cpu_kernel(parallel=False)
def _nms_sorted(x1, y1, x2, y2, threshold, keep):
    """Greedy NMS over boxes already sorted by decreasing score (coordinates as four contiguous
    arrays); writes kept positions into ``keep`` and returns their count. A box is dropped when
    its IoU with a kept one is > threshold (strictly, as torchvision). The inner loop has no
    branch on already-suppressed boxes, so LLVM vectorises it."""
    n = x1.shape[0]
    suppressed = np.zeros(n, np.uint8)
    areas = (x2 - x1) * (y2 - y1)
    count = 0
    for i in range(n):
        if suppressed[i]:
            continue
        keep[count] = i
        count += 1
        ax1, ay1, ax2, ay2, area = x1[i], y1[i], x2[i], y2[i], areas[i]
        for j in range(i + 1, n):
            w = max(min(ax2, x2[j]) - max(ax1, x1[j]), 0.0)
            h = max(min(ay2, y2[j]) - max(ay1, y1[j]), 0.0)
            inter = w * h
            suppressed[j] |= inter / (area + areas[j] - inter) > threshold
    return count


def _check_scores(boxes, scores, where):
    s = np.asarray(scores)
    if s.ndim != 1 or s.shape[0] != boxes.shape[0]:
        raise InputError(f"{where}: scores must be one number per box, shape ({boxes.shape[0]},), "
                         f"got shape {s.shape}")
    if s.size and np.isnan(s).any():
        raise InputError(f"{where}: scores contain NaN")
    return s


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression, torchvision's ``nms``: indices (int64) of the kept boxes in
    decreasing score order.

    A box is suppressed by a kept box of higher score when their IoU is strictly greater than
    ``iou_threshold``. Equal scores keep their input order (a stable sort; torchvision leaves
    ties unspecified). No boxes: an empty array.
    """
    b = as_boxes(boxes, "nms: boxes")
    s = _check_scores(b, scores, "nms")
    if b.shape[0] == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-s.astype(np.float64), kind="stable")
    keep = np.empty(b.shape[0], np.int64)
    sorted_boxes = np.asarray(b[order], dtype=np.float64)
    count = _nms_sorted(*(np.ascontiguousarray(sorted_boxes[:, k]) for k in range(4)),
                        float(iou_threshold), keep)
    return order[keep[:count]]


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category ``idxs`` independently (torchvision's ``batched_nms``): kept
    indices over all categories, in decreasing score order."""
    b = as_boxes(boxes, "batched_nms: boxes")
    s = _check_scores(b, scores, "batched_nms")
    idxs = np.asarray(idxs)
    if idxs.shape != s.shape:
        raise InputError(f"batched_nms: idxs must have the scores' shape {s.shape}, got "
                         f"{idxs.shape}")
    kept = [np.flatnonzero(idxs == c)[nms(b[idxs == c], s[idxs == c], iou_threshold)]
            for c in np.unique(idxs)]
    if not kept:
        return np.zeros(0, np.int64)
    kept = np.concatenate(kept)
    return kept[np.argsort(-s[kept].astype(np.float64), kind="stable")]


def _centers(boxes):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(reference, targets, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets ``(K, 4)`` that move ``reference`` boxes onto ``targets``
    (R-CNN's parametrisation, torchvision's ``BoxCoder.encode_single``)::

        dx = wx (tx - rx) / rw     dy = wy (ty - ry) / rh
        dw = ww log(tw / rw)       dh = wh log(th / rh)

    with centres ``(x, y)`` and continuous widths. ``weights`` (10, 10, 5, 5) are the Fast R-CNN
    head's (py-faster-rcnn's target stds 0.1, 0.1, 0.2, 0.2); (1, 1, 1, 1) the RPN's. Both boxes
    must have positive width and height (``InputError`` otherwise).
    """
    r = as_boxes(reference, "encode_boxes: reference")
    t = as_boxes(targets, "encode_boxes: targets")
    if r.shape != t.shape:
        raise InputError(f"encode_boxes: reference and targets must pair up, got {r.shape} and "
                         f"{t.shape}")
    rx, ry, rw, rh = _centers(r)
    tx, ty, tw, th = _centers(t)
    if (rw <= 0).any() or (rh <= 0).any() or (tw <= 0).any() or (th <= 0).any():
        raise InputError("encode_boxes: boxes must have positive width and height (x2 > x1, "
                         "y2 > y1)")
    wx, wy, ww, wh = weights
    return np.stack([wx * (tx - rx) / rw, wy * (ty - ry) / rh, ww * np.log(tw / rw),
                     wh * np.log(th / rh)], axis=1)


def decode_boxes(reference, deltas, weights=(1.0, 1.0, 1.0, 1.0), clip=BBOX_XFORM_CLIP):
    """Apply regression ``deltas`` ``(K, 4)`` (or ``(K, 4 m)``: m boxes per reference) to
    ``reference`` boxes; the inverse of :func:`encode_boxes`. ``dw`` and ``dh`` are clamped at
    ``clip`` before the exponential (torchvision: log(1000 / 16))."""
    r = as_boxes(reference, "decode_boxes: reference")
    d = np.asarray(deltas)
    if d.ndim != 2 or d.shape[0] != r.shape[0] or d.shape[1] % 4:
        raise InputError(f"decode_boxes: deltas must be ({r.shape[0]}, 4 m), got shape {d.shape}")
    d = d.astype(np.result_type(r.dtype, d.dtype), copy=False)
    rx, ry, rw, rh = (v[:, None] for v in _centers(r))
    wx, wy, ww, wh = weights
    dx, dy = d[:, 0::4] / wx, d[:, 1::4] / wy
    dw = np.minimum(d[:, 2::4] / ww, clip)
    dh = np.minimum(d[:, 3::4] / wh, clip)
    cx, cy = dx * rw + rx, dy * rh + ry
    w, h = np.exp(dw) * rw, np.exp(dh) * rh
    out = np.empty_like(d)
    out[:, 0::4] = cx - 0.5 * w
    out[:, 1::4] = cy - 0.5 * h
    out[:, 2::4] = cx + 0.5 * w
    out[:, 3::4] = cy + 0.5 * h
    return out


def clip_boxes(boxes, size):
    """Boxes clipped to an image of ``size = (height, width)``: x in [0, width], y in
    [0, height] (continuous coordinates; torchvision's ``clip_boxes_to_image``). Works on
    ``(K, 4 m)`` arrays too."""
    b = np.array(boxes, dtype=np.result_type(np.asarray(boxes).dtype, np.float32), copy=True)
    height, width = size
    b[:, 0::2] = np.clip(b[:, 0::2], 0, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, height)
    return b


def remove_small_boxes(boxes, min_size):
    """Indices of the boxes whose width and height are both at least ``min_size``."""
    b = as_boxes(boxes, "remove_small_boxes")
    return np.flatnonzero(((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size))
