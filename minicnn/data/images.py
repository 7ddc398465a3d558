"""Reading images safely into CHW float32 arrays (and writing them back).

:func:`load_image` is the one way minicnn reads an image file. It refuses decompression bombs before
decoding (any image with more than :data:`MAX_IMAGE_PIXELS` pixels, checked from the header), turns
a truncated or unreadable file into :class:`DataFormatError` naming the file, and converts every
Pillow mode the same documented way:

* ``"1"``, ``"L"``, ``"P"``, ``"RGB"``, ``"CMYK"``, ``"YCbCr"``... (8 bits a channel): / 255;
* ``"I;16"``, ``"I;16B"``, ``"I;16L"``, ``"I"`` (16-bit PNG/TIFF): / 65535, clipped to [0, 1];
* ``"F"`` (32-bit float): taken as is, clipped to [0, 1]; a NaN pixel is a DataFormatError;
* transparency (``"RGBA"``, ``"LA"``, ``"PA"``, a palette or ``"L"``/``"RGB"`` image with a
  transparent colour) is **composited on white** when the requested mode is ``"L"`` or ``"RGB"``,
  and kept as a fourth channel when it is ``"RGBA"``;
* ``"L"`` output from colour uses the ITU-R 601-2 luma weights (0.299 R + 0.587 G + 0.114 B),
  computed in float (Pillow's ``convert("L")`` rounds to 8 bits); ``"RGB"`` output from gray repeats
  the channel.

A resize (``size``) happens after conversion, per channel on float data, with Pillow's antialiased
bilinear filter. Multi-frame files (GIF, TIFF) give their first frame. EXIF orientation is not
applied.
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataFormatError

#: Images with more pixels than this are refused before decoding (Pillow's own default limit).
#: Pillow itself refuses images over twice ``PIL.Image.MAX_IMAGE_PIXELS`` whatever this says.
MAX_IMAGE_PIXELS = 89_478_485

MODES = ("L", "RGB", "RGBA")
LUMA = (0.299, 0.587, 0.114)

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
                MemoryError, Image.DecompressionBombError)


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"image mode must be one of {MODES}, got {mode!r}")


def check_size(size, what="size"):
    """``size`` (an int or ``(height, width)``) as a ``(height, width)`` tuple of positive ints."""
    given = size
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        height, width = size
        ok = not any(isinstance(v, (bool, np.bool_)) for v in size)
        height, width = int(height), int(width)
        ok = ok and height == size[0] and width == size[1] and height > 0 and width > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{what} must be a positive int or a (height, width) pair of positive "
                         f"ints, got {given!r:.60}")
    return height, width


def check_max_pixels(max_pixels, owner="load_image"):
    """``max_pixels`` (None for :data:`MAX_IMAGE_PIXELS`) as a positive int."""
    if max_pixels is None:
        return MAX_IMAGE_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) \
            or max_pixels < 1:
        raise ValueError(f"{owner}: max_pixels must be a positive int (or None for "
                         f"{MAX_IMAGE_PIXELS}), got {max_pixels!r:.40}")
    return int(max_pixels)


def open_image(path, max_pixels=None):
    """Open and decode ``path`` with Pillow, refusing bombs and truncated files
    (DataFormatError)."""
    limit = check_max_pixels(max_pixels)
    name = os.fspath(path)
    try:
        image = Image.open(name)
    except FileNotFoundError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataFormatError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise DataFormatError(f"{name}: not an image file Pillow can identify") from exc
    except _READ_ERRORS as exc:
        raise DataFormatError(f"{name}: unreadable image header ({exc})") from exc
    width, height = image.size
    if width * height > limit:
        image.close()
        raise DataFormatError(f"{name}: refused as a decompression bomb: its header claims "
                              f"{width}x{height} = {width * height} pixels, more than the limit of "
                              f"{limit} (minicnn.data.images.MAX_IMAGE_PIXELS)")
    try:
        image.load()
    except _READ_ERRORS as exc:
        image.close()
        raise DataFormatError(f"{name}: truncated or corrupt {image.format} image ({exc})") from exc
    return image


def _float_channels(image):
    """An HWC float32 array in [0, 1] with 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA)
    channels."""
    mode = image.mode
    if mode == "P" or (mode in ("L", "RGB") and "transparency" in image.info):
        image = image.convert("RGBA" if mode != "L" else "LA")
    elif mode in ("PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode in _SIXTEEN_BIT:
        raw = np.asarray(image)
        a = np.clip(raw.astype(np.float32) / np.float32(65535), 0, 1)[:, :, None]
        key = image.info.get("transparency")
        if isinstance(key, int):           # a gray level marked transparent (16-bit PNG tRNS)
            a = np.concatenate([a, (raw != key).astype(np.float32)[:, :, None]], axis=2)
        return a
    elif mode == "F":
        a = np.asarray(image, dtype=np.float32)
        if np.isnan(a).any():
            raise DataFormatError(f"float image with {int(np.isnan(a).sum())} NaN pixel(s)")
        return np.clip(a, 0, 1)[:, :, None]
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")          # CMYK, YCbCr, LAB, HSV, RGBX...
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise DataFormatError(f"unsupported pixel type {a.dtype} for Pillow mode {image.mode}")
    a = a.astype(np.float32) / np.float32(255)
    return a[:, :, None] if a.ndim == 2 else a


def _convert(a, mode):
    """HWC float channels (1 to 4) to the requested mode's channels (see the module docstring)."""
    channels = a.shape[2]
    color = a[:, :, :channels - 1] if channels in (2, 4) else a
    alpha = a[:, :, channels - 1:] if channels in (2, 4) else None
    if mode == "RGBA":
        if color.shape[2] == 1:
            color = np.repeat(color, 3, axis=2)
        if alpha is None:
            alpha = np.ones(color.shape[:2] + (1,), dtype=np.float32)
        return np.concatenate([color, alpha], axis=2)
    if alpha is not None:                      # composite on white
        color = color * alpha + (np.float32(1) - alpha)
    if mode == "L" and color.shape[2] == 3:
        r, g, b = (np.float32(w) for w in LUMA)
        return (r * color[:, :, 0] + g * color[:, :, 1] + b * color[:, :, 2])[:, :, None]
    if mode == "RGB" and color.shape[2] == 1:
        return np.repeat(color, 3, axis=2)
    return color


