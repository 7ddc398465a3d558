"""Augmentations and preprocessing on CHW float32 images; every transform is ``t(image, rng)``.

``rng`` is a ``numpy.random.Generator``: the loader passes one derived from (seed, epoch, index), so
a sample's augmentation is reproducible and independent of batching. Deterministic transforms ignore
it; a random one called with None (by hand, as ``RandomHorizontalFlip()(image)``) draws from a
fresh unseeded generator, as torchvision draws from the global one. Every transform returns a new
C-contiguous float32 array (the input is never modified), refuses an image that is empty, not
numbers or beyond float32 (:class:`minicnn.InputError` naming the transform), and validates its
arguments at construction (:class:`minicnn.ConfigError` naming the transform).
Definitions follow torchvision; geometric transforms use pixel-centre coordinates with the rotation
centre at ((W - 1) / 2, (H - 1) / 2), positive angles counter-clockwise, so a 90 degree rotation of
a square image is exactly ``np.rot90(image, axes=(1, 2))``.
"""

import math
import numbers

import numpy as np

from ..errors import ConfigError, InputError
from .geometry import crop, rotation_matrix, shift, warp_affine
from .images import LUMA, MAX_IMAGE_PIXELS, check_size, resize_chw

#: Parameters are float32 values when applied: larger ones would turn into inf in the image.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Integer parameters (padding, shifts) must be below this: numpy's integer draws stop near it.
MAX_INT_PARAMETER = 2**31 - 1
#: RandomAffine's smallest scale, Normalize's smallest std: below them the results overflow.
MIN_SCALE = 1e-6
MIN_STD = float(np.finfo(np.float32).tiny)


def _image(image, name, channels=None):
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected an image of numbers (float32, or an integer or bool "
                         f"type), got dtype {image.dtype}")
    if image.ndim != 3:
        raise InputError(f"{name}: expected a CHW image (3 dimensions), got shape {image.shape}")
    if 0 in image.shape:
        raise InputError(f"{name}: expected a non-empty CHW image, got shape {image.shape}")
    if channels is not None and image.shape[0] not in channels:
        raise InputError(f"{name}: expected {' or '.join(map(str, channels))} channels, got "
                         f"{image.shape[0]} (shape {image.shape})")
    with np.errstate(over="ignore"):         # overflow is checked just below, with a message
        single = image.astype(np.float32, copy=False)
    if image.dtype.itemsize > 4 and image.dtype.kind == "f" \
            and (np.isinf(single) != np.isinf(image)).any():
        raise InputError(f"{name}: the image has values beyond float32's range "
                         f"(+-{FLOAT32_MAX:.3g}); transforms work in float32")
    return single


def _generator(rng, name):
    """The generator a random transform draws from: ``rng``, or a fresh unseeded one for None
    (a transform tried by hand; the loader always passes a seeded one)."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"{name}: rng must be a numpy.random.Generator or None, got "
                         f"{type(rng).__name__} {rng!r:.40}")
    return rng


def _number(value, name, what, low=None, high=None):
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    try:
        ok = ok and math.isfinite(value) and abs(value) <= FLOAT32_MAX
    except OverflowError:          # a Python int beyond any float
        ok = False
    if not ok:
        raise ConfigError(f"{name}: {what} must be a finite number within float32's range, got "
                          f"{value!r:.60}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}: {what} must be in [{low}, {high}], got {value!r}")
    return float(value)


def _count(value, name, what):
    """A non-negative int parameter (a padding, a shift)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 0 <= value <= MAX_INT_PARAMETER:
        raise ConfigError(f"{name}: {what} must be an int in [0, {MAX_INT_PARAMETER}], got "
                          f"{value!r:.60}")
    return int(value)


def _output_size(size, name):
    """An output ``size`` (int or (height, width)) as (height, width), within the pixel limit."""
    try:
        height, width = check_size(size)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if height * width > MAX_IMAGE_PIXELS:
        raise ConfigError(f"{name}: size {size!r} is over {MAX_IMAGE_PIXELS} pixels "
                          f"(minicnn.data.images.MAX_IMAGE_PIXELS)")
    return height, width


