"""Detection datasets: samples are ``(image CHW float32 in [0, 1], target)`` with ``target`` a dict
``{"boxes": float32 (M, 4) (x1, y1, x2, y2) in pixels, "labels": int64 (M,) in 1..K}`` (0 is the
background, as torchvision; ``"difficult"``, bool (M,), where the source has it).

:class:`DetectionDataset` subclasses batch through minicnn's own :class:`minicnn.data.DataLoader`:
its ``get_batch`` returns ``(x float32 (N, C, H, W), [target, ...])``. Its ``transform`` is joint,
``transform(image, target, rng) -> (image, target)`` (:class:`RandomHorizontalFlip` moves the
boxes with the image).

:class:`DetShapes` is generated (no download): filled circles, squares, triangles... on textured
backgrounds, each with its tight box. :class:`DetDigits` places MNIST digits from
``../shared/data/mnist`` (or any folder with the IDX files) on such backgrounds.
"""

import gzip
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
from minicnn import DatasetNotFoundError, InputError
from minicnn.data import Dataset
from minicnn.data.polygons import ngon, rect, star
from PIL import Image, ImageDraw

SHAPE_CLASSES = ["__background__", "circle", "square", "triangle", "star", "cross", "ring"]
DIGIT_CLASSES = ["__background__"] + [str(d) for d in range(10)]

_SUPERSAMPLE = 4
_CACHE = OrderedDict()
_CACHE_SIZE = 6


def empty_target():
    return {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}


def check_target(target, where="target"):
    """``target`` with ``boxes`` float32 (M, 4) and ``labels`` int64 (M,); ``InputError`` if the
    shapes disagree, a box is not finite or has ``x2 <= x1`` or ``y2 <= y1``, or a label < 1."""
    boxes = np.asarray(target.get("boxes", np.zeros((0, 4))), np.float32).reshape(-1, 4)
    labels = np.asarray(target.get("labels", np.zeros(0)), np.int64).reshape(-1)
    if len(boxes) != len(labels):
        raise InputError(f"{where}: {len(boxes)} boxes but {len(labels)} labels")
    if not np.isfinite(boxes).all() or (boxes[:, 2] <= boxes[:, 0]).any() \
            or (boxes[:, 3] <= boxes[:, 1]).any():
        raise InputError(f"{where}: boxes must be finite with x2 > x1 and y2 > y1 (zero-area boxes "
                         f"cannot be learned); got {boxes.tolist()}")
    if (labels < 1).any():
        raise InputError(f"{where}: labels must be >= 1 (0 is the background), got "
                         f"{labels.tolist()}")
    out = dict(target)
    out["boxes"], out["labels"] = boxes, labels
    return out


class DetectionDataset(Dataset):
    """Base class of detection datasets; subclasses implement ``__len__`` and ``load(index) ->
    (image, target)``."""

    classes = None     # names, index 0 the background

    def get(self, index, rng=None):
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range for {n} samples")
        image, target = self.load(index)
        if self.transform is not None:
            if rng is None:
                rng = np.random.default_rng((0xDE7, index))
            image, target = self.transform(image, target, rng)
        return image, target

    def __getitem__(self, index):
        return self.get(index)

    def get_batch(self, indices, rngs=None):
        rngs = [None] * len(indices) if rngs is None else rngs
        return stack_detection([self.get(int(i), r) for i, r in zip(indices, rngs, strict=True)],
                               type(self).__name__)


def stack_detection(samples, where="dataset"):
    """``(x float32 (N, C, H, W), [target, ...])`` from (image, target) samples of one size."""
    if not len(samples):
        raise InputError(f"{where}: cannot make a batch of no samples")
    first = np.shape(samples[0][0])
    x = np.empty((len(samples),) + first, np.float32)
    targets = []
    for k, (image, target) in enumerate(samples):
        if np.shape(image) != first:
            raise InputError(f"{where}: sample {k} has image shape {np.shape(image)}, the first "
                             f"{first}; resize the images (e.g. VOCDetection(size=...))")
        x[k] = image
        targets.append(target)
    return x, targets


