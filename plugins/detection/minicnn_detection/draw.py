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


def draw_boxes(image, boxes, labels=None, scores=None, class_names=None, scale=1, width=2,
               colour=None, font_size=11):
    """``image`` (anything :func:`minicnn.viz.to_rgb` takes, or a Pillow image) enlarged
    ``scale`` times, with ``boxes`` ``(M, 4)`` (in the original image's pixels) drawn on it;
    ``labels`` (M,) pick colours and names (``class_names[label]``), ``scores`` are appended to
    the names. Returns a new Pillow RGB image."""
    if isinstance(image, Image.Image):
        canvas = image.convert("RGB")
        if scale != 1:
            canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)
    else:
        canvas = Image.fromarray(viz.upscale(viz.to_rgb(image), scale))
    _draw(canvas, np.asarray(boxes, np.float64).reshape(-1, 4) * scale, labels, scores,
          class_names, width, colour, font_size)
    return canvas


def _draw(canvas, boxes, labels, scores, class_names, width, colour, font_size):
    draw = ImageDraw.Draw(canvas)
    fnt = viz.font(font_size)
    for k, box in enumerate(boxes):
        label = None if labels is None else int(labels[k])
        c = colour or (colour_of(label) if label is not None else (255, 0, 0))
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, max(x2 - 1, x1), max(y2 - 1, y1)), outline=c, width=width)
        text = ""
        if label is not None:
            text = class_names[label] if class_names is not None and label < len(class_names) \
                else str(label)
        if scores is not None:
            text = f"{text} {float(scores[k]):.2f}".strip()
        if text:
            tw, th = viz.text_size(text, fnt)
            ty = y1 - th - 3 if y1 - th - 3 >= 0 else y1 + width
            tx = min(max(x1, 0), max(canvas.width - tw - 2, 0))
            draw.rectangle((tx, ty, tx + tw + 2, ty + th + 3), fill=c)
            draw.text((tx + 1, ty), text, fill=(255, 255, 255), font=fnt)


def detection_grid(images, detections, targets=None, class_names=None, scale=3, nrow=4,
                   score_threshold=0.5):
    """A grid of images with their detections (boxes scoring at least ``score_threshold``) and,
    when ``targets`` are given, the ground-truth boxes in thin white outlines underneath."""
    tiles = []
    for k, image in enumerate(images):
        pic = Image.fromarray(viz.upscale(viz.to_rgb(image), scale))
        if targets is not None:
            _draw(pic, np.asarray(targets[k]["boxes"], np.float64).reshape(-1, 4) * scale, None,
                  None, None, 1, (255, 255, 255), 11)
        det = detections[k]
        keep = np.asarray(det["scores"]) >= score_threshold
        _draw(pic, np.asarray(det["boxes"], np.float64).reshape(-1, 4)[keep] * scale,
              np.asarray(det["labels"])[keep], np.asarray(det["scores"])[keep], class_names, 2,
              None, 11)
        tiles.append(np.asarray(pic))
    return viz.grid(tiles, nrow=nrow, pad=4)