def _choice(value, name, what, allowed):
    """One of the ``allowed`` strings."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name}: {what} must be {' or '.join(map(repr, allowed))}, got "
                          f"{value!r:.60}")
    return value


def _range(value, name, what, center=None, low=None):
    """A number v as (center - v, center + v) (or (-v, v)), or a (min, max) pair, validated."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = _number(value, name, what, low=0)
        lo, hi = (-v, v) if center is None else (center - v, center + v)
        return (max(lo, low) if low is not None else lo), hi
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {what} must be a non-negative number or a (min, max) pair, got "
                          f"{value!r}") from None
    lo, hi = _number(lo, name, what, low=low), _number(hi, name, what, low=low)
    if lo > hi:
        raise ConfigError(f"{name}: {what} range ({lo}, {hi}) has min > max")
    return lo, hi


def _fill(fill, name):
    return _number(fill, name, "fill")


class Transform:
    """Base class: ``__call__(image, rng)``; ``__repr__`` shows the arguments."""

    def __call__(self, image, rng=None):
        raise NotImplementedError

    def _args(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order, each with the same generator."""

    def __init__(self, transforms):
        try:
            transforms = list(transforms)
        except TypeError:
            raise ConfigError(f"Compose: transforms must be a list of transforms, got "
                              f"{transforms!r:.60}") from None
        for t in transforms:
            if not callable(t):
                raise ConfigError(f"Compose: every transform must be callable(image, rng), got "
                                  f"{t!r}")
        self.transforms = transforms

    def __call__(self, image, rng=None):
        for t in self.transforms:
            image = t(image, rng)
        return image

    def __repr__(self):
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


class Lambda(Transform):
    """A deterministic function ``fn(image) -> image`` as a transform."""

    def __init__(self, fn):
        if not callable(fn):
            raise ConfigError(f"Lambda: fn must be callable, got {fn!r}")
        self.fn = fn

    def __call__(self, image, rng=None):
        out = self.fn(image)
        if not isinstance(out, np.ndarray) or out.dtype.kind not in "biuf" or out.ndim == 0:
            raise InputError(f"Lambda: {getattr(self.fn, '__name__', 'fn')} must return an array "
                             f"of numbers with at least one axis, got {type(out).__name__} "
                             f"{getattr(out, 'dtype', '')}{np.shape(out)}")
        return np.ascontiguousarray(out, dtype=np.float32)


class _RandomFlip(Transform):
    axis = -1

    def __init__(self, p=0.5):
        self.p = _number(p, type(self).__name__, "p", 0, 1)

    def __call__(self, image, rng=None):
        image = _image(image, type(self).__name__)
        if _generator(rng, type(self).__name__).random() < self.p:
            image = np.flip(image, axis=self.axis)
        return np.array(image, dtype=np.float32, order="C")

    def _args(self):
        return {"p": self.p}


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right (the width axis) with probability ``p``."""

    axis = 2


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom (the height axis) with probability ``p``."""

    axis = 1


def _padding(padding, name):
    """torchvision's padding forms: int (all sides), (left/right, top/bottom) or (l, t, r, b)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        values = (int(padding),) * 4
    else:
        try:
            values = tuple(padding)
        except TypeError:
            values = ()
        if len(values) == 2:
            values = (values[0], values[1], values[0], values[1])
        if len(values) != 4 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                       for v in values):
            raise ConfigError(f"{name}: padding must be an int, (left/right, top/bottom) or (left, "
                              f"top, right, bottom) of ints, got {padding!r}")
    return tuple(_count(v, name, "padding") for v in values)


