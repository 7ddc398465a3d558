"""Shapes: a generated image-classification dataset that needs no download.

Each image shows one filled shape drawn with Pillow (4x supersampled, then box-filtered: antialiased
edges) at a random position, size, aspect ratio and rotation, with random foreground and background
intensities (or colours, with 3 channels) and Gaussian pixel noise. The classes, in label order::

    circle, square, triangle, cross, ring, horizontal bar, vertical bar, diamond, X, star

Rotations stay within ``max_rotation`` degrees (15 by default) so that square/diamond, cross/X and
the two bars remain distinct classes. The position jitter makes a linear classifier clearly worse
than a small CNN (see the tests and the benchmark); LeNet-5 separates the classes almost perfectly.

Everything is drawn at construction from one generator derived from ``seed`` (and ``train``): the
same arguments give bit-identical arrays, and the last few datasets generated are cached in memory.
"""

from collections import OrderedDict

import numpy as np
from PIL import Image, ImageDraw

from . import seeding
from .dataset import ArrayBacked
from .polygons import ngon, rect, star

CLASSES = ["circle", "square", "triangle", "cross", "ring", "horizontal bar", "vertical bar",
           "diamond", "X", "star"]

_SUPERSAMPLE = 4
_CACHE = OrderedDict()
_CACHE_SIZE = 4


# Per class: (polygon in unit coordinates, y pointing down, fill 255 or 0), drawn in order.
_BAR = 0.25
_TEMPLATES = [
    [(ngon(32), 255)],                                         # circle
    [(rect(0.75, 0.75), 255)],                                 # square
    [(ngon(3), 255)],                                          # triangle (pointing up)
    [(rect(1.0, 0.22), 255), (rect(0.22, 1.0), 255)],          # cross
    [(ngon(32), 255), (ngon(32, 0.55), 0)],                    # ring
    [(rect(1.0, _BAR), 255)],                                  # horizontal bar
    [(rect(_BAR, 1.0), 255)],                                  # vertical bar
    [(ngon(4), 255)],                                          # diamond
    [(rect(1.0, 0.2, 45), 255), (rect(1.0, 0.2, -45), 255)],   # X
    [(star(), 255)],                                           # star
]
_BOUND = 1.07   # the largest template radius (the square's corners), keeps shapes inside the image


def _masks(labels, centers, scales, angles, size):
    """Antialiased coverage masks (n, size, size) uint8 of the shapes, drawn with Pillow."""
    n = len(labels)
    big = size * _SUPERSAMPLE
    out = np.empty((n, size, size), dtype=np.uint8)
    # Transform every sample's polygons with numpy first: per class, all its samples at once.
    cos, sin = np.cos(angles), np.sin(angles)
    polygons = [None] * n
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        transformed = []
        for poly, fill in _TEMPLATES[cls]:
            p = poly[None, :, :] * scales[members, None, :]                  # stretch
            x = cos[members, None] * p[..., 0] - sin[members, None] * p[..., 1]
            y = sin[members, None] * p[..., 0] + cos[members, None] * p[..., 1]
            pts = np.stack([x, y], axis=-1) + centers[members, None, :]
            transformed.append(((pts * _SUPERSAMPLE).reshape(len(members), -1), fill))
        for k, i in enumerate(members):
            polygons[i] = [(pts[k].tolist(), fill) for pts, fill in transformed]
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    for i in range(n):
        draw.rectangle((0, 0, big, big), fill=0)
        for flat, fill in polygons[i]:
            draw.polygon(flat, fill=fill)
        out[i] = np.asarray(canvas.reduce(_SUPERSAMPLE))
    return out


