"""Classical image filters are convolutions: Gaussian and box blur, sharpening, Sobel edges,
Laplacian and emboss, each applied to a photo with ``minicnn.functional.conv2d`` (padding "same").

    python examples/filters.py --out docs/pictures            # filters.png
    python examples/filters.py --out /tmp/pics --small        # a 64-pixel version in a second

The photo is ``--image`` if given, else ``../shared/data/images/amber.jpg`` beside the checkout,
else the cat ``chelsea.png`` there, else a generated test pattern (so the script never fails for
lack of data); the script says which. Colour images are blurred channel by channel in one call
(a depthwise convolution: ``groups=3``, weight (3, 1, k, k)); the edge detectors work on the
grayscale image. Signed responses (Sobel x / y, Laplacian) are drawn blue (negative) - white (zero)
- red (positive), each kernel is shown in the corner of its picture at the same colours.

Convolution here is cross-correlation, as in every CNN library: Sobel x
``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` is positive where the image gets brighter to the right.
"""

import math
import sys

import numpy as np
from PIL import Image, ImageDraw

from minicnn import data, viz
from minicnn import functional as F

# isort: split
from _common import SHARED_DATA, Timer, out_dir, parser

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
SOBEL_Y = SOBEL_X.T.copy()
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
SHARPEN = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)
EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


def gaussian_kernel(sigma, radius=None):
    """A normalised 2-D Gaussian, (2 radius + 1) square; radius ceil(3 sigma) by default."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = max(1, math.ceil(3 * sigma)) if radius is None else int(radius)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def box_kernel(size):
    return np.full((size, size), 1.0 / (size * size), np.float32)


def convolve(image, kernel):
    """``kernel`` (kh, kw) applied to every channel of a CHW image at once: one depthwise
    ``conv2d`` (groups = channels) with padding "same" (zeros beyond the border)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    c = image.shape[0]
    weight = np.ascontiguousarray(np.broadcast_to(kernel, (c, 1) + kernel.shape),
                                  dtype=np.float32)
    return F.conv2d(image[None], weight, padding="same", groups=c)[0]


def grayscale(rgb):
    """ITU-R 601 luma of a (3, H, W) image, as (1, H, W)."""
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None].astype(np.float32)


def test_pattern(size=256):
    """A synthetic colour photo stand-in: a gradient sky, shapes, stripes and a checkerboard."""
    h, w = size, size
    y, x = np.mgrid[0:h, 0:w] / size
    base = np.stack([0.25 + 0.5 * x, 0.35 + 0.3 * y, 0.8 - 0.5 * x], axis=-1)
    img = Image.fromarray(np.uint8(np.clip(base, 0, 1) * 255))
    d = ImageDraw.Draw(img)
    s = size / 256
    d.ellipse([30 * s, 30 * s, 120 * s, 120 * s], fill=(230, 200, 40))
    d.rectangle([150 * s, 40 * s, 220 * s, 110 * s], fill=(30, 40, 120))
    d.polygon([(40 * s, 230 * s), (90 * s, 140 * s), (140 * s, 230 * s)], fill=(200, 40, 40))
    for i in range(6):
        d.rectangle([(160 + 14 * i) * s, 140 * s, (166 + 14 * i) * s, 230 * s], fill=(20, 20, 20))
    a = np.asarray(img).astype(np.float32) / 255
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def load_photo(path, size):
    """(CHW float32 RGB image whose shorter side is ``size``, description of the source)."""
    candidates = [path] if path else [SHARED_DATA / "images" / "amber.jpg",
                                      SHARED_DATA / "images" / "chelsea.png"]
    for candidate in candidates:
        try:
            with Image.open(candidate) as im:
                w, h = im.size
        except (FileNotFoundError, OSError):
            if path:
                raise
            continue
        scale = size / min(w, h)
        shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        return data.load_image(candidate, "RGB", size=shape), str(candidate)
    return test_pattern(size), "a generated test pattern (no photo found)"


def filter_bank(sigma):
    """(name, kernel, colour?) of every filter the picture shows, in order."""
    return [
        (f"Gaussian blur, sigma {sigma:g}", gaussian_kernel(sigma), True),
        (f"Gaussian blur, sigma {sigma:g} (gray)", gaussian_kernel(sigma), False),
        ("box blur 5x5", box_kernel(5), True),
        ("sharpen", SHARPEN, True),
        ("Sobel x", SOBEL_X, False),
        ("Sobel y", SOBEL_Y, False),
        ("gradient magnitude", None, False),
        ("Laplacian", LAPLACIAN, False),
        ("emboss", EMBOSS, False),
    ]


def apply_bank(rgb, sigma):
    """``{name: (display RGB uint8, raw response CHW)}`` for the original, the grayscale image and
    every filter of :func:`filter_bank`."""
    gray = grayscale(rgb)
    out = {"original": (viz.to_rgb(rgb), rgb), "grayscale": (viz.to_rgb(gray), gray)}
    gx, gy = convolve(gray, SOBEL_X), convolve(gray, SOBEL_Y)
    for name, kernel, colour in filter_bank(sigma):
        if kernel is None:                                # gradient magnitude from the two Sobels
            raw = np.sqrt(gx ** 2 + gy ** 2)
            shown = viz.colormap(raw[0], "gray", 0, float(np.percentile(raw, 99)) or 1.0)
        else:
            raw = convolve(rgb if colour else gray, kernel)
            if name.startswith(("Sobel", "Laplacian")):
                limit = float(np.percentile(np.abs(raw), 99)) or 1.0
                shown = viz.colormap(raw[0], "diverging", vmax=limit)
            else:                                         # blurs, sharpen, emboss: an image again
                shown = viz.to_rgb(raw)
            inset_size = max(12, min(rgb.shape[1:]) // 5)
            factor = max(1, inset_size // kernel.shape[0])
            small = viz.upscale(viz.colormap(kernel, "diverging"), factor)
            shown = viz.inset(shown, small)
        out[name] = (shown, raw)
    return out


def main(argv=None):
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--image", help="a photo to filter (default: see the module docstring)")
    p.add_argument("--size", type=int, help="shorter side in pixels (default 256; --small: 64)")
    p.add_argument("--sigma", type=float, help="Gaussian sigma in pixels (default 2; --small: 1)")
    p.add_argument("--columns", type=int, default=4, help="pictures per row")
    args = p.parse_args(argv)
    size = args.size or (64 if args.small else 256)
    sigma = args.sigma or (1.0 if args.small else 2.0)
    out = out_dir(args)
    with Timer() as t:
        rgb, source = load_photo(args.image, size)
        print(f"photo: {source}, resized to {rgb.shape[2]}x{rgb.shape[1]}")
        results = apply_bank(rgb, sigma)
        names = list(results)
        picture = viz.grid([results[n][0] for n in names], nrow=args.columns, pad=6,
                           labels=names, font_size=13 if size >= 128 else 10)
        picture = viz.titled(picture, "Classical filters are convolutions "
                                      "(minicnn.functional.conv2d, padding 'same')",
                             font_size=16 if size >= 128 else 11)
        path = out / "filters.png"
        picture.save(path)
    print(f"wrote {path} ({picture.width}x{picture.height}) in {t.seconds:.1f} s")
    return {"path": path, "source": source, "results": results, "columns": args.columns}


if __name__ == "__main__":
    main(sys.argv[1:])