class RandomCrop(Transform):
    """Pad (``padding`` as in torchvision, filled with ``fill``, or ``padding_mode`` "edge",
    "reflect", "symmetric") then cut a random ``size`` (int or (height, width)) window."""

    def __init__(self, size, padding=0, fill=0, padding_mode="constant"):
        name = "RandomCrop"
        self.size = _output_size(size, name)
        self.padding = _padding(padding, name)
        self.fill = _fill(fill, name)
        self.padding_mode = _choice(padding_mode, name, "padding_mode",
                                    ("constant", "edge", "reflect", "symmetric"))

    def __call__(self, image, rng=None):
        image = _image(image, "RandomCrop")
        rng = _generator(rng, "RandomCrop")
        left, top, right, bottom = self.padding
        h, w = self.size
        height, width = image.shape[1] + top + bottom, image.shape[2] + left + right
        if h > height or w > width:
            raise InputError(f"RandomCrop: crop size {self.size} is larger than the padded image "
                             f"{(height, width)}")
        if self.padding_mode != "constant" and any(self.padding):
            if height * width > MAX_IMAGE_PIXELS:     # np.pad would build it whole
                raise InputError(f"RandomCrop: padding {self.padding} makes a {height}x{width} "
                                 f"image, over {MAX_IMAGE_PIXELS} pixels "
                                 f"(minicnn.data.images.MAX_IMAGE_PIXELS)")
            image = np.pad(image, ((0, 0), (top, bottom), (left, right)), mode=self.padding_mode)
            left = top = right = bottom = 0
        i = int(rng.integers(0, height - h + 1))
        j = int(rng.integers(0, width - w + 1))
        return crop(image, i - top, j - left, h, w, self.fill)

    def _args(self):
        return {"size": self.size, "padding": self.padding, "fill": self.fill,
                "padding_mode": self.padding_mode}


class RandomTranslate(Transform):
    """Shift by whole pixels: dx uniform in [-max_dx, max_dx] (positive: right), dy likewise
    (positive: down); uncovered pixels get ``fill``."""

    def __init__(self, max_dx, max_dy, fill=0):
        self.max_dx = _count(max_dx, "RandomTranslate", "max_dx")
        self.max_dy = _count(max_dy, "RandomTranslate", "max_dy")
        self.fill = _fill(fill, "RandomTranslate")

    def __call__(self, image, rng=None):
        image = _image(image, "RandomTranslate")
        rng = _generator(rng, "RandomTranslate")
        dx = int(rng.integers(-self.max_dx, self.max_dx + 1))
        dy = int(rng.integers(-self.max_dy, self.max_dy + 1))
        return shift(image, dx, dy, self.fill)

    def _args(self):
        return {"max_dx": self.max_dx, "max_dy": self.max_dy, "fill": self.fill}


def _interpolation(value, name):
    return _choice(value, name, "interpolation", ("bilinear", "nearest"))


class RandomRotation(Transform):
    """Rotate by an angle uniform in [-degrees, degrees] (or the (min, max) given),
    counter-clockwise for positive angles, about the image centre, bilinear (or nearest); outside
    pixels get ``fill``."""

    def __init__(self, degrees, fill=0, interpolation="bilinear"):
        self.degrees = _range(degrees, "RandomRotation", "degrees")
        self.fill = _fill(fill, "RandomRotation")
        self.interpolation = _interpolation(interpolation, "RandomRotation")

    def __call__(self, image, rng=None):
        image = _image(image, "RandomRotation")
        angle = float(_generator(rng, "RandomRotation").uniform(*self.degrees))
        matrix = rotation_matrix(angle)
        return warp_affine(image, matrix, (0.0, 0.0), self.fill, self.interpolation)

    def _args(self):
        return {"degrees": self.degrees, "fill": self.fill, "interpolation": self.interpolation}


