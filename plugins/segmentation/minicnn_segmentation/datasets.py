"""Segmentation datasets: samples are ``(image CHW float32 in [0, 1], mask HW int64)``.

minicnn's :class:`minicnn.data.DataLoader` stacks labels as ``int64 (N,)`` and refuses anything
else, except that it hands a :class:`minicnn.data.Dataset` subclass's batches to the dataset's own
``get_batch``. :class:`MaskDataset` is that subclass for (image, mask) samples: its ``get_batch``
stacks masks into ``int64 (N, H, W)``, so the stock DataLoader (shuffling by seed, prefetch) loads
segmentation batches unchanged. Its ``transform`` is *joint*: ``transform(image, mask, rng) ->
(image, mask)``, so a flip or crop moves the mask with the image. :func:`as_mask_dataset` wraps any
sequence of (image, mask) pairs.

:class:`SegShapes` is a generated dataset that needs no download: filled circles, squares,
triangles... drawn with Pillow on textured backgrounds; the mask is the class of the shape on top.
"""

import math
from collections import OrderedDict

import numpy as np
from minicnn import InputError
from minicnn.data import Dataset, Subset
from minicnn.data.polygons import ngon, rect, star
from PIL import Image, ImageDraw, ImageFilter

IGNORE_INDEX = 255

SHAPE_CLASSES = ["background", "circle", "square", "triangle", "star", "cross", "ring"]

_SUPERSAMPLE = 4
_CACHE = OrderedDict()
_CACHE_SIZE = 4


class MaskDataset(Dataset):
    """Base class of (image, mask) datasets; subclasses implement ``__len__`` and ``load(index)``.

    ``get(index, rng)`` applies the joint ``transform(image, mask, rng)``; ``get_batch(indices,
    rngs)`` returns ``(x float32 (N, C, H, W) contiguous, y int64 (N, H, W))``.
    """

    def get(self, index, rng=None):
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range for {n} samples")
        image, mask = self.load(index)
        if self.transform is not None:
            if rng is None:
                rng = np.random.default_rng((0x5E6, index))
            image, mask = self.transform(image, mask, rng)
        return image, mask

    def get_batch(self, indices, rngs=None):
        rngs = [None] * len(indices) if rngs is None else rngs
        return stack_pairs([self.get(int(i), r) for i, r in zip(indices, rngs, strict=True)],
                           type(self).__name__)


def stack_pairs(samples, where="dataset"):
    """Stack (image CHW, mask HW) pairs into ``(x float32 (N, C, H, W), y int64 (N, H, W))``."""
    if not len(samples):
        raise InputError(f"{where}: cannot make a batch of no samples")
    first_image, first_mask = (np.shape(a) for a in samples[0])
    x = np.empty((len(samples),) + first_image, dtype=np.float32)
    y = np.empty((len(samples),) + first_mask, dtype=np.int64)
    for k, (image, mask) in enumerate(samples):
        mask = np.asarray(mask)
        if np.shape(image) != first_image or mask.shape != first_mask:
            raise InputError(f"{where}: sample {k} of the batch has image {np.shape(image)} and "
                             f"mask {mask.shape}, the first has {first_image} and {first_mask}; "
                             f"give the dataset a size (or a cropping transform) so they batch")
        if len(first_mask) != 2 or first_image[-2:] != first_mask:
            raise InputError(f"{where}: a mask must be (H, W) with the image's (C, H, W) size, got "
                             f"image {first_image} and mask {first_mask}")
        if mask.dtype.kind not in "iu":
            raise InputError(f"{where}: masks must hold integer classes, got {mask.dtype}")
        x[k] = image
        y[k] = mask
    return x, y


class _Wrapped(MaskDataset):
    def __init__(self, samples, transform=None):
        self.samples = samples
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        image, mask = self.samples[index]
        return np.asarray(image, dtype=np.float32), np.asarray(mask)


def as_mask_dataset(samples, transform=None):
    """``samples`` (any sequence of (image, mask) pairs) as a :class:`MaskDataset` (itself if it
    already is one and no transform is given), so :class:`minicnn.data.DataLoader` can batch it."""
    if transform is None and (isinstance(samples, MaskDataset) or (
            isinstance(samples, Subset) and isinstance(samples.dataset, MaskDataset))):
        return samples
    return _Wrapped(samples, transform)


