"""CIFAR-10 from its binary batches (``cifar-10-batches-bin``).

Each record is 3073 bytes: one label byte (0..9), then 3072 pixel bytes, the red plane (32x32,
row-major), then green, then blue. Training uses ``data_batch_1.bin`` .. ``data_batch_5.bin``
(10,000 records each), testing ``test_batch.bin``. ``batches.meta.txt`` (one class name per line),
when present, names the classes.
"""

from pathlib import Path

import numpy as np

from .dataset import ArrayBacked
from .errors import DataFormatError, DatasetNotFoundError

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6))
TEST_FILES = ("test_batch.bin",)
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def read_cifar_batch(path):
    """Labels (int64, N) and images (uint8, N x 3 x 32 x 32) of one binary batch file."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or size % RECORD:
        raise DataFormatError(f"{path}: {size} bytes is not a whole number of {RECORD}-byte "
                              f"CIFAR-10 records (1 label byte + 3072 pixel bytes); truncated or "
                              f"not a batch file")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DataFormatError(f"{path}: record {bad} has label {labels[bad]}, outside 0..9")
    return labels, records[:, 1:].reshape(-1, 3, 32, 32)


class CIFAR10(ArrayBacked):
    """CIFAR-10: samples ``(3, 32, 32)`` float32 in [0, 1], labels 0..9, ``classes`` the names.

    ``root`` is the folder holding the ``.bin`` files, or its parent holding
    ``cifar-10-batches-bin``.
    """

    def __init__(self, root, train=True, transform=None):
        root = Path(root)
        names = TRAIN_FILES if train else TEST_FILES
        folder = root
        nested = root / "cifar-10-batches-bin"
        if not all((root / n).is_file() for n in names) and nested.is_dir():
            folder = nested
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise DatasetNotFoundError(f"CIFAR10 ({'train' if train else 'test'}): missing "
                                       f"{', '.join(missing)} in {folder}")
        parts = [read_cifar_batch(folder / n) for n in names]
        labels = np.concatenate([p[0] for p in parts])
        images = np.concatenate([p[1] for p in parts])
        super().__init__(images, labels, transform)
        self.classes = list(CLASSES)
        meta = folder / "batches.meta.txt"
        if meta.is_file():
            found = [line.strip() for line in meta.read_text(errors="replace").splitlines()
                     if line.strip()]
            if len(found) != len(CLASSES) or len(set(found)) != len(found):
                raise DataFormatError(f"{meta}: expected {len(CLASSES)} class names, all "
                                      f"different, found {len(found)} ({len(set(found))} "
                                      f"different)")
            self.classes = found
        self.train = bool(train)
        self.root = folder

    def __repr__(self):
        return f"CIFAR10({str(self.root)!r}, train={self.train}, {len(self)} samples)"
