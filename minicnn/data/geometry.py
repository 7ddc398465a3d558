"""Geometric resampling for the transforms: whole-pixel shifts and crops (numpy slicing) and affine
warps (a small serial numba kernel: a 28x28 bilinear rotation costs microseconds, not the ~0.3 ms of
the equivalent numpy expression, and it releases the GIL for the loader's worker threads).

Coordinates: pixel centres at integers, the warp's centre at ((W - 1) / 2, (H - 1) / 2), y down.
"""

import math

import numpy as np

from ..jit import cpu_kernel


def shift(image, dx, dy, fill=0.0):
    """``image`` (CHW) moved ``dx`` pixels right and ``dy`` down; uncovered pixels are ``fill``."""
    _, h, w = image.shape
    out = np.full(image.shape, fill, dtype=np.float32)
    if abs(dx) < w and abs(dy) < h:
        out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            image[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def crop(image, top, left, height, width, fill=0.0):
    """The window ``[top, top + height) x [left, left + width)`` of a CHW image; the parts outside
    the image (negative or too large offsets, as after a constant padding) are ``fill``."""
    c, h, w = image.shape
    out = np.full((c, height, width), fill, dtype=np.float32)
    y0, y1 = max(top, 0), min(top + height, h)
    x0, x1 = max(left, 0), min(left + width, w)
    if y0 < y1 and x0 < x1:
        out[:, y0 - top:y1 - top, x0 - left:x1 - left] = image[:, y0:y1, x0:x1]
    return out


@cpu_kernel(parallel=False)
def _warp_kernel(image, m00, m01, m10, m11, ox, oy, fill, nearest, out):
    # out[c, y, x] samples image at (sx, sy) = M @ (x - cx, y - cy) + (ox, oy) + (cx, cy); a source
    # neighbour outside the image counts as `fill` (bilinear) / the pixel is `fill` (nearest).
    channels, h, w = image.shape
    cy = (h - 1) * 0.5
    cx = (w - 1) * 0.5
    for y in range(h):
        for x in range(w):
            px = x - cx
            py = y - cy
            sx = m00 * px + m01 * py + ox + cx
            sy = m10 * px + m11 * py + oy + cy
            rx = math.floor(sx + 0.5)
            ry = math.floor(sy + 0.5)
            if abs(sx - rx) < 1e-6:        # cos(90 deg) is 6e-17, not 0: snap to the pixel grid
                sx = rx
            if abs(sy - ry) < 1e-6:
                sy = ry
            if nearest:
                xi = int(math.floor(sx + 0.5))
                yi = int(math.floor(sy + 0.5))
                inside = 0 <= xi < w and 0 <= yi < h
                for c in range(channels):
                    out[c, y, x] = image[c, yi, xi] if inside else fill
                continue
            x0 = int(math.floor(sx))
            y0 = int(math.floor(sy))
            fx = sx - x0
            fy = sy - y0
            if 0 <= x0 and x0 + 1 < w and 0 <= y0 and y0 + 1 < h:     # all four inside
                for c in range(channels):
                    top = (1.0 - fx) * image[c, y0, x0] + fx * image[c, y0, x0 + 1]
                    bottom = (1.0 - fx) * image[c, y0 + 1, x0] + fx * image[c, y0 + 1, x0 + 1]
                    out[c, y, x] = (1.0 - fy) * top + fy * bottom
                continue
            for c in range(channels):
                acc = 0.0
                for dy in range(2):
                    yi = y0 + dy
                    wy = fy if dy else 1.0 - fy
                    if wy == 0.0:
                        continue
                    for dx in range(2):
                        xi = x0 + dx
                        wx = fx if dx else 1.0 - fx
                        if wx == 0.0:
                            continue
                        if 0 <= xi < w and 0 <= yi < h:
                            acc += wx * wy * image[c, yi, xi]
                        else:
                            acc += wx * wy * fill
                out[c, y, x] = acc


def warp_affine(image, matrix, offset=(0.0, 0.0), fill=0.0, interpolation="bilinear"):
    """Resample a CHW float32 image: output pixel p (x, y about the centre) reads the input at
    ``matrix @ p + offset`` (about the centre); bilinear or nearest, ``fill`` outside."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    out = np.empty_like(image)
    (m00, m01), (m10, m11) = matrix
    _warp_kernel(image, float(m00), float(m01), float(m10), float(m11), float(offset[0]),
                 float(offset[1]), float(fill), interpolation == "nearest", out)
    return out


def rotation_matrix(degrees, scale=1.0):
    """The output-to-input map of a counter-clockwise rotation by ``degrees`` (y down) and a zoom
    by ``scale``."""
    t = math.radians(degrees)
    c, s = math.cos(t) / scale, math.sin(t) / scale
    return ((c, -s), (s, c))
