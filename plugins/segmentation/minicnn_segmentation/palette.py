"""Colours for masks: Pascal VOC's 256-entry palette, palette PNGs, and overlays on images.

VOC's palette gives class ``i`` the colour whose bits interleave the bits of ``i`` (background
black, aeroplane (128, 0, 0), bicycle (0, 128, 0)...); index 255, the "ignore" label of VOC's
object borders, is (224, 224, 192). A mask saved by :func:`save_mask_png` is a palette ("P") PNG
whose pixel *indices* are the class labels, exactly as VOC's ``SegmentationClass`` files, so it
reads back with :func:`load_mask` (or PIL without converting to RGB) bit for bit.
"""

import os

import numpy as np
from minicnn import viz
from PIL import Image


def voc_palette(n=256):
    """``(n, 3) uint8``: Pascal VOC's colour map (the bit-interleaving of the devkit's
    ``labelcolormap``)."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


VOC_PALETTE = voc_palette()
VOC_PALETTE.flags.writeable = False


def _palette(palette, where):
    """(n, 3) uint8 colours: integers as 0..255 (checked, not wrapped), floats in [0, 1]
    (clipped)."""
    pal = VOC_PALETTE if palette is None else np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or not 1 <= len(pal) <= 256:
        raise ValueError(f"{where}: a palette must be an (n <= 256, 3) array of RGB colours, got "
                         f"shape {pal.shape}")
    if pal.dtype.kind not in "iuf":
        raise ValueError(f"{where}: a palette must hold numbers, got dtype {pal.dtype}")
    if pal.dtype.kind == "f":
        pal = np.rint(np.clip(np.nan_to_num(pal), 0, 1) * 255)
    elif pal.min() < 0 or pal.max() > 255:          # astype(uint8) would wrap 300 to 44
        raise ValueError(f"{where}: integer palette colours must be in [0, 255], got "
                         f"{pal.min()}..{pal.max()}")
    return pal.astype(np.uint8)


def _check_mask(mask, what="mask"):
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) array of class indices, got shape "
                         f"{mask.shape}")
    if mask.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer class indices, got dtype {mask.dtype}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"{what} values must be in [0, 255] (255 = ignore), got "
                         f"{mask.min()}..{mask.max()}")
    return mask


def _colours_for(mask, pal, where):
    """Refuse a class that has no colour in ``pal`` (rather than painting it black)."""
    if mask.size and mask.max() >= len(pal):
        raise ValueError(f"{where}: mask value {mask.max()} has no colour in a palette of "
                         f"{len(pal)}")


def colorize(mask, palette=None):
    """The mask as an RGB Pillow image, class ``i`` painted ``palette[i]`` (VOC's by default)."""
    mask = _check_mask(mask)
    pal = _palette(palette, "colorize")
    _colours_for(mask, pal, "colorize")
    return Image.fromarray(pal[mask])


def save_mask_png(mask, path, palette=None):
    """Write an (H, W) mask of class indices in [0, 255] as a palette PNG (VOC's colours).

    The PNG's indices are the labels; viewers show the palette colours. Every class in the mask
    needs a colour in ``palette``. Returns the Pillow image.
    """
    mask = _check_mask(mask)
    pal = _palette(palette, "save_mask_png")
    _colours_for(mask, pal, "save_mask_png")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[:len(pal)] = pal
    h, w = mask.shape
    image = Image.frombytes("P", (w, h), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(flat.reshape(-1).tolist())
    image.save(os.fspath(path), format="PNG")
    return image


def _image_hwc(image, where="overlay"):
    """A CHW (1 or 3 channels) or HW image as HWC float64 RGB in [0, 1]: floats taken in [0, 1]
    (clipped, NaN as 0), integers (uint8 and the like) as 0..255 and divided by 255."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"{where}: image must be (C, H, W) with 1 or 3 channels (or (H, W)), "
                         f"got shape {np.shape(image)}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{where}: image must hold numbers, got dtype {a.dtype}")
    # integer pixels are 0..255: taken as floats they were all clipped to white
    a = a / 255.0 if a.dtype.kind in "iu" else a.astype(np.float64)
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return np.clip(np.nan_to_num(a), 0.0, 1.0).transpose(1, 2, 0)


def overlay(image, mask, alpha=0.5, palette=None, skip=(0,)):
    """Blend the mask's class colours onto the image: a Pillow RGB image.

    Each pixel whose class is not in ``skip`` (background by default, so the scene stays visible)
    becomes ``(1 - alpha) * image + alpha * palette[class]``; the others keep the image.

    :param image: (C, H, W), 1 or 3 channels (or (H, W) gray): floats in [0, 1], or integers
        (uint8) in 0..255, divided by 255.
    :param mask: (H, W) integer classes in [0, 255] (255, VOC's ignore label, has a colour too).
    :param palette: (n, 3) uint8 (or float in [0, 1]) colours; VOC's by default.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha!r}")
    rgb = _image_hwc(image)
    mask = _check_mask(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"overlay: mask shape {mask.shape} differs from the image's "
                         f"{rgb.shape[:2]}")
    pal = _palette(palette, "overlay")
    _colours_for(mask, pal, "overlay")
    colours = pal[mask].astype(np.float64) / 255.0
    painted = ~np.isin(mask, np.asarray(list(skip), dtype=np.int64))
    out = np.where(painted[..., None], (1.0 - alpha) * rgb + alpha * colours, rgb)
    return Image.fromarray(np.rint(out * 255).astype(np.uint8))


def overlay_grid(images, truths, predictions, alpha=0.5, palette=None, scale=2):
    """Rows of (image, truth overlay, prediction overlay), enlarged ``scale`` (a positive int)
    times (nearest): a Pillow image to eyeball a model's validation predictions. ``truths`` may be
    None; else one mask per image, as ``predictions``. Every tile takes the first image's size.
    A grid over :data:`minicnn.data.images.MAX_IMAGE_PIXELS` pixels is refused."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"overlay_grid: scale must be a positive int, got {scale!r:.40}")
    if len(images) == 0:
        raise ValueError("overlay_grid: no images to draw")
    if predictions is None:
        raise ValueError("overlay_grid: predictions are needed, one mask per image")
    for what, masks in (("truths", truths), ("predictions", predictions)):
        if masks is not None and len(masks) != len(images):
            raise ValueError(f"overlay_grid: {len(masks)} {what} for {len(images)} images")
    h, w = _image_hwc(images[0], "overlay_grid").shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"overlay_grid: images must have pixels, got {h}x{w}")
    h, w = h * int(scale), w * int(scale)
    gap = 2
    cols = 3 if truths is not None else 2
    size = (cols * w + (cols - 1) * gap, len(images) * h + (len(images) - 1) * gap)
    viz.check_canvas(*size, "overlay_grid")          # before any tile is made
    grid = Image.new("RGB", size, "white")
    for r, image in enumerate(images):
        tiles = [Image.fromarray(np.rint(_image_hwc(image, "overlay_grid") * 255)
                                 .astype(np.uint8))]
        if truths is not None:
            tiles.append(overlay(image, truths[r], alpha, palette))
        tiles.append(overlay(image, predictions[r], alpha, palette))
        for c, tile in enumerate(tiles):
            grid.paste(tile.resize((w, h), Image.NEAREST), (c * (w + gap), r * (h + gap)))
    return grid