class RandomHorizontalFlip:
    """Joint transform: mirror the image and its boxes left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = float(p)

    def __call__(self, image, target, rng):
        if rng.random() >= self.p:
            return image, target
        width = image.shape[-1]
        boxes = np.asarray(target["boxes"], np.float32).copy()
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        out = dict(target)
        out["boxes"] = boxes
        return np.ascontiguousarray(image[..., ::-1]), out


# -- drawing --------------------------------------------------------------------------------------

_TEMPLATES = {
    1: [(ngon(48), 255)],                                  # circle
    2: [(rect(0.8, 0.8), 255)],                            # square
    3: [(ngon(3), 255)],                                   # triangle
    4: [(star(inner=0.45), 255)],                          # star
    5: [(rect(1.0, 0.3), 255), (rect(0.3, 1.0), 255)],     # cross
    6: [(ngon(48), 255), (ngon(48, 0.5), 0)],              # ring
}


def _texture(rng, size):
    """A (3, size, size) background: smooth noise or a gradient between two random colours."""
    c1, c2 = rng.uniform(0.0, 1.0, (2, 3, 1, 1))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    if rng.random() < 0.5:
        cells = int(rng.integers(3, 8))
        coarse = rng.uniform(0.0, 1.0, (cells, cells)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), np.float64)
    else:
        theta = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(theta) + yy * math.sin(theta)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    return c1 + (c2 - c1) * t[None], [c1.reshape(3), c2.reshape(3), (c1 + c2).reshape(3) / 2]


def _colour(rng, refs, contrast):
    colour = rng.uniform(0.0, 1.0, 3)
    for _ in range(64):
        if all(np.abs(colour - r).max() >= contrast for r in refs):
            break
        colour = rng.uniform(0.0, 1.0, 3)
    return colour


def _place(rng, size, radius, boxes, max_iou):
    """A centre keeping the shape inside the image whose box overlaps earlier boxes by at most
    ``max_iou``; None after 50 tries."""
    for _ in range(50):
        cx, cy = rng.uniform(radius + 0.5, size - radius - 0.5, 2)
        box = np.array([cx - radius, cy - radius, cx + radius, cy + radius])
        if not boxes or _max_iou(box, boxes) <= max_iou:
            return cx, cy
    return None


def _max_iou(box, boxes):
    b = np.asarray(boxes)
    w = np.clip(np.minimum(box[2], b[:, 2]) - np.maximum(box[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], b[:, 3]) - np.maximum(box[1], b[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float((inter / (area + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)).max())


def _tight_box(cover):
    """Continuous box of the covered (>= half) supersampled pixels, in image pixels."""
    rows = np.flatnonzero((cover >= 128).any(axis=1))
    cols = np.flatnonzero((cover >= 128).any(axis=0))
    s = _SUPERSAMPLE
    return [cols[0] / s, rows[0] / s, (cols[-1] + 1) / s, (rows[-1] + 1) / s]


def render_scene(rng, size, objects, noise=0.03, contrast=0.35, max_iou=0.1):
    """Draw ``objects`` (a list of ``(label, stamp(draw, cx, cy, radius, scale))`` with radii)
    on a textured background: ``(image uint8 (3, size, size), boxes (M, 4), labels (M,))``."""
    background, refs = _texture(rng, size)
    image = background
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    boxes, labels, placed = [], [], []
    for label, radius, stamp in objects:
        centre = _place(rng, size, radius, placed, max_iou)
        if centre is None:
            continue
        draw.rectangle((0, 0, big, big), fill=0)
        stamp(canvas, draw, centre[0], centre[1], radius)
        cover = np.asarray(canvas)
        if not (cover >= 128).any():
            continue
        alpha = np.asarray(canvas.reduce(_SUPERSAMPLE), np.float64) / 255.0
        colour = _colour(rng, refs, contrast)[:, None, None]
        image = image * (1.0 - alpha) + colour * alpha
        box = _tight_box(cover)
        boxes.append(box)
        labels.append(label)
        placed.append([centre[0] - radius, centre[1] - radius, centre[0] + radius,
                       centre[1] + radius])
    if noise:
        image = image + noise * rng.standard_normal(image.shape)
    image = np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return image, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64)


def _shape_stamp(label, stretch, angle):
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    def stamp(canvas, draw, cx, cy, radius):
        for poly, fill in _TEMPLATES[label]:
            pts = (poly * radius * stretch) @ rot.T + (cx, cy)
            draw.polygon((pts * _SUPERSAMPLE).reshape(-1).tolist(), fill=fill)
    return stamp


def shapes_scene(rng, size, num_classes, max_objects, min_size, max_size, **options):
    count = int(rng.integers(1, max_objects + 1))
    objects = []
    for _ in range(count):
        label = int(rng.integers(1, num_classes + 1))
        radius = rng.uniform(min_size, max_size) / 2
        objects.append((label, radius, _shape_stamp(label, rng.uniform(0.85, 1.0, 2),
                                                    rng.uniform(-0.3, 0.3))))
    return render_scene(rng, size, objects, **options)


def _digit_stamp(digit):
    def stamp(canvas, draw, cx, cy, radius):
        side = max(2, int(round(2 * radius * _SUPERSAMPLE)))
        glyph = Image.fromarray(digit).resize((side, side), Image.BILINEAR)
        canvas.paste(glyph, (int(round((cx - radius) * _SUPERSAMPLE)),
                             int(round((cy - radius) * _SUPERSAMPLE))))
    return stamp


def digits_scene(rng, size, digits, digit_labels, max_objects, min_size, max_size, **options):
    count = int(rng.integers(1, max_objects + 1))
    objects = []
    for _ in range(count):
        k = int(rng.integers(len(digits)))
        radius = rng.uniform(min_size, max_size) / 2
        objects.append((int(digit_labels[k]) + 1, radius, _digit_stamp(digits[k])))
    return render_scene(rng, size, objects, **options)


def _cached(key, make):
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = _CACHE[key] = make()
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


class _Generated(DetectionDataset):
    def _generate(self, n, seed, scene, key):
        def make():
            images = np.empty((n, 3, self.size, self.size), np.uint8)
            boxes, labels = [], []
            for i in range(n):
                rng = np.random.default_rng((0xDE7EC7, int(seed), i))
                images[i], b, lab = scene(rng)
                boxes.append(b)
                labels.append(lab)
            images.flags.writeable = False
            return images, boxes, labels
        self.images, self.boxes, self.labels = _cached(key, make)

    def __len__(self):
        return len(self.images)

    def load(self, index):
        return (self.images[index].astype(np.float32) / np.float32(255),
                {"boxes": self.boxes[index].copy(), "labels": self.labels[index].copy()})

    def get_batch(self, indices, rngs=None):
        if self.transform is not None:
            return super().get_batch(indices, rngs)
        indices = np.asarray(indices, dtype=np.int64)
        x = np.ascontiguousarray(self.images[indices].astype(np.float32) / np.float32(255))
        return x, [{"boxes": self.boxes[i].copy(), "labels": self.labels[i].copy()}
                   for i in indices]

    def targets(self):
        """Every sample's target (for evaluation)."""
        return [{"boxes": b, "labels": lab} for b, lab in zip(self.boxes, self.labels,
                                                                strict=True)]


