"""Polygons in unit coordinates (centred on the origin, y pointing down, radius about 1) for drawing
generated datasets: the built-in ``Shapes`` and the detection and segmentation plugins' scenes.
Scale, rotate and translate the (k, 2) point arrays, then draw them with Pillow's
``ImageDraw.polygon``."""

import math

import numpy as np


def ngon(n, radius=1.0, start=-90.0):
    """A regular n-gon (a circle for large n), its first vertex at ``start`` degrees (-90: up)."""
    angles = np.deg2rad(start + 360.0 * np.arange(n) / n)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def rect(half_w, half_h, degrees=0.0):
    """A rectangle of half-sides ``half_w`` x ``half_h``, turned by ``degrees``."""
    pts = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    if degrees == 0:
        return pts
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return pts @ rot.T


def star(points=5, inner=0.42):
    """A star with ``points`` tips at radius 1 and notches at radius ``inner``."""
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return ngon(2 * points) * radii[:, None]
