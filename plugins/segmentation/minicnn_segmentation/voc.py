"""Pascal VOC segmentation: ``JPEGImages/*.jpg`` + ``SegmentationClass/*.png`` +
``ImageSets/Segmentation/{split}.txt``.

VOC's masks are palette ("P") PNGs whose pixel *indices* are the class labels (0 background,
1 aeroplane ... 20 tvmonitor, 255 the "void" border around objects, ignored in training and
evaluation). They are read as indices, never converted to RGB (that would give palette colours,
not labels). Images are read with :func:`minicnn.data.load_image` (decompression bombs refused,
truncated files reported).
"""

import os
from pathlib import Path

import numpy as np
from minicnn.data import DataFormatError, DatasetNotFoundError, load_image
from PIL import Image

from .datasets import IGNORE_INDEX, MaskDataset

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]

MAX_MASK_PIXELS = 89_478_485   # as minicnn.data.images.MAX_IMAGE_PIXELS
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
                MemoryError, Image.DecompressionBombError)


def load_mask(path, num_classes=None, ignore_index=IGNORE_INDEX):
    """An (H, W) int64 mask of class indices from a palette ("P") or gray ("L") PNG.

    The stored indices are the labels (no palette lookup). With ``num_classes``, any value other
    than ``ignore_index`` outside ``[0, num_classes)`` is a :class:`minicnn.DataFormatError`; so is
    a colour (RGB) mask, a truncated file, or a file that is not an image. Each names the file.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise DatasetNotFoundError(f"{name}: mask file not found")
    try:
        with Image.open(name) as image:
            width, height = image.size
            if width * height > MAX_MASK_PIXELS:
                raise DataFormatError(f"{name}: refused: its header claims {width}x{height} "
                                      f"pixels, more than {MAX_MASK_PIXELS}")
            image.load()
            mode = image.mode
            if mode not in ("P", "L"):
                raise DataFormatError(
                    f"{name}: a segmentation mask must be a palette ('P') or gray ('L') PNG whose "
                    f"pixel values are the class indices, got mode {mode!r}; an RGB rendering of "
                    f"the colours cannot be read as labels")
            mask = np.array(image, dtype=np.int64)
    except DataFormatError:
        raise
    except _READ_ERRORS as exc:
        raise DataFormatError(f"{name}: unreadable or corrupt mask ({exc})") from exc
    if num_classes is not None:
        bad = (mask != ignore_index) & ((mask < 0) | (mask >= num_classes))
        if bad.any():
            values = sorted(set(np.unique(mask[bad]).tolist()))
            raise DataFormatError(f"{name}: mask values {values[:10]} are neither class indices "
                                  f"in [0, {num_classes}) nor the ignore index {ignore_index}")
    return mask


def _resize_pair(image, mask, size):
    """Image bilinear (antialiased), mask nearest (labels must not blend) to (height, width)."""
    height, width = size
    out = np.empty((image.shape[0], height, width), dtype=np.float32)
    for c in range(image.shape[0]):
        plane = Image.fromarray(np.ascontiguousarray(image[c], dtype=np.float32))
        out[c] = np.asarray(plane.resize((width, height), Image.BILINEAR))
    labels = Image.fromarray(mask.astype(np.uint8))
    return out, np.asarray(labels.resize((width, height), Image.NEAREST)).astype(np.int64)


class VOCSegmentation(MaskDataset):
    """Pascal VOC (2007-2012) semantic segmentation from the devkit's folders.

    :param root: the ``VOC2012`` folder (holding ``JPEGImages``, ``SegmentationClass`` and
        ``ImageSets/Segmentation``), or a folder holding ``VOCdevkit/VOC2012``.
    :param split: ``"train"``, ``"val"``, ``"trainval"``... (the ``{split}.txt`` list of ids).
    :param size: None (native sizes, which differ, so batch size 1) or an int / (height, width)
        to resize every sample to: image bilinear, mask nearest.
    :param transform: joint ``transform(image, mask, rng) -> (image, mask)``.
    :param num_classes: labels must be below it (or 255); 21 for VOC.

    Samples are ``(image (3, H, W) float32 in [0, 1], mask (H, W) int64)``, read lazily. Missing
    files are one :class:`minicnn.DatasetNotFoundError` listing them (checked at construction);
    a corrupt image or mask is a :class:`minicnn.DataFormatError` naming the file when read.
    """

    classes = VOC_CLASSES

    def __init__(self, root, split="train", size=None, transform=None, num_classes=21,
                 mask_dir="SegmentationClass"):
        root = Path(root)
        if (root / "VOCdevkit" / "VOC2012").is_dir() and not (root / "JPEGImages").is_dir():
            root = root / "VOCdevkit" / "VOC2012"
        if not root.is_dir():
            raise DatasetNotFoundError(f"VOCSegmentation: {root} is not a directory")
        if transform is not None and not callable(transform):
            raise TypeError(f"VOCSegmentation: transform must be callable(image, mask, rng), got "
                            f"{transform!r}")
        if size is not None:
            size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"VOCSegmentation: size must be a positive int or (height, "
                                 f"width), got {size!r}")
        listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise DatasetNotFoundError(f"VOCSegmentation: the split file {listing} is missing "
                                       f"(split {split!r})")
        try:
            ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{listing}: unreadable split file ({exc})") from exc
        if not ids:
            raise DataFormatError(f"{listing}: the split file lists no image ids")
        for image_id in ids:
            if "/" in image_id or "\\" in image_id or image_id.startswith("."):
                raise DataFormatError(f"{listing}: {image_id!r} is not a plain image id")
        self.images = [root / "JPEGImages" / f"{i}.jpg" for i in ids]
        self.masks = [root / mask_dir / f"{i}.png" for i in ids]
        missing = [str(p) for pair in zip(self.images, self.masks, strict=True) for p in pair
                   if not p.is_file()]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                               if len(missing) > 10 else "")
            raise DatasetNotFoundError(f"VOCSegmentation ({split}): {len(missing)} file(s) listed "
                                       f"in {listing} are missing: {shown}")
        self.root, self.split, self.ids = root, split, ids
        self.size = size
        self.transform = transform
        self.num_classes = int(num_classes)
        self.classes = VOC_CLASSES if num_classes == 21 else [str(i) for i in range(num_classes)]

    def __len__(self):
        return len(self.ids)

    def load(self, index):
        image = load_image(self.images[index], mode="RGB")
        mask = load_mask(self.masks[index], self.num_classes)
        if mask.shape != image.shape[1:]:
            raise DataFormatError(f"{self.masks[index]}: mask is {mask.shape[1]}x{mask.shape[0]} "
                                  f"but its image {self.images[index]} is "
                                  f"{image.shape[2]}x{image.shape[1]}")
        if self.size is not None:
            image, mask = _resize_pair(image, mask, self.size)
        return image, mask

    def __repr__(self):
        return f"VOCSegmentation({len(self)} samples, split={self.split!r}, root={self.root})"