class RandomHorizontalFlip:
    """Joint transform: mirror image and mask left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = float(p)

    def __call__(self, image, mask, rng):
        if rng.random() < self.p:
            return np.ascontiguousarray(image[..., ::-1]), np.ascontiguousarray(mask[..., ::-1])
        return image, mask


# -- the generated dataset ------------------------------------------------------------------------

# Per class (index into SHAPE_CLASSES): polygons in unit coordinates with their fill (255 paints
# the shape, 0 cuts a hole), drawn in order.
_TEMPLATES = {
    1: [(ngon(48), 255)],                                  # circle
    2: [(rect(0.75, 0.75), 255)],                          # square
    3: [(ngon(3), 255)],                                   # triangle
    4: [(star(inner=0.45), 255)],                          # star
    5: [(rect(1.0, 0.3), 255), (rect(0.3, 1.0), 255)],     # cross
    6: [(ngon(48), 255), (ngon(48, 0.5), 0)],              # ring
}


def _texture(rng, size):
    """A (3, size, size) float32 background in [0, 1]: smooth noise, stripes or a gradient."""
    c1, c2 = rng.uniform(0.0, 1.0, (2, 3, 1, 1))
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    if kind == 0:      # smooth noise: a coarse random grid, bilinearly enlarged
        cells = int(rng.integers(3, 9))
        coarse = rng.uniform(0.0, 1.0, (cells, cells)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), np.float64)
    elif kind == 1:    # stripes at a random angle and frequency
        theta = rng.uniform(0, math.pi)
        freq = rng.uniform(2.0, 8.0)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (xx * math.cos(theta) + yy * math.sin(theta))
                               + rng.uniform(0, 2 * math.pi))
    else:              # a linear gradient
        theta = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(theta) + yy * math.sin(theta)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    return c1 + (c2 - c1) * t[None], (c1.reshape(3), c2.reshape(3))


def _shape_colour(rng, background, contrast):
    """A colour at least ``contrast`` away (max over channels) from both background colours and
    their mean, so a shape never vanishes into its background."""
    refs = list(background) + [(background[0] + background[1]) / 2]
    colour = rng.uniform(0.0, 1.0, 3)
    for _ in range(64):
        if all(np.abs(colour - r).max() >= contrast for r in refs):
            break
        colour = rng.uniform(0.0, 1.0, 3)
    return colour


def render_sample(rng, size, num_classes, max_shapes=3, min_scale=0.12, max_scale=0.24,
                  noise=0.03, contrast=0.3, ignore_border=0):
    """One ``(image uint8 (3, size, size), mask uint8 (size, size))`` drawn from ``rng``."""
    background, colours = _texture(rng, size)
    image = background.astype(np.float64)
    mask = np.zeros((size, size), dtype=np.uint8)
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    centre = _SUPERSAMPLE // 2
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        cls = int(rng.integers(1, num_classes))
        radius = rng.uniform(min_scale, max_scale) * size
        stretch = radius * rng.uniform(0.85, 1.0, 2)
        angle = rng.uniform(0, 2 * math.pi)
        cx, cy = rng.uniform(0.6 * radius, size - 0.6 * radius, 2)   # mostly inside the image
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        draw.rectangle((0, 0, big, big), fill=0)
        for poly, fill in _TEMPLATES[cls]:
            pts = (poly * stretch) @ rot.T + (cx, cy)
            draw.polygon((pts * _SUPERSAMPLE).reshape(-1).tolist(), fill=fill)
        cover = np.asarray(canvas)
        alpha = np.asarray(canvas.reduce(_SUPERSAMPLE), np.float64) / 255.0
        colour = _shape_colour(rng, colours, contrast)[:, None, None]
        image = image * (1.0 - alpha) + colour * alpha
        mask[cover[centre::_SUPERSAMPLE, centre::_SUPERSAMPLE] >= 128] = cls   # pixel centres
    if noise:
        image = image + noise * rng.standard_normal(image.shape)
    if ignore_border:
        labels = Image.fromarray(mask)
        width = 2 * int(ignore_border) - 1
        high = np.asarray(labels.filter(ImageFilter.MaxFilter(width + 2)))
        low = np.asarray(labels.filter(ImageFilter.MinFilter(width + 2)))
        mask = np.where(high != low, np.uint8(IGNORE_INDEX), mask)
    return np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8), mask


def generate(n, size, num_classes, seed, **options):
    """``(images uint8 (n, 3, size, size), masks uint8 (n, size, size))``; sample ``i`` is drawn
    from its own generator seeded with (seed, i), so it does not depend on ``n``."""
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        rng = np.random.default_rng((0x5E65, int(seed), i))
        images[i], masks[i] = render_sample(rng, size, num_classes, **options)
    return images, masks


class SegShapes(MaskDataset):
    """Generated semantic segmentation: 1 to ``max_shapes`` filled shapes on a textured background.

    Classes (the first ``num_classes`` of :data:`SHAPE_CLASSES`): 0 background, 1 circle,
    2 square, 3 triangle, 4 star, 5 cross, 6 ring. Each shape has a random class, size (radius
    ``min_scale`` to ``max_scale`` of the image side), slight stretch, any rotation, and a flat
    colour kept at least ``contrast`` away from the background's colours; shapes may overlap, the
    later one occluding the earlier (the mask shows the class on top). Backgrounds are smooth
    noise, stripes or gradients between two random colours; Gaussian pixel noise (``noise``) is
    added. Edges are antialiased in the image (4x supersampling); the mask gives each pixel the
    class at its centre. ``ignore_border=k > 0`` marks a band of about 2k pixels along every
    boundary between classes with 255, as VOC's masks do.

    Samples are ``(image (3, size, size) float32 in [0, 1], mask (size, size) int64)``; sample
    ``i`` depends only on ``(seed, i)`` and the options (bit-identical on every run, whatever
    ``n``). ``transform(image, mask, rng)`` is a joint transform (see :class:`MaskDataset`).
    """

    classes = SHAPE_CLASSES

    def __init__(self, n=1000, size=64, num_classes=4, seed=0, transform=None, max_shapes=3,
                 min_scale=0.12, max_scale=0.24, noise=0.03, contrast=0.3, ignore_border=0):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"SegShapes: n must be a positive int, got {n!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"SegShapes: size must be an int >= 8, got {size!r}")
        if isinstance(num_classes, bool) or num_classes not in range(2, len(SHAPE_CLASSES) + 1):
            raise ValueError(f"SegShapes: num_classes must be an int in 2..{len(SHAPE_CLASSES)} "
                             f"(background + shapes), got {num_classes!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"SegShapes: seed must be a non-negative int, got {seed!r}")
        if not (isinstance(max_shapes, (int, np.integer)) and max_shapes >= 1):
            raise ValueError(f"SegShapes: max_shapes must be an int >= 1, got {max_shapes!r}")
        if not 0 < float(min_scale) <= float(max_scale) <= 0.5:
            raise ValueError(f"SegShapes: need 0 < min_scale <= max_scale <= 0.5, got "
                             f"{min_scale!r}, {max_scale!r}")
        if not 0 <= float(noise) <= 1 or not 0 <= float(contrast) <= 0.5:
            raise ValueError(f"SegShapes: noise must be in [0, 1] and contrast in [0, 0.5], got "
                             f"{noise!r}, {contrast!r}")
        if not (isinstance(ignore_border, (int, np.integer)) and ignore_border >= 0):
            raise ValueError(f"SegShapes: ignore_border must be an int >= 0, got "
                             f"{ignore_border!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"SegShapes: transform must be callable(image, mask, rng), got "
                            f"{transform!r}")
        options = dict(max_shapes=int(max_shapes), min_scale=float(min_scale),
                       max_scale=float(max_scale), noise=float(noise), contrast=float(contrast),
                       ignore_border=int(ignore_border))
        key = (int(n), int(size), int(num_classes), int(seed), tuple(sorted(options.items())))
        if key in _CACHE:
            _CACHE.move_to_end(key)
            images, masks = _CACHE[key]
        else:
            images, masks = generate(int(n), int(size), int(num_classes), int(seed), **options)
            images.flags.writeable = False
            masks.flags.writeable = False
            _CACHE[key] = (images, masks)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        self.images, self.masks = images, masks
        self.classes = SHAPE_CLASSES[:num_classes]
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def load(self, index):
        return (self.images[index].astype(np.float32) / np.float32(255),
                self.masks[index].astype(np.int64))

    def get_batch(self, indices, rngs=None):
        if self.transform is not None:
            return super().get_batch(indices, rngs)
        indices = np.asarray(indices, dtype=np.int64)
        x = self.images[indices].astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(x), self.masks[indices].astype(np.int64)

    def arrays(self):
        """Every sample at once: ``(x float32 (n, 3, H, W), y int64 (n, H, W))``."""
        return self.get_batch(np.arange(len(self)))

    def __repr__(self):
        size = self.images.shape[-1]
        return (f"SegShapes({len(self)} samples, 3x{size}x{size}, {self.num_classes} classes, "
                f"seed={self.seed})")
