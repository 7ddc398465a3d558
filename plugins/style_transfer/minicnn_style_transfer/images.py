"""Images in and out: any file Pillow reads, as (3, H, W) float32 RGB in [0, 1]; pictures out.

Reading goes through :func:`minicnn.data.load_image` in ``"RGB"`` mode, which converts every Pillow
mode one documented way: 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``CMYK``...) / 255, 16-bit
(``I;16``, ``I``) / 65535, float ``F`` clipped to [0, 1]; gray repeated to three channels;
transparency (``RGBA``, ``LA``, ``P`` with a transparent colour) composited on white. On top of that
any NaN becomes 0 and infinities are clipped, so no NaN pixel ever enters the optimisation.
"""

import numpy as np
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


def panel(images, labels=None, height=256, gap=8, caption=18):
    """Images (3, H, W) side by side at a common ``height``, each with an optional caption below;
    a Pillow RGB image on white."""
    tiles = []
    for image in images:
        h, w = image.shape[1:]
        tiles.append(array_to_image(resize(image, (height, max(1, round(w * height / h))))))
    width = sum(t.width for t in tiles) + gap * (len(tiles) + 1)
    extra = caption if labels else 0
    canvas = Image.new("RGB", (width, height + 2 * gap + extra), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for i, tile in enumerate(tiles):
        canvas.paste(tile.convert("RGB"), (x, gap))
        if labels:
            draw.text((x, gap + height + 3), str(labels[i]), fill=(0, 0, 0))
        x += tile.width + gap
    return canvas