def _check_common(name, n, size, max_objects, min_size, max_size, seed, transform):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}: n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"{name}: size must be an int >= 16, got {size!r}")
    if not (isinstance(max_objects, (int, np.integer)) and max_objects >= 1):
        raise ValueError(f"{name}: max_objects must be an int >= 1, got {max_objects!r}")
    if not 2 <= float(min_size) <= float(max_size) <= size - 2:
        raise ValueError(f"{name}: need 2 <= min_size <= max_size <= size - 2, got {min_size!r}, "
                         f"{max_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: seed must be a non-negative int, got {seed!r}")
    if transform is not None and not callable(transform):
        raise TypeError(f"{name}: transform must be callable(image, target, rng)")


class DetShapes(_Generated):
    """Generated detection: 1 to ``max_objects`` shapes per image, each with its tight box.

    Classes (labels 1..``num_classes`` of :data:`SHAPE_CLASSES`): circle, square, triangle, star,
    cross, ring. Each shape has a random size (``min_size`` to ``max_size`` pixels across, about
    the box side), a slight stretch and tilt (up to 17 degrees) and a flat colour kept
    ``contrast`` away from the background's colours (smooth noise or a gradient); shapes lie
    inside the image and their boxes overlap by IoU <= ``max_iou`` (a shape that finds no place
    is left out). The box is the tight box of the antialiased shape's covered pixels (4x
    supersampled), in continuous pixel coordinates. Sample ``i`` depends only on
    ``(seed, i)`` and the options.
    """

    def __init__(self, n=1000, size=64, num_classes=3, seed=0, transform=None, max_objects=3,
                 min_size=12, max_size=28, noise=0.03, contrast=0.35, max_iou=0.1):
        _check_common("DetShapes", n, size, max_objects, min_size, max_size, seed, transform)
        if isinstance(num_classes, bool) or num_classes not in range(1, len(SHAPE_CLASSES)):
            raise ValueError(f"DetShapes: num_classes must be in 1..{len(SHAPE_CLASSES) - 1}, got "
                             f"{num_classes!r}")
        self.size, self.num_classes, self.seed = int(size), int(num_classes), int(seed)
        self.classes = SHAPE_CLASSES[:num_classes + 1]
        self.transform = transform
        options = dict(noise=float(noise), contrast=float(contrast), max_iou=float(max_iou))

        def scene(rng):
            return shapes_scene(rng, self.size, self.num_classes, int(max_objects),
                                float(min_size), float(max_size), **options)
        key = ("shapes", int(n), self.size, self.num_classes, self.seed, int(max_objects),
               float(min_size), float(max_size), tuple(sorted(options.items())))
        self._generate(int(n), self.seed, scene, key)

    def __repr__(self):
        return (f"DetShapes({len(self)} images, 3x{self.size}x{self.size}, {self.num_classes} "
                f"classes, seed={self.seed})")


