"""Images in and out: any file Pillow reads, as (3, H, W) float32 RGB in [0, 1]; pictures out.

Reading goes through :func:`minicnn.data.load_image` in ``"RGB"`` mode, which converts every Pillow
mode one documented way: 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``CMYK``...) / 255, 16-bit
(``I;16``, ``I``) / 65535, float ``F`` clipped to [0, 1]; gray repeated to three channels;
transparency (``RGBA``, ``LA``, ``P`` with a transparent colour) composited on white. On top of that
any NaN becomes 0 and infinities are clipped, so no NaN pixel ever enters the optimisation.
"""

import numpy as np
from minicnn import viz
from minicnn.data import array_to_image, load_image
from PIL import Image, ImageDraw


def shorter_side(hw, size):
    """``(H, W)`` scaled so that the shorter side is ``size`` pixels (aspect ratio kept)."""
    h, w = hw
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if h <= w:
        return size, max(1, round(w * size / h))
    return max(1, round(h * size / w)), size


def resize(image, hw):
    """Resize a (C, H, W) float array to ``hw`` = (H, W): Pillow's bilinear filter on float planes
    (antialiased when shrinking)."""
    image = np.asarray(image, dtype=np.float32)
    height, width = int(hw[0]), int(hw[1])
    if image.shape[1:] == (height, width):
        return image.copy()
    out = np.empty((image.shape[0], height, width), np.float32)
    for c in range(image.shape[0]):
        plane = Image.fromarray(np.ascontiguousarray(image[c]), mode="F")
        out[c] = np.asarray(plane.resize((width, height), Image.BILINEAR))
    return out


def load_rgb(path, size=None):
    """An image file as (3, H, W) float32 RGB in [0, 1]; ``size``: the shorter side in pixels."""
    image = load_image(path, mode="RGB")
    if size is not None:
        image = resize(image, shorter_side(image.shape[1:], size))
    return np.clip(np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def save_rgb(image, path):
    """Write a (3, H, W) float array as an 8-bit image (clipped to [0, 1], NaN as 0)."""
    array_to_image(np.clip(np.nan_to_num(np.asarray(image, np.float32)), 0.0, 1.0)).save(path)


#: panel's limits: the common height, and each tile's width as a multiple of it
PANEL_MAX_HEIGHT = 4096
PANEL_MAX_ASPECT = 8


def _count(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise ValueError(f"panel: {name} must be an int in [{low}, {high}], got {value!r:.40}")
    return int(value)


def _tile_array(image, k):
    """Image ``k`` of a panel as a (C, H, W) float32 array with C in (1, 3) and H, W > 0."""
    if isinstance(image, Image.Image):
        raise TypeError(f"panel: image {k} is a Pillow image; expected a (3, H, W) float array "
                        f"in [0, 1] (load_rgb reads one)")
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 3 or a.shape[0] not in (1, 3) or 0 in a.shape[1:]:
        raise ValueError(f"panel: image {k} must be a (3, H, W) or (1, H, W) array with H, W > 0, "
                         f"got shape {a.shape}")
    return a


def panel(images, labels=None, height=256, gap=8, caption=18):
    """Images (3, H, W) (or (1, H, W)) float arrays side by side at a common ``height`` (1 to
    :data:`PANEL_MAX_HEIGHT`), each with an optional caption below (``labels``: None or one per
    image); a Pillow RGB image on white.

    A tile is at most :data:`PANEL_MAX_ASPECT` times as wide as high: a wider image (a 1 x 400
    strip) is squeezed to that width rather than making a panel of a hundred thousand pixels. A
    panel over :data:`minicnn.data.images.MAX_IMAGE_PIXELS` pixels is refused.
    """
    if images is None or isinstance(images, (str, bytes, Image.Image)):
        raise TypeError(f"panel: expected a list of (3, H, W) arrays, got "
                        f"{type(images).__name__}")
    arrays = [_tile_array(image, k) for k, image in enumerate(images)]
    if not arrays:
        raise ValueError("panel: expected a non-empty list of (3, H, W) arrays, got no images")
    if labels is not None and len(labels) != len(arrays):
        raise ValueError(f"panel: {len(labels)} labels for {len(arrays)} images")
    height = _count(height, "height", 1, PANEL_MAX_HEIGHT)
    gap = _count(gap, "gap", 0, PANEL_MAX_HEIGHT)
    caption = _count(caption, "caption", 0, PANEL_MAX_HEIGHT)
    widths = [min(max(1, round(a.shape[2] * height / a.shape[1])), PANEL_MAX_ASPECT * height)
              for a in arrays]
    size = (sum(widths) + gap * (len(arrays) + 1),
            height + 2 * gap + (caption if labels is not None else 0))
    viz.check_canvas(*size, "panel")                 # before anything is resized
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for i, (a, w) in enumerate(zip(arrays, widths, strict=True)):
        canvas.paste(array_to_image(resize(a, (height, w))).convert("RGB"), (x, gap))
        if labels is not None:
            draw.text((x, gap + height + 3), str(labels[i]), fill=(0, 0, 0))
        x += w + gap
    return canvas