def generate_shapes(n, size=28, channels=1, seed=0, num_classes=10, train=True, noise=0.1,
                    max_rotation=15.0, min_scale=0.25, max_scale=0.42):
    """``(images uint8 (n, channels, size, size), labels int64 (n,))``: see :class:`Shapes`."""
    rng = seeding.derive(seeding.GENERATE, seed, 0 if train else 1)
    labels = np.arange(n) % num_classes
    labels = labels[rng.permutation(n)]
    radius = rng.uniform(min_scale, max_scale, n) * size                    # outer radius, pixels
    aspect = rng.uniform(0.8, 1.0, (n, 2))                                  # x, y stretch
    scales = radius[:, None] * aspect
    reach = radius * aspect.max(axis=1) * _BOUND
    slack = np.maximum(size / 2 - 1 - reach, 0)      # keep a pixel of background at the border
    centers = size / 2 + slack[:, None] * rng.uniform(-1, 1, (n, 2))
    angles = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    if channels == 1:
        background = rng.uniform(0.0, 0.35, (n, 1))
        foreground = rng.uniform(0.55, 1.0, (n, 1))
    else:
        background = rng.uniform(0.0, 0.4, (n, channels))
        foreground = rng.uniform(0.5, 1.0, (n, channels))
    mask = _masks(labels, centers, scales, angles, size).astype(np.float32) / np.float32(255)
    images = np.empty((n, channels, size, size), dtype=np.uint8)
    step = 2048                                      # float work in chunks: bounded memory
    for a in range(0, n, step):
        b = min(n, a + step)
        bg = background[a:b, :, None, None].astype(np.float32)
        fg = foreground[a:b, :, None, None].astype(np.float32)
        img = bg + (fg - bg) * mask[a:b, None]
        if noise:
            img += np.float32(noise) * rng.standard_normal(img.shape, dtype=np.float32)
        images[a:b] = np.rint(np.clip(img, 0, 1) * 255)
    return images, labels.astype(np.int64)


class Shapes(ArrayBacked):
    """A generated dataset of ``n`` images of ``num_classes`` shapes (see the module docstring).

    :param n: number of samples; classes are balanced (counts differ by at most one).
    :param size: image height and width (at least 8).
    :param channels: 1 (gray) or 3 (colour: random foreground and background colours).
    :param seed: the generation seed; ``train=False`` draws a different set from the same seed.
    :param num_classes: the first ``num_classes`` of :data:`CLASSES` (2 to 10).
    :param noise: standard deviation of the Gaussian pixel noise (images are in [0, 1]).
    :param max_rotation: rotations are uniform in [-max_rotation, max_rotation] degrees (< 22.5).
    :param transform: ``transform(image, rng)`` applied per sample.

    Samples are ``(channels, size, size)`` float32 in [0, 1]; stored as uint8 in ``images``.
    """

    classes = CLASSES          # an instance with num_classes < 10 holds the first num_classes

    def __init__(self, n=10000, size=28, channels=1, seed=0, num_classes=10, transform=None,
                 train=True, noise=0.1, max_rotation=15.0):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Shapes: n must be a positive int, got {n!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"Shapes: size must be an int >= 8, got {size!r}")
        if channels not in (1, 3):
            raise ValueError(f"Shapes: channels must be 1 or 3, got {channels!r}")
        if isinstance(num_classes, bool) or num_classes not in range(2, len(CLASSES) + 1):
            raise ValueError(f"Shapes: num_classes must be an int in 2..{len(CLASSES)}, "
                             f"got {num_classes!r}")
        if not 0 <= float(noise) <= 1:
            raise ValueError(f"Shapes: noise must be in [0, 1], got {noise!r}")
        if not 0 <= float(max_rotation) < 22.5:
            raise ValueError(f"Shapes: max_rotation must be in [0, 22.5) degrees (beyond, squares "
                             f"and diamonds look alike), got {max_rotation!r}")
        seed = seeding.check_seed(seed)
        key = (int(n), int(size), int(channels), seed, int(num_classes), bool(train), float(noise),
               float(max_rotation))
        if key in _CACHE:
            _CACHE.move_to_end(key)
            images, labels = _CACHE[key]
        else:
            images, labels = generate_shapes(*key[:6], noise=key[6], max_rotation=key[7])
            images.flags.writeable = False
            labels.flags.writeable = False
            _CACHE[key] = (images, labels)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        super().__init__(images, labels, transform)
        self.classes = CLASSES[:num_classes]
        self.seed = seed
        self.train = bool(train)

    def __repr__(self):
        c, h, w = self.images.shape[1:]
        return (f"Shapes({len(self)} samples, {c}x{h}x{w}, {len(self.classes)} classes, "
                f"seed={self.seed}, train={self.train})")
