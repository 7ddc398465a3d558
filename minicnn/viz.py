"""Pictures of what a network does, with Pillow and numpy only: colour maps, grids of tiles with
labels, labelled rows (filters, feature maps, filtered photos).

Arrays in, Pillow images out::

    from minicnn import viz
    w = model["conv1"].weight.data                         # (6, 1, 5, 5)
    tiles = [viz.colormap(f[0], "diverging", vmax=abs(w).max()) for f in w]
    viz.grid(tiles, nrow=6, scale=12, labels=[f"filter {i}" for i in range(6)]).save("f.png")

* :func:`colormap` turns a 2-D array into RGB (``"gray"``, ``"viridis"``, ``"diverging"``
  blue-white-red centred on zero, ``"heat"`` black-red-yellow-white);
* :func:`to_rgb` accepts the usual image layouts (HW, CHW, HWC; float in [0, 1] or uint8);
* :func:`grid` lays tiles out ``nrow`` per row with a label under each;
* :func:`rows` stacks images (such as grids) with a label column on the left;
* :func:`titled` adds a title above an image; :func:`upscale` enlarges without smoothing.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data.images import MAX_IMAGE_PIXELS

# Colour-map anchors (evenly spaced in [0, 1], interpolated linearly in RGB).
_MAPS = {
    "gray": [(0, 0, 0), (255, 255, 255)],
    # matplotlib's viridis sampled at 9 points (perceptually uniform, readable in gray)
    "viridis": [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)],
    # blue - white - red (ColorBrewer RdBu reversed): negative blue, zero white, positive red
    "diverging": [(5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240),
                  (247, 247, 247), (253, 219, 199), (244, 165, 130), (214, 96, 77),
                  (178, 24, 43), (103, 0, 31)],
    "heat": [(0, 0, 0), (180, 0, 0), (255, 120, 0), (255, 230, 60), (255, 255, 255)],
}
COLORMAPS = tuple(_MAPS)


def font(size=12):
    """Pillow's default font at ``size`` pixels (a bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                                    # pragma: no cover (old Pillow)
        return ImageFont.load_default()


def text_size(text, fnt):
    """(width, height) in pixels of ``text`` (may hold newlines) drawn with ``fnt``."""
    box = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox((0, 0), text, font=fnt)
    return box[2] - box[0], box[3] - box[1]


def _limit(value, default):
    """A colour-scale limit: None, NaN or an infinity means the data's own."""
    return default if value is None or not np.isfinite(float(value)) else float(value)


def normalize(array, vmin=None, vmax=None):
    """``array`` as float64 scaled so that ``vmin`` -> 0 and ``vmax`` -> 1 (clipped); the defaults
    are the min and max of its finite values, so one inf does not flatten the rest. A constant
    array (vmin == vmax) maps to 0.5; +-inf go to the ends and NaN to 0."""
    a = np.asarray(array, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lo = _limit(vmin, finite.min() if finite.size else 0.0)
    hi = _limit(vmax, finite.max() if finite.size else 0.0)
    if not hi > lo:
        out = np.full(a.shape, 0.5)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    out[np.isnan(a)] = 0.0
    return out


def colormap(array, name="viridis", vmin=None, vmax=None):
    """A 2-D array as an RGB uint8 array (H, W, 3) through the colour map ``name``.

    ``"diverging"`` is centred on zero: without limits it spans ``[-m, m]`` with ``m = max |a|``
    (give ``vmax`` to share one scale among several arrays: ``vmin`` defaults to ``-vmax``); the
    other maps span ``[min, max]`` unless told. Names: :data:`COLORMAPS`.
    """
    a = np.asarray(array)
    if a.ndim != 2:
        raise ValueError(f"colormap expects a 2-D array, got shape {a.shape}")
    if name not in _MAPS:
        raise ValueError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
    if name == "diverging":
        if vmax is None:
            finite = np.abs(a[np.isfinite(a)].astype(np.float64))
            vmax = float(finite.max()) if finite.size else 0.0
        if vmin is None:
            vmin = -vmax
    t = normalize(a, vmin, vmax)
    anchors = np.asarray(_MAPS[name], dtype=np.float64)
    pos = t * (len(anchors) - 1)
    i = np.minimum(pos.astype(np.int64), len(anchors) - 2)
    frac = (pos - i)[..., None]
    rgb = anchors[i] * (1 - frac) + anchors[i + 1] * frac
    return np.rint(rgb).astype(np.uint8)


def to_rgb(image):
    """An RGB uint8 array (H, W, 3) from a Pillow image or an array: HW (gray), CHW with 1 or 3
    channels, or HWC with 3; floats are taken in [0, 1] (clipped), integers as 0..255."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)                          # CHW -> HWC (a (3, 1, 1) pixel too)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HW, CHW or HWC image with 1 or 3 channels, got shape "
                         f"{a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.uint8)
    return np.rint(np.clip(np.nan_to_num(a.astype(np.float64)), 0, 1) * 255).astype(np.uint8)


def check_canvas(width, height, where):
    """Refuse a picture larger than any image minicnn reads (a typo in a scale, say)."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"{where}: a {width}x{height} picture is over {MAX_IMAGE_PIXELS} pixels "
                         f"(minicnn.data.images.MAX_IMAGE_PIXELS)")


def _labels(labels, count, where):
    """One label string per picture ("" for None), or None."""
    if labels is None:
        return None
    labels = ["" if t is None else str(t) for t in labels]      # 0 is a label too
    if len(labels) != count:
        raise ValueError(f"{where}: {len(labels)} labels for {count} images")
    return labels


