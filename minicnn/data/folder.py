"""ImageFolder: one sub-folder per class, images read with :func:`minicnn.data.load_image`."""

import os
from pathlib import Path

from .dataset import Dataset
from .errors import DataFormatError, DatasetNotFoundError
from .images import check_max_pixels, check_size, load_image

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".pnm")


class ImageFolder(Dataset):
    """Images in ``root/<class name>/<file>``; class indices follow the sorted class names.

    Files with one of :data:`IMG_EXTENSIONS` (any case) are taken, in sorted order, sub-folders of a
    class included (a class folder may be a symbolic link; links to folders inside it are not
    followed, so a link cycle cannot hang the scan); hidden files and folders (starting with ".")
    are skipped. Images are read lazily with :func:`minicnn.data.load_image` (``mode`` "L", "RGB"
    or "RGBA"; transparency composited on white for "L" and "RGB"; ``size`` an int or (height,
    width) to resize every image to, so that they batch).

    Attributes: ``classes`` (sorted names), ``class_to_idx``, ``samples`` (list of (path, class
    index)), ``targets``.
    """

    def __init__(self, root, transform=None, size=None, mode="RGB", extensions=IMG_EXTENSIONS,
                 max_pixels=None):
        root = Path(root)
        if not root.is_dir():
            raise DatasetNotFoundError(f"ImageFolder: {root} is not a directory")
        if size is not None:
            size = check_size(size, "ImageFolder: size")
        if mode not in ("L", "RGB", "RGBA"):
            raise ValueError(f"ImageFolder: mode must be 'L', 'RGB' or 'RGBA', got {mode!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"ImageFolder: transform must be callable(image, rng), got "
                            f"{transform!r}")
        if isinstance(extensions, str):      # one extension, not its characters
            extensions = (extensions,)
        try:
            extensions = tuple(e.lower() for e in extensions)
        except (TypeError, AttributeError):
            raise TypeError(f"ImageFolder: extensions must be a string or a sequence of strings "
                            f"such as ('.png', '.jpg'), got {extensions!r:.60}") from None
        check_max_pixels(max_pixels, "ImageFolder")
        self.root = root
        self.transform = transform
        self.size = size
        self.mode = mode
        self.max_pixels = max_pixels
        self.classes = sorted(e.name for e in os.scandir(root)
                              if e.is_dir() and not e.name.startswith("."))
        if not self.classes:
            raise DataFormatError(f"ImageFolder: {root} has no class sub-folders")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        empty = []
        for name in self.classes:
            files = _image_files(root / name, extensions)
            if not files:
                empty.append(name)
            self.samples.extend((path, self.class_to_idx[name]) for path in files)
        if empty:
            raise DataFormatError(f"ImageFolder: no image files ({', '.join(extensions)}) in the "
                                  f"class folder(s) {empty} under {root}")
        self.targets = [label for _, label in self.samples]

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        path, label = self.samples[index]
        return load_image(path, self.mode, self.size, self.max_pixels), label

    def __repr__(self):
        return (f"ImageFolder({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes, "
                f"mode={self.mode!r}, size={self.size})")


def _image_files(folder, extensions):
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):    # links inside: not followed
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(extensions):
                found.append(Path(dirpath) / name)
    return sorted(found)
