"""Boxes and labels drawn on images with Pillow.

:func:`draw_boxes` returns a Pillow RGB image (enlarged by an integer ``scale`` first, so small
images stay readable): each box an outline in its class colour with a label tag (``"circle
0.97"``) above it, or inside when there is no room. :func:`detection_grid` lays several images out
with ground truth (dashed-looking thin white outlines) and detections side by side.
"""

import numpy as np
from minicnn import viz
from PIL import Image, ImageDraw

# distinct, readable colours (Tableau 10), cycled by label
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def colour_of(label):
    return PALETTE[(int(label) - 1) % len(PALETTE)]


def _positive_int(value, where, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r:.40}")
    return int(value)


def _boxes(boxes, where):
    """``boxes`` as an (M, 4) float64 array: (M, 4), one (4,) box, or empty."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.shape == (4,):
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        # reshape(-1, 4) would silently regroup a (4, M) or (M, 8) array into wrong boxes
        raise ValueError(f"{where}: boxes must be (M, 4) as (x1, y1, x2, y2), got shape {b.shape}")
    return b


def _per_box(values, count, where, what):
    """``labels`` or ``scores`` as a 1-D array of ``count`` values (or None)."""
    if values is None:
        return None
    v = np.asarray(values).reshape(-1)
    if len(v) != count:
        raise ValueError(f"{where}: {len(v)} {what} for {count} boxes")
    return v


def draw_boxes(image, boxes, labels=None, scores=None, class_names=None, scale=1, width=2,
               colour=None, font_size=11):
    """``image`` (anything :func:`minicnn.viz.to_rgb` takes, or a Pillow image) enlarged
    ``scale`` (a positive int) times, with ``boxes`` ``(M, 4)`` (or one ``(4,)`` box, in the
    original image's pixels) drawn on it; ``labels`` (M,) pick colours and names
    (``class_names[label]`` when ``0 <= label < len(class_names)``, else the number), ``scores``
    (M,) are appended to the names. Returns a new Pillow RGB image.

    Coordinates far outside the image are clipped to a margin around it (only what shows is
    drawn). A box with a NaN or infinite coordinate (a diverged regressor) is skipped: nothing is
    drawn for it, no error.
    """
    scale = _positive_int(scale, "draw_boxes", "scale")
    width = _positive_int(width, "draw_boxes", "width")
    boxes = _boxes(boxes, "draw_boxes")
    labels = _per_box(labels, len(boxes), "draw_boxes", "labels")
    scores = _per_box(scores, len(boxes), "draw_boxes", "scores")
    if isinstance(image, Image.Image):
        canvas = image.convert("RGB")
        if scale != 1:
            viz.check_canvas(canvas.width * scale, canvas.height * scale, "draw_boxes")
            canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)
    else:
        canvas = Image.fromarray(viz.upscale(viz.to_rgb(image), scale))
    _draw(canvas, boxes, scale, labels, scores, class_names, width, colour, font_size)
    return canvas


def _draw(canvas, boxes, scale, labels, scores, class_names, width, colour, font_size):
    """Draw ``boxes`` (in pixels of the image before its enlargement ``scale``) on ``canvas``."""
    draw = ImageDraw.Draw(canvas)
    fnt = viz.font(font_size)
    # Pillow walks every pixel of an edge, even off the canvas (1e10 never finishes): clip to a
    # margin wide enough that the outline of an edge outside the canvas stays outside
    margin = 2 * width
    for k, box in enumerate(boxes):
        if not np.isfinite(box).all():
            continue                                      # a diverged prediction: nothing to draw
        # clipped before scaling, so that a huge finite box does not overflow to inf
        x1, x2 = np.clip(box[[0, 2]], -margin / scale, (canvas.width + margin) / scale) * scale
        y1, y2 = np.clip(box[[1, 3]], -margin / scale, (canvas.height + margin) / scale) * scale
        x1, y1, x2, y2 = float(x1), float(y1), float(x2), float(y2)
        label = None if labels is None else int(labels[k])
        c = colour or (colour_of(label) if label is not None else (255, 0, 0))
        draw.rectangle((x1, y1, max(x2 - 1, x1), max(y2 - 1, y1)), outline=c, width=width)
        text = ""
        if label is not None:
            named = class_names is not None and 0 <= label < len(class_names)
            text = str(class_names[label]) if named else str(label)   # -1 is not the last name
        if scores is not None:
            text = f"{text} {float(scores[k]):.2f}".strip()
        if text:
            tw, th = viz.text_size(text, fnt)
            ty = y1 - th - 3 if y1 - th - 3 >= 0 else max(y1, 0) + width
            tx = min(max(x1, 0), max(canvas.width - tw - 2, 0))
            draw.rectangle((tx, ty, tx + tw + 2, ty + th + 3), fill=c)
            draw.text((tx + 1, ty), text, fill=(255, 255, 255), font=fnt)


def detection_grid(images, detections, targets=None, class_names=None, scale=3, nrow=4,
                   score_threshold=0.5):
    """A grid of images with their detections (boxes scoring at least ``score_threshold``) and,
    when ``targets`` are given, the ground-truth boxes in thin white outlines underneath.

    ``detections`` (and ``targets``) hold one dict per image; ``scale`` and ``nrow`` are positive
    ints. A grid over :data:`minicnn.data.images.MAX_IMAGE_PIXELS` pixels is refused.
    """
    scale = _positive_int(scale, "detection_grid", "scale")
    nrow = _positive_int(nrow, "detection_grid", "nrow")
    pictures = [viz.to_rgb(image) for image in images]
    if not pictures:
        raise ValueError("detection_grid: no images to draw")
    for what, per_image in (("detections", detections), ("targets", targets)):
        if per_image is not None and len(per_image) != len(pictures):
            raise ValueError(f"detection_grid: {len(per_image)} {what} for {len(pictures)} "
                             f"images")
    # the size viz.grid will make (pad 4), checked before anything is enlarged
    cols, rows_n = min(nrow, len(pictures)), -(-len(pictures) // nrow)
    cell_h, cell_w = (max(p.shape[i] for p in pictures) * scale for i in (0, 1))
    viz.check_canvas(cols * cell_w + (cols + 1) * 4, rows_n * cell_h + (rows_n + 1) * 4,
                     "detection_grid")
    tiles = []
    for k, rgb in enumerate(pictures):
        pic = Image.fromarray(viz.upscale(rgb, scale))
        if targets is not None:
            _draw(pic, _boxes(targets[k]["boxes"], "detection_grid"), scale, None, None, None, 1,
                  (255, 255, 255), 11)
        det = detections[k]
        boxes = _boxes(det["boxes"], "detection_grid")
        scores = _per_box(det["scores"], len(boxes), "detection_grid", "scores")
        labels = _per_box(det["labels"], len(boxes), "detection_grid", "labels")
        keep = scores >= score_threshold
        _draw(pic, boxes[keep], scale, labels[keep], scores[keep], class_names, 2, None, 11)
        tiles.append(np.asarray(pic))
    return viz.grid(tiles, nrow=nrow, pad=4)