def resize_chw(image, size):
    """Resize a CHW float32 array to ``size`` (int or (height, width)), antialiased bilinear."""
    height, width = check_size(size)
    image = np.asarray(image, dtype=np.float32)
    if image.shape[1:] == (height, width):
        return image.copy()
    out = np.empty((image.shape[0], height, width), dtype=np.float32)
    for c in range(image.shape[0]):
        plane = Image.fromarray(np.ascontiguousarray(image[c]))   # float32 -> mode "F"
        out[c] = np.asarray(plane.resize((width, height), Image.BILINEAR))
    return out


def image_to_array(image, mode="RGB", size=None):
    """A Pillow image as a CHW float32 array in [0, 1] (conversion rules in the module
    docstring)."""
    _check_mode(mode)
    a = _convert(_float_channels(image), mode)
    chw = np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)
    if size is not None:
        chw = resize_chw(chw, size)
    return chw


def load_image(path, mode="RGB", size=None, max_pixels=None):
    """Read an image file as a CHW float32 array in [0, 1].

    :param mode: ``"L"`` (1 channel), ``"RGB"`` (3) or ``"RGBA"`` (4).
    :param size: None, an int (square) or ``(height, width)``: resize to exactly that.
    :param max_pixels: refuse larger images (default :data:`MAX_IMAGE_PIXELS`).
    :raises DataFormatError: a bomb, a truncated/corrupt file or not an image; the message names it.
    """
    _check_mode(mode)
    if size is not None:
        check_size(size)
    image = open_image(path, max_pixels)
    try:
        return image_to_array(image, mode, size)
    except DataFormatError as exc:
        raise DataFormatError(f"{os.fspath(path)}: {exc}") from exc
    finally:
        image.close()


def array_to_image(array):
    """A CHW (1, 3 or 4 channels) or HW float array in [0, 1] as an 8-bit Pillow image (clipped)."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 3:
        if a.shape[0] not in (1, 3, 4):
            raise ValueError(f"expected 1, 3 or 4 channels (CHW), got shape {a.shape}")
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    elif a.ndim != 2:
        raise ValueError(f"expected a CHW or HW array, got shape {a.shape}")
    a = np.clip(np.rint(np.nan_to_num(a) * 255), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def save_image(array, path, **save_kwargs):
    """Write a CHW float array in [0, 1] as an 8-bit image; the format follows the extension."""
    array_to_image(array).save(os.fspath(path), **save_kwargs)