def default_mnist_dir():
    """``../shared/data/mnist`` next to the checkout (None if absent)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data" / "mnist"
        if candidate.is_dir():
            return candidate
    return None


def _read_idx(path):
    with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    offset = 4 + 4 * len(dims)
    expected = int(np.prod(dims))
    if (magic >> 8) != 0x08 or len(data) - offset != expected:
        raise InputError(f"{path}: not an IDX file of unsigned bytes")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def load_mnist_digits(root=None, split="t10k"):
    """``(images uint8 (n, 28, 28), labels (n,))`` from ``root`` (default
    :func:`default_mnist_dir`); ``DatasetNotFoundError`` naming the files when absent."""
    root = Path(root) if root is not None else default_mnist_dir()
    names = [f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"]
    found = []
    for name in names:
        options = [] if root is None else [root / (name + ".gz"), root / name]
        path = next((p for p in options if p.exists()), None)
        if path is None:
            raise DatasetNotFoundError(f"DetDigits: no MNIST file {name}[.gz] in "
                                       f"{root or '../shared/data/mnist (absent)'}")
        found.append(path)
    return _read_idx(found[0]), _read_idx(found[1])


class DetDigits(_Generated):
    """MNIST digits (labels 1..10 for digits 0..9) placed on textured backgrounds, each with its
    tight box, like :class:`DetShapes`. Digits come from ``root`` (default
    ``../shared/data/mnist``; the 10,000 test digits: ``first_digit``/``num_digits`` select a
    range, so training and validation scenes can use different digits)."""

    def __init__(self, n=1000, size=64, seed=0, transform=None, max_objects=3, min_size=16,
                 max_size=28, root=None, first_digit=0, num_digits=8000, noise=0.03,
                 contrast=0.35, max_iou=0.1):
        _check_common("DetDigits", n, size, max_objects, min_size, max_size, seed, transform)
        digits, labels = load_mnist_digits(root)
        digits = digits[first_digit:first_digit + num_digits]
        labels = labels[first_digit:first_digit + num_digits]
        if not len(digits):
            raise ValueError(f"DetDigits: no digits in range {first_digit}..+{num_digits}")
        self.size, self.num_classes, self.seed = int(size), 10, int(seed)
        self.classes = DIGIT_CLASSES
        self.transform = transform
        options = dict(noise=float(noise), contrast=float(contrast), max_iou=float(max_iou))

        def scene(rng):
            return digits_scene(rng, self.size, digits, labels, int(max_objects),
                                float(min_size), float(max_size), **options)
        key = ("digits", str(root), int(n), self.size, self.seed, int(max_objects),
               float(min_size), float(max_size), int(first_digit), int(num_digits),
               tuple(sorted(options.items())))
        self._generate(int(n), self.seed, scene, key)

    def __repr__(self):
        return f"DetDigits({len(self)} images, 3x{self.size}x{self.size}, seed={self.seed})"
