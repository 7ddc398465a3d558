"""Anchors: py-faster-rcnn's base anchors and their copies over a feature map.

:func:`generate_anchors` returns py-faster-rcnn's numbers exactly, in its +1 pixel convention
(a box ``[x1, y1, x2, y2]`` is ``x2 - x1 + 1`` pixels wide): with the defaults, 9 anchors of
areas about 128^2, 256^2 and 512^2 at aspect ratios (height / width) 0.5, 1 and 2, centred on the
first 16x16 cell::

    [[ -84.  -40.   99.   55.]     ratio 0.5, scale 8
     [-176.  -88.  191.  103.]     ratio 0.5, scale 16
     [-360. -184.  375.  199.]     ratio 0.5, scale 32
     [ -56.  -56.   71.   71.]     ratio 1
     [-120. -120.  135.  135.]
     [-248. -248.  263.  263.]
     [ -36.  -80.   51.   95.]     ratio 2
     [ -80. -168.   95.  183.]
     [-168. -344.  183.  359.]]

Everything downstream (IoU, encoding, NMS) treats them as continuous boxes (see
:mod:`.boxes`). Ratios round as numpy does (``np.round``: halves to even), like the original.
"""

import numpy as np


def _whctrs(anchor):
    w = anchor[2] - anchor[0] + 1
    h = anchor[3] - anchor[1] + 1
    return w, h, anchor[0] + 0.5 * (w - 1), anchor[1] + 0.5 * (h - 1)


def _mkanchors(ws, hs, x_ctr, y_ctr):
    ws, hs = ws[:, None], hs[:, None]
    return np.hstack((x_ctr - 0.5 * (ws - 1), y_ctr - 0.5 * (hs - 1),
                      x_ctr + 0.5 * (ws - 1), y_ctr + 0.5 * (hs - 1)))


def generate_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)):
    """py-faster-rcnn's ``generate_anchors``: ``(len(ratios) * len(scales), 4)`` float64 anchors
    ``(x1, y1, x2, y2)``, ratio-major (all scales of the first ratio first).

    The reference window is ``[0, 0, base_size - 1, base_size - 1]``; each ratio keeps its area
    (``w = round(sqrt(area / ratio))``, ``h = round(w ratio)``), then each scale multiplies both
    sides.
    """
    if not (isinstance(base_size, (int, float, np.integer, np.floating)) and base_size > 0):
        raise ValueError(f"generate_anchors: base_size must be a positive number, got "
                         f"{base_size!r}")
    ratios = np.asarray(ratios, dtype=np.float64).reshape(-1)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    if not ratios.size or not scales.size or (ratios <= 0).any() or (scales <= 0).any():
        raise ValueError(f"generate_anchors: ratios and scales must be non-empty and positive, "
                         f"got ratios={ratios.tolist()}, scales={scales.tolist()}")
    base = np.array([1, 1, base_size, base_size], dtype=np.float64) - 1
    w, h, x_ctr, y_ctr = _whctrs(base)
    ws = np.round(np.sqrt(w * h / ratios))
    hs = np.round(ws * ratios)
    ratio_anchors = _mkanchors(ws, hs, x_ctr, y_ctr)
    out = []
    for anchor in ratio_anchors:
        w, h, x_ctr, y_ctr = _whctrs(anchor)
        out.append(_mkanchors(w * scales, h * scales, x_ctr, y_ctr))
    return np.vstack(out)


def grid_anchors(base_anchors, feature_size, stride):
    """All anchors of a ``feature_size = (H, W)`` map: ``(H * W * A, 4)``, position-major
    (index ``(h * W + w) * A + a``, py-faster-rcnn's order), base anchors shifted by
    ``(w * stride, h * stride)``."""
    base = np.asarray(base_anchors, dtype=np.float64)
    height, width = feature_size
    sx, sy = np.meshgrid(np.arange(width) * stride, np.arange(height) * stride)
    shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], axis=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def inside_anchors(anchors, image_size, allowed_border=0):
    """Indices of anchors lying inside the image (py-faster-rcnn: ``x1 >= -border``,
    ``y1 >= -border``, ``x2 < W + border``, ``y2 < H + border``); the others are ignored by
    the RPN's training targets."""
    height, width = image_size
    a = np.asarray(anchors)
    return np.flatnonzero((a[:, 0] >= -allowed_border) & (a[:, 1] >= -allowed_border)
                          & (a[:, 2] < width + allowed_border)
                          & (a[:, 3] < height + allowed_border))
