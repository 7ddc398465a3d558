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


def _nice_ticks(lo, hi, count=5, integer=False):
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=10 * magnitude)
    if integer:
        step = max(1, round(step))
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 0.5:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v):
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _draw_panel(draw, font, ox, oy, panel):
    series = {k: [(i + 1, float(v)) if not isinstance(v, tuple) else (float(v[0]), float(v[1]))
                  for i, v in enumerate(vals)] for k, vals in panel["series"].items() if len(vals)}
    points = [p for pts in series.values() for p in pts if math.isfinite(p[1])]
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [p[1] for p in points] or [0.0, 1.0]
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
    draw.text(((left + right) / 2, oy + 10), panel.get("title", ""), fill=(0, 0, 0), font=font,
              anchor="mt")
    draw.text(((left + right) / 2, bottom + 24), panel.get("xlabel", ""), fill=(0, 0, 0),
              font=font, anchor="mt")
    draw.text((ox + 4, top - 14), panel.get("ylabel", ""), fill=(0, 0, 0), font=font)
    # the legend goes in the upper or lower right corner, whichever the curves' ends leave free
    ends = [pts[-1][1] for pts in series.values() if pts and math.isfinite(pts[-1][1])]
    high = bool(ends) and sum(ends) / len(ends) > (y0 + y1) / 2
    legend_top = bottom - 8 - 14 * len(series) if high else top + 4
    if series:
        draw.rectangle([right - 126, legend_top - 2, right - 4, legend_top + 14 * len(series) + 2],
                       fill="white", outline=(200, 200, 200))
    for k, pts in enumerate(series.values()):
        colour = COLOURS[k % len(COLOURS)]
        pix = [to_px(x, y) for x, y in pts if math.isfinite(y)]
        if len(pix) > 1:
            draw.line(pix, fill=colour, width=2)
        for px, py in pix if len(pix) <= 60 else []:
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
    """One panel; ``series`` maps a legend name to y values (x = 1, 2, ...) or (x, y) pairs."""
    return line_charts([{"series": series, "title": title, "xlabel": xlabel, "ylabel": ylabel}],
                       path)
