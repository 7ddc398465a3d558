"""The IDX format (MNIST's) and the MNIST dataset.

An IDX file is a big-endian header, then the array in C order::

    magic: 0x00 0x00 <type> <ndim>    type 0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
    ndim x uint32 dimension sizes                0x0D float32, 0x0E float64
    data

MNIST images have magic 2051 (ubyte, 3 dimensions: N, 28, 28), labels 2049 (ubyte, 1 dimension).
:func:`read_idx` reads raw or gzipped files (recognised by content, not name) and checks the header
against the file length before allocating anything, so a truncated or hostile file is a
:class:`DataFormatError` naming the file, never a huge allocation.
"""

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import ArrayBacked
from .errors import DataFormatError, DatasetNotFoundError

IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DEFLATE_RATIO = 1032   # deflate cannot expand more than this: bounds a gzip file's content
_CHUNK = 1 << 20


def _parse_header(head, name, total_hint):
    """(dtype, shape, header length) from the first bytes of an IDX file."""
    if len(head) < 4:
        raise DataFormatError(f"{name}: too short for an IDX header ({len(head)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", head[:4])
    magic = struct.unpack(">I", head[:4])[0]
    if zero != 0 or code not in IDX_TYPES:
        raise DataFormatError(f"{name}: bad IDX magic number {magic} (0x{magic:08x}); expected "
                              f"0x0000TTDD with a type byte TT in "
                              f"{[hex(c) for c in IDX_TYPES]} (MNIST: 2051 images, 2049 labels)")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise DataFormatError(f"{name}: truncated IDX header: magic {magic} announces {ndim} "
                              f"dimensions ({header_len} header bytes) but the file has "
                              f"{total_hint}")
    shape = struct.unpack(f">{ndim}I", head[4:header_len])
    return IDX_TYPES[code], shape, magic, header_len


def _expected_size(dtype, shape, header_len):
    count = 1
    for d in shape:
        count *= d                       # Python ints: no overflow whatever the header says
    return header_len + count * dtype.itemsize


def _read_gzip(path, name):
    """The decompressed bytes of a gzip file, checked against its IDX header while streaming."""
    compressed = os.path.getsize(path)
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            head += f.read(4 * ndim)
            dtype, shape, magic, header_len = _parse_header(head, name, f"{len(head)} bytes")
            expected = _expected_size(dtype, shape, header_len)
            if expected > compressed * _MAX_DEFLATE_RATIO + 1024:
                raise DataFormatError(
                    f"{name}: IDX header (magic {magic}, shape {shape}) claims {expected} bytes of "
                    f"content, impossible for {compressed} gzip-compressed bytes; truncated or "
                    f"corrupt")
            data = bytearray(head)
            while len(data) <= expected:
                chunk = f.read(min(_CHUNK, expected + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataFormatError(f"{name}: corrupt or truncated gzip stream ({exc})") from exc
    if len(data) != expected:
        what = "trailing data" if len(data) > expected else f"only {len(data)} (truncated)"
        raise DataFormatError(f"{name}: IDX header (magic {magic}, shape {shape}) needs {expected} "
                              f"bytes but the decompressed file has {what}")
    return data, dtype, shape, header_len


def read_idx(path):
    """Read an IDX file (raw or gzipped) into a native-endian numpy array of the header's shape."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {name}")
    with open(path, "rb") as f:
        is_gzip = f.read(2) == _GZIP_MAGIC
    if is_gzip:
        data, dtype, shape, header_len = _read_gzip(path, name)
        array = np.frombuffer(data, dtype=dtype, offset=header_len)
    else:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
            head += f.read(4 * head[3]) if len(head) == 4 else b""
            dtype, shape, magic, header_len = _parse_header(head, name, f"{size} bytes")
            expected = _expected_size(dtype, shape, header_len)
            if size != expected:
                what = "truncated" if size < expected else "trailing data"
                raise DataFormatError(f"{name}: IDX header (magic {magic}, shape {shape}) needs "
                                      f"{expected} bytes but the file has {size} ({what})")
            array = np.fromfile(f, dtype=dtype)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file; gzipped when ``compress`` is True (default: name ends in
    .gz)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of "
                         f"{sorted(str(d) for d in _CODES)}")
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX cannot store shape {array.shape}")
    header = struct.pack(f">HBB{array.ndim}I", 0, _CODES[native], array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[_CODES[native]]).tobytes()
    compress = str(path).endswith(".gz") if compress is None else compress
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root, stem):
    for candidate in (root / stem, root / (stem + ".gz"), root / stem.replace("-idx", ".idx"),
                      root / (stem.replace("-idx", ".idx") + ".gz")):
        if candidate.is_file():
            return candidate
    return None


class MNIST(ArrayBacked):
    """MNIST from the original IDX files in ``root`` (raw or ``.gz``; also ``root/MNIST/raw``).

    ``split`` "train" reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, "test" the
    ``t10k-`` pair (``train=True/False`` is accepted too). Samples are ``(1, 28, 28)`` float32 in
    [0, 1] and labels 0..9. ``images`` (uint8 N x 1 x 28 x 28) and ``labels`` (int64) hold
    everything in memory.
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, root, split="train", transform=None, train=None):
        if train is not None:
            split = "train" if train else "test"
        if split not in MNIST_FILES:
            raise ValueError(f"MNIST: split must be 'train' or 'test', got {split!r}")
        root = Path(root)
        folders = [root, root / "MNIST" / "raw", root / "mnist"]
        paths = None
        for folder in folders:
            found = [_find(folder, stem) for stem in MNIST_FILES[split]]
            if all(found):
                paths = found
                break
        if paths is None:
            missing = [s for s in MNIST_FILES[split] if _find(root, s) is None]
            raise DatasetNotFoundError(
                f"MNIST ({split}): missing {', '.join(s + '[.gz]' for s in missing)} in {root} "
                f"(also looked in {root / 'MNIST' / 'raw'} and {root / 'mnist'})")
        images_path, labels_path = paths
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) \
                or not len(images):
            raise DataFormatError(f"{images_path}: MNIST images must be ubyte with 3 dimensions, "
                                  f"N x 28 x 28 with N > 0 (magic 2051), got {images.dtype} "
                                  f"shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DataFormatError(f"{labels_path}: MNIST labels must be ubyte with 1 dimension "
                                  f"(magic 2049), got {labels.dtype} shape {labels.shape}")
        if len(images) != len(labels):
            raise DataFormatError(f"{images_path} has {len(images)} images but {labels_path} has "
                                  f"{len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise DataFormatError(f"{labels_path}: label {int(labels.max())} is outside 0..9")
        super().__init__(images[:, None], labels, transform)
        self.split = split
        self.root = root

    def __repr__(self):
        return f"MNIST({str(self.root)!r}, split={self.split!r}, {len(self)} samples)"