def _size(value, where, what, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{where}: {what} must be an int >= {minimum}, got {value!r:.40}")
    return int(value)


def upscale(image, factor):
    """Enlarge an image (array or Pillow) ``factor`` times in each direction, each pixel a block
    (no smoothing: the pixels stay visible). Returns an RGB uint8 array."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"upscale factor must be a positive int, got {factor!r:.40}")
    a = to_rgb(image)
    check_canvas(a.shape[1] * factor, a.shape[0] * factor, "upscale")
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1) if factor > 1 else a


def grid(images, nrow=8, pad=2, labels=None, scale=1, background=(255, 255, 255),
         font_size=12, label_colour=(0, 0, 0)):
    """Tiles laid out ``nrow`` per row (torchvision's ``make_grid`` convention) as a Pillow RGB
    image.

    :param images: a sequence of images (anything :func:`to_rgb` takes) or an (N, H, W) /
        (N, C, H, W) array; tiles may differ in size (each is centred in a cell of the largest).
    :param pad: pixels between cells and around the border.
    :param labels: one string per tile (or None), drawn centred under it.
    :param scale: integer enlargement of every tile (:func:`upscale`).
    """
    pad = _size(pad, "grid", "pad")
    nrow = _size(nrow, "grid", "nrow", 1)
    fnt = font(_size(font_size, "grid", "font_size", 1))
    tiles = [upscale(im, scale) for im in images]
    if not tiles:
        raise ValueError("grid needs at least one image")
    labels = _labels(labels, len(tiles), "grid")
    nrow = min(nrow, len(tiles))
    label_h = 0
    if labels is not None and any(labels):
        label_h = max(text_size(t, fnt)[1] for t in labels if t) + 4
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(max(t.shape[1] for t in tiles),
                 max((text_size(t, fnt)[0] for t in labels or () if t), default=0))
    rows_n = -(-len(tiles) // nrow)
    width = nrow * cell_w + (nrow + 1) * pad
    height = rows_n * (cell_h + label_h) + (rows_n + 1) * pad
    check_canvas(width, height, "grid")
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, nrow)
        x0 = pad + c * (cell_w + pad)
        y0 = pad + r * (cell_h + label_h + pad)
        canvas.paste(Image.fromarray(tile), (x0 + (cell_w - tile.shape[1]) // 2,
                                             y0 + (cell_h - tile.shape[0]) // 2))
        if labels is not None and labels[k]:
            draw.text((x0 + cell_w / 2, y0 + cell_h + 2), labels[k], fill=label_colour,
                      font=fnt, anchor="ma")
    return canvas


def rows(images, labels=None, pad=4, background=(255, 255, 255), font_size=13,
         label_colour=(0, 0, 0)):
    """Stack images (arrays or Pillow images) top to bottom, left-aligned, each with its label (may
    hold newlines) in a column on the left, vertically centred. Returns a Pillow RGB image."""
    pad = _size(pad, "rows", "pad")
    fnt = font(_size(font_size, "rows", "font_size", 1))
    pictures = [Image.fromarray(to_rgb(im)) for im in images]
    if not pictures:
        raise ValueError("rows needs at least one image")
    labels = _labels(labels, len(pictures), "rows")
    label_w = 0
    if labels is not None:
        label_w = max(text_size(t, fnt)[0] for t in labels) + 2 * pad
    width = label_w + max(p.width for p in pictures) + 2 * pad
    height = sum(p.height for p in pictures) + (len(pictures) + 1) * pad
    check_canvas(width, height, "rows")
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    y = pad
    for k, picture in enumerate(pictures):
        canvas.paste(picture, (label_w + pad, y))
        if labels is not None and labels[k]:
            draw.multiline_text((pad, y + picture.height / 2), labels[k], fill=label_colour,
                                font=fnt, anchor="lm")
        y += picture.height + pad
    return canvas


def titled(image, title, font_size=15, pad=6, background=(255, 255, 255),
           colour=(0, 0, 0)):
    """``image`` (array or Pillow) with ``title`` (may hold newlines) centred above it."""
    picture = Image.fromarray(to_rgb(image))
    fnt = font(_size(font_size, "titled", "font_size", 1))
    pad = _size(pad, "titled", "pad")
    title = "" if title is None else str(title)
    tw, th = text_size(title, fnt)
    width = max(picture.width, tw + 2 * pad)
    canvas = Image.new("RGB", (width, picture.height + th + 2 * pad), background)
    ImageDraw.Draw(canvas).multiline_text((width / 2, pad), title, fill=colour, font=fnt,
                                          anchor="ma", align="center")
    canvas.paste(picture, ((width - picture.width) // 2, th + 2 * pad))
    return canvas


def inset(image, small, corner="top-left", border=2, border_colour=(255, 255, 255)):
    """``image`` (RGB array) with ``small`` pasted in a corner inside a border; returns a new RGB
    array (used to show a convolution kernel on the picture it made)."""
    border = _size(border, "inset", "border")
    base = Image.fromarray(to_rgb(image))
    piece = Image.fromarray(to_rgb(small))
    framed = Image.new("RGB", (piece.width + 2 * border, piece.height + 2 * border),
                       border_colour)
    framed.paste(piece, (border, border))
    x = 0 if "left" in corner else base.width - framed.width
    y = 0 if "top" in corner else base.height - framed.height
    base.paste(framed, (x, y))
    return np.asarray(base)
