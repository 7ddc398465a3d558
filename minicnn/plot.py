"""Small line charts drawn with Pillow (no matplotlib): training curves and the like.

``line_chart({"train loss": [...], "val loss": [...]}, path, title=..., xlabel="epoch")`` writes a
PNG with axes, ticks, grid and a legend. Several panels side by side: ``line_charts([panel, panel],
path)`` where a panel is a dict with ``series``, ``title``, ``xlabel``, ``ylabel``.
"""

import math

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]
PANEL_W, PANEL_H = 520, 360
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 64, 16, 34, 46


# |values| beyond this are drawn as missing: a span of them overflows to inf (a diverged run)
LARGEST = 1e300


def _nice_ticks(lo, hi, count=5, integer=False):
    """Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten (whole
    numbers when ``integer``), about ``count`` of them, the first at or below ``lo``, the last at
    or above ``hi``. Built by index: adding a step smaller than the values' rounding never ends."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo <= max(abs(lo), abs(hi)) * 1e-9 or hi - lo < 1e-200:   # constant, to rounding
        pad = abs(lo) * 0.05 or 0.5                                    # (a band around it)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=10 * magnitude)
    if integer:
        step = max(1, round(step))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _number(value, name):
    """A series value as a float: None (JSON's NaN) is missing, as are values beyond LARGEST."""
    if value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"line chart: series {name!r} holds {value!r:.40}, expected numbers or "
                        f"(x, y) pairs") from None
    return number if abs(number) <= LARGEST else math.nan


def _points(name, values):
    """(x, y) pairs of a series given as y values (x = 1, 2, ...) or as (x, y) pairs."""
    points = []
    for i, v in enumerate(values):
        if hasattr(v, "__len__") and not isinstance(v, str) and len(v) == 2:
            points.append((_number(v[0], name), _number(v[1], name)))
        else:
            points.append((float(i + 1), _number(v, name)))
    return points


def _runs(points):
    """The stretches of consecutive drawable points: a missing value breaks the line."""
    runs, run = [], []
    for x, y in points:
        if math.isfinite(x) and math.isfinite(y):
            run.append((x, y))
        elif run:
            runs.append(run)
            run = []
    return runs + [run] if run else runs


def _text(value):
    return str(value).replace("\n", " ")     # Pillow anchors only single lines


def _fmt(v):
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _draw_panel(draw, font, ox, oy, panel):
    series = {_text(k): _points(k, vals) for k, vals in panel["series"].items() if len(vals)}
    # the x axis spans every point with an x, so a run that ends in NaN shows where it stopped
    xs = [x for pts in series.values() for x, _ in pts if math.isfinite(x)] or [0.0, 1.0]
    ys = [y for pts in series.values() for x, y in pts
          if math.isfinite(x) and math.isfinite(y)] or [0.0, 1.0]
    integer_x = all(float(x).is_integer() for x in xs)
    xt, yt = _nice_ticks(min(xs), max(xs), integer=integer_x), _nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    left, top = ox + MARGIN_L, oy + MARGIN_T
    right, bottom = ox + PANEL_W - MARGIN_R, oy + PANEL_H - MARGIN_B

    def to_px(x, y):
        px = left + (x - x0) / ((x1 - x0) or 1) * (right - left)
        py = bottom - (y - y0) / ((y1 - y0) or 1) * (bottom - top)
        return px, py

    for t in yt:
        _, py = to_px(x0, t)
        draw.line([(left, py), (right, py)], fill=(230, 230, 230))
        draw.text((left - 6, py), _fmt(t), fill=(60, 60, 60), font=font, anchor="rm")
    for t in xt:
        px, _ = to_px(t, y0)
        draw.line([(px, top), (px, bottom)], fill=(240, 240, 240))
        draw.text((px, bottom + 6), _fmt(t), fill=(60, 60, 60), font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text(((left + right) / 2, oy + 10), _text(panel.get("title", "")), fill=(0, 0, 0),
              font=font, anchor="mt")
    draw.text(((left + right) / 2, bottom + 24), _text(panel.get("xlabel", "")), fill=(0, 0, 0),
              font=font, anchor="mt")
    draw.text((ox + 4, top - 14), _text(panel.get("ylabel", "")), fill=(0, 0, 0), font=font)
    # the legend goes in the upper or lower right corner, whichever the curves' ends leave free
    ends = [pts[-1][1] for pts in series.values() if pts and math.isfinite(pts[-1][1])]
    high = bool(ends) and sum(ends) / len(ends) > (y0 + y1) / 2
    legend_top = bottom - 8 - 14 * len(series) if high else top + 4
    if series:
        draw.rectangle([right - 126, legend_top - 2, right - 4, legend_top + 14 * len(series) + 2],
                       fill="white", outline=(200, 200, 200))
    for k, pts in enumerate(series.values()):
        colour = COLOURS[k % len(COLOURS)]
        runs = [[to_px(x, y) for x, y in run] for run in _runs(pts)]
        for pix in runs:
            if len(pix) > 1:
                draw.line(pix, fill=colour, width=2)
        dots = [p for pix in runs for p in pix]
        for px, py in dots if len(dots) <= 60 else [p for pix in runs if len(pix) == 1
                                                      for p in pix]:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
    for k, name in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        ly = legend_top + 7 + 14 * k
        draw.line([(right - 120, ly), (right - 100, ly)], fill=colour, width=3)
        draw.text((right - 95, ly), name, fill=(0, 0, 0), font=font, anchor="lm")


def line_charts(panels, path):
    """Write panels side by side to a PNG at ``path``; returns the Pillow image."""
    image = Image.new("RGB", (PANEL_W * len(panels), PANEL_H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for i, panel in enumerate(panels):
        _draw_panel(draw, font, i * PANEL_W, 0, panel)
    if path is not None:
        image.save(path)
    return image


def line_chart(series, path, title="", xlabel="", ylabel=""):
    """One panel; ``series`` maps a legend name to y values (x = 1, 2, ...) or (x, y) pairs. A
    missing value (NaN, None, inf) breaks its line; the axes still span every x given."""
    return line_charts([{"series": series, "title": title, "xlabel": xlabel, "ylabel": ylabel}],
                       path)