class RandomAffine(Transform):
    """torchvision's RandomAffine without shear: angle uniform in ``degrees`` (number or (min,
    max)), translation by up to ``translate = (a, b)`` times the width/height (rounded to whole
    pixels), scale uniform in ``scale = (min, max)``; bilinear (or nearest), ``fill`` outside."""

    def __init__(self, degrees=0, translate=None, scale=None, fill=0, interpolation="bilinear"):
        name = "RandomAffine"
        self.degrees = _range(degrees, name, "degrees")
        if translate is not None:
            try:
                a, b = translate
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: translate must be a pair of fractions, got "
                                  f"{translate!r}") from None
            translate = (_number(a, name, "translate", 0, 1), _number(b, name, "translate", 0, 1))
        self.translate = translate
        if scale is not None:
            if isinstance(scale, numbers.Real):
                raise ConfigError(f"{name}: scale must be a (min, max) pair, got {scale!r}")
            scale = _range(scale, name, "scale", low=0)
            if scale[0] < MIN_SCALE:        # the inverse map divides by it
                raise ConfigError(f"{name}: scale must be at least {MIN_SCALE}, got {scale!r}")
        self.scale = scale
        self.fill = _fill(fill, name)
        self.interpolation = _interpolation(interpolation, name)

    def __call__(self, image, rng=None):
        image = _image(image, "RandomAffine")
        rng = _generator(rng, "RandomAffine")
        angle = float(rng.uniform(*self.degrees))
        tx = ty = 0.0
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * image.shape[2], self.translate[1] * image.shape[1]
            tx = float(round(rng.uniform(-max_dx, max_dx)))
            ty = float(round(rng.uniform(-max_dy, max_dy)))
        scale = float(rng.uniform(*self.scale)) if self.scale is not None else 1.0
        m = rotation_matrix(angle, scale)
        offset = (-(m[0][0] * tx + m[0][1] * ty), -(m[1][0] * tx + m[1][1] * ty))
        return warp_affine(image, m, offset, self.fill, self.interpolation)

    def _args(self):
        return {"degrees": self.degrees, "translate": self.translate, "scale": self.scale,
                "fill": self.fill, "interpolation": self.interpolation}


_LUMA = tuple(np.float32(w) for w in LUMA)


def grayscale(image):
    """ITU-R 601-2 luma of a 3-channel CHW image, shape (1, H, W); a 1-channel image is returned as
    is."""
    if image.shape[0] == 1:
        return np.array(image, dtype=np.float32)
    return (_LUMA[0] * image[0] + _LUMA[1] * image[1] + _LUMA[2] * image[2])[None]


class Grayscale(Transform):
    """RGB to luma L = 0.299 R + 0.587 G + 0.114 B (PIL's and torchvision's weights), repeated to
    ``num_output_channels`` (1 or 3); a 1-channel input is only repeated."""

    def __init__(self, num_output_channels=1):
        if isinstance(num_output_channels, bool) \
                or not isinstance(num_output_channels, numbers.Integral) \
                or num_output_channels not in (1, 3):
            raise ConfigError(f"Grayscale: num_output_channels must be 1 or 3, got "
                              f"{num_output_channels!r}")
        self.num_output_channels = int(num_output_channels)

    def __call__(self, image, rng=None):
        gray = grayscale(_image(image, "Grayscale", (1, 3)))
        return np.ascontiguousarray(np.repeat(gray, self.num_output_channels, axis=0))

    def _args(self):
        return {"num_output_channels": self.num_output_channels}


def _clip01(x):
    """Clip to [0, 1] in place (two ufunc calls: np.clip's wrapper costs more on small images)."""
    np.maximum(x, 0, out=x)
    return np.minimum(x, 1, out=x)


_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


