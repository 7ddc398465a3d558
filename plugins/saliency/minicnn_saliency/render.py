"""Heat maps as pictures: bilinear upsampling, normalisation, colour maps (jet, inferno and
minicnn.viz's maps) and overlays blended with Pillow.

All numpy; Pillow only builds and blends the images.
"""

from numbers import Real

import numpy as np
from minicnn import viz
from PIL import Image

# matplotlib's inferno (CC0), rows 0, 16, 32, ..., 240 and 255 of its 256-entry table, at their
# positions i / 255; interpolated linearly in RGB in between.
_INFERNO_AT = np.array([0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
                        255]) / 255.0
_INFERNO = np.array([
    [0.001462, 0.000466, 0.013866], [0.042253, 0.028139, 0.141141],
    [0.129285, 0.047293, 0.290788], [0.238273, 0.036621, 0.396353],
    [0.341500, 0.062325, 0.429425], [0.441207, 0.099338, 0.431594],
    [0.540920, 0.134729, 0.415123], [0.640135, 0.171438, 0.381065],
    [0.735683, 0.215906, 0.330245], [0.822386, 0.275197, 0.266085],
    [0.894305, 0.353399, 0.193584], [0.946965, 0.449191, 0.115272],
    [0.978422, 0.557937, 0.034931], [0.987874, 0.675267, 0.065257],
    [0.974638, 0.797692, 0.206332], [0.947594, 0.917399, 0.410665],
    [0.988362, 0.998364, 0.644924]])

COLORMAPS = ("jet", "inferno") + tuple(viz.COLORMAPS)


def _jet(t):
    """MATLAB's jet: dark blue, blue, cyan, yellow, red, dark red (piecewise linear)."""
    four = 4.0 * t[..., None]
    centres = np.array([3.0, 2.0, 1.0])          # red, green, blue ramps peak at 3/4, 1/2, 1/4
    return np.clip(1.5 - np.abs(four - centres), 0.0, 1.0)


def _inferno(t):
    return np.stack([np.interp(t, _INFERNO_AT, _INFERNO[:, c]) for c in range(3)], axis=-1)


def apply_colormap(heat, name="jet"):
    """A 2-D array with values in [0, 1] (clipped) as an RGB uint8 array (H, W, 3).

    ``name``: ``"jet"``, ``"inferno"`` or any of :data:`minicnn.viz.COLORMAPS` (``"viridis"``,
    ``"heat"``, ``"gray"``...): :data:`COLORMAPS`.
    """
    t = np.asarray(heat, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"apply_colormap expects a 2-D array, got shape {t.shape}")
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
    t = np.clip(np.nan_to_num(t), 0.0, 1.0)
    if name == "jet":
        rgb = _jet(t)
    elif name == "inferno":
        rgb = _inferno(t)
    else:
        return viz.colormap(t, name, vmin=0.0, vmax=1.0)
    return np.rint(rgb * 255).astype(np.uint8)


def _axis_weights(n_in, n_out):
    """Indices and weights of bilinear interpolation along one axis with pixel centres aligned
    (``align_corners=False``, PyTorch's and OpenCV's convention), clamped at the edges."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, pos - lo


def upsample(maps, size):
    """Bilinear resize of ``maps`` (..., h, w) (h, w > 0) to ``size`` = (H, W), pixel centres
    aligned (a map cell covers the same part of the image at both sizes). Float64 out."""
    a = np.asarray(maps, dtype=np.float64)
    height, width = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if a.ndim < 2 or height < 1 or width < 1:
        raise ValueError(f"upsample expects (..., h, w) maps and a positive size, got shape "
                         f"{a.shape} and size {size!r}")
    if a.shape[-2] == 0 or a.shape[-1] == 0:
        raise ValueError(f"upsample: the maps are empty (nothing to interpolate), got shape "
                         f"{a.shape}")
    r0, r1, fr = _axis_weights(a.shape[-2], height)
    c0, c1, fc = _axis_weights(a.shape[-1], width)
    rows = a[..., r0, :] * (1 - fr)[:, None] + a[..., r1, :] * fr[:, None]
    return rows[..., c0] * (1 - fc) + rows[..., c1] * fc


def normalize(heat, mode="max", clip_percentile=None):
    """A map scaled to [0, 1] for display.

    ``mode="max"`` divides by the maximum (zero stays zero: Grad-CAM and gradient maps, which are
    non-negative); ``"minmax"`` maps the minimum to 0 and the maximum to 1 (CAM, which has signs).
    ``clip_percentile`` (e.g. 99) first clips the top values to that percentile, so a few extreme
    pixels do not wash the rest out (a number in [0, 100]). A constant map becomes all zeros.
    """
    if mode not in ("max", "minmax"):
        raise ValueError(f"normalize: mode must be 'max' or 'minmax', got {mode!r}")
    if clip_percentile is not None and (
            isinstance(clip_percentile, bool) or not isinstance(clip_percentile, Real)
            or not 0 <= clip_percentile <= 100):
        raise ValueError(f"normalize: clip_percentile must be a number in [0, 100] (or None), "
                         f"got {clip_percentile!r:.40}")
    a = np.nan_to_num(np.asarray(heat, dtype=np.float64))
    if a.size == 0:
        return a
    hi = float(np.percentile(a, clip_percentile)) if clip_percentile is not None else a.max()
    lo = float(a.min()) if mode == "minmax" else 0.0
    if not hi > lo:
        return np.zeros(a.shape)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def overlay(image, heat, alpha=0.5, cmap="jet", normalized=True):
    """The heat map coloured and blended over the image: a Pillow RGB image of the image's size.

    :param image: the picture (anything :func:`minicnn.viz.to_rgb` takes: CHW or HW floats in
        [0, 1], an HWC uint8 array, a Pillow image).
    :param heat: a 2-D map of any size (resized bilinearly to the image); values in [0, 1] when
        ``normalized``, else scaled with :func:`normalize` (``"max"``) first. NaN counts as no
        heat (0) and +-inf as 1 and 0, before the resize, so one NaN cell stays one cell.
    :param alpha: the weight of the colour map, 0 (image only) to 1 (heat only).
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha!r}")
    rgb = viz.to_rgb(image)
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"overlay: heat must be a 2-D map, got shape {heat.shape}")
    if not normalized:
        heat = normalize(heat)
    # NaN would spread through the bilinear upsample to the neighbouring cells
    heat = np.nan_to_num(heat, nan=0.0, posinf=1.0, neginf=0.0)
    if heat.shape != rgb.shape[:2]:
        heat = upsample(heat, rgb.shape[:2])
    colour = Image.fromarray(apply_colormap(heat, cmap))
    return Image.blend(Image.fromarray(rgb), colour, float(alpha))