class ColorJitter(Transform):
    """torchvision's ColorJitter (without hue), on images in [0, 1], results clipped to [0, 1].

    Each of ``brightness``, ``contrast``, ``saturation`` is v >= 0 (factor uniform in
    [max(0, 1 - v), 1 + v]; 0 disables it) or a (min, max) factor range. Brightness multiplies;
    contrast blends with the mean of the grayscale image; saturation blends with the grayscale image
    (a 1-channel image is unchanged). The three are applied in a random order, as torchvision does.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0):
        self.ranges = {}
        for what, value in (("brightness", brightness), ("contrast", contrast),
                            ("saturation", saturation)):
            lo, hi = _range(value, "ColorJitter", what, center=1.0, low=0.0)
            self.ranges[what] = None if (lo, hi) == (1.0, 1.0) else (lo, hi)

    def factors(self, rng):
        """The order (a permutation of brightness 0, contrast 1, saturation 2) and the factors drawn
        for one image (None where disabled)."""
        order = _ORDERS[int(rng.integers(6))]
        u = rng.random(3)
        factors = [None if r is None else r[0] + (r[1] - r[0]) * float(u[k])
                   for k, r in enumerate(self.ranges.values())]
        return order, factors

    def __call__(self, image, rng=None):
        image = np.array(_image(image, "ColorJitter", (1, 3)), dtype=np.float32, order="C")
        order, factors = self.factors(_generator(rng, "ColorJitter"))
        for k in order:
            f = factors[k]
            if f is None or (k == 2 and image.shape[0] == 1):
                continue
            f = np.float32(f)
            if k == 0:                                   # brightness: blend with black
                image *= f
            elif k == 1:                                 # contrast: blend with the mean gray
                mean = np.add.reduce(grayscale(image), axis=None) / np.float32(image[0].size)
                image *= f
                image += (np.float32(1) - f) * np.float32(mean)
            else:                                        # saturation: blend with the gray image
                gray = grayscale(image)
                image *= f
                image += (np.float32(1) - f) * gray
            _clip01(image)
        return image

    def _args(self):
        return dict(self.ranges)


def _values(value, what):
    """Normalize's mean or std: a number or a non-empty 1-D sequence of numbers, in float32."""
    values = np.atleast_1d(np.asarray(value, dtype=object))
    if values.ndim != 1 or not len(values):
        raise ConfigError(f"Normalize: {what} must be a number or a non-empty 1-D sequence of "
                          f"numbers, got {value!r:.60}")
    return np.array([_number(v, "Normalize", what) for v in values], dtype=np.float32)


class Normalize(Transform):
    """``(image - mean[c]) / std[c]`` per channel; ``mean`` and ``std`` numbers or one value per
    channel."""

    def __init__(self, mean, std):
        self.mean, self.std = _values(mean, "mean"), _values(std, "std")
        if (self.std < MIN_STD).any():      # a smaller one divides to inf
            raise ConfigError(f"Normalize: std must be at least {MIN_STD:.3g} (float32's "
                              f"smallest normal number), got {std!r:.60}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ConfigError(f"Normalize: mean ({len(self.mean)} values) and std "
                              f"({len(self.std)}) must have the same length")

    def __call__(self, image, rng=None):
        image = _image(image, "Normalize")
        n = max(len(self.mean), len(self.std))
        if n != 1 and image.shape[0] != n:
            raise InputError(f"Normalize: {n} means/stds for an image of {image.shape[0]} channels")
        return np.ascontiguousarray((image - self.mean[:, None, None]) / self.std[:, None, None])

    def _args(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


class Resize(Transform):
    """Resize with Pillow's antialiased bilinear filter: ``size`` (height, width) exactly, or an
    int: the shorter side becomes ``size`` and the aspect ratio is kept (torchvision's rule)."""

    def __init__(self, size):
        _output_size(size, "Resize")
        self.size = size if isinstance(size, numbers.Integral) else tuple(int(v) for v in size)

    def __call__(self, image, rng=None):
        image = _image(image, "Resize")
        h, w = image.shape[1:]
        if isinstance(self.size, numbers.Integral):
            short, long = (h, w) if h <= w else (w, h)
            new_long = int(self.size * long / short)
            size = (self.size, new_long) if h <= w else (new_long, self.size)
        else:
            size = self.size
        if size[0] * size[1] > MAX_IMAGE_PIXELS:
            raise InputError(f"Resize: {size[0]}x{size[1]} is over {MAX_IMAGE_PIXELS} pixels "
                             f"(minicnn.data.images.MAX_IMAGE_PIXELS)")
        return resize_chw(image, size)

    def _args(self):
        return {"size": self.size}
