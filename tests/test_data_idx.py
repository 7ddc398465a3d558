"""IDX reading (raw and gzipped, hostile headers) and the MNIST dataset."""

import gzip
import struct
import tracemalloc

import numpy as np
import pytest

import minicnn
from minicnn.data import MNIST, DataFormatError, DatasetNotFoundError, read_idx, write_idx


def _idx_bytes(array, type_code=0x08):
    """An IDX file written by hand (independent of write_idx)."""
    header = struct.pack(">HBB", 0, type_code, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_data_format_error_is_a_minicnn_value_error():
    assert issubclass(DataFormatError, minicnn.MinicnnError)
    assert issubclass(DataFormatError, ValueError)


@pytest.mark.parametrize("gz", [False, True])
def test_read_hand_written_ubyte_file(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = _idx_bytes(images)
    assert struct.unpack(">I", data[:4])[0] == 2051       # MNIST's image magic
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(data) if gz else data)  # no .gz suffix: found by content
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, images)


def test_label_magic_is_2049(tmp_path):
    labels = np.array([7, 2, 1, 0], dtype=np.uint8)
    path = tmp_path / "labels.idx"
    write_idx(path, labels)
    raw = path.read_bytes()
    assert struct.unpack(">II", raw[:8]) == (2049, 4)
    assert list(raw[8:]) == [7, 2, 1, 0]


@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_read_round_trip(tmp_path, dtype, code, suffix):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 5, 2)) * 100).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, array)
    raw = path.read_bytes()
    if suffix:
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw[:4] == bytes([0, 0, code, 3])
    assert raw == _idx_bytes(array, code)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("head", [b"\x12\x34\x08\x01", b"\x00\x00\x07\x01", b"\x00\x01\x08\x01"])
@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path, head, gz):
    data = head + struct.pack(">I", 2) + b"\x01\x02"
    path = tmp_path / "bad-magic"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match=r"bad-magic.*magic number"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    data = _idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[:1000]
    path = tmp_path / "short.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match=r"short\.idx.*7856 bytes.*truncated"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_header(tmp_path, gz):
    data = b"\x00\x00\x08\x03" + struct.pack(">I", 10)    # announces 3 dims, gives 1
    path = tmp_path / "head.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match=r"head\.idx.*truncated IDX header"):
        read_idx(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.idx"
    path.write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"empty\.idx.*too short"):
        read_idx(path)


def test_trailing_data(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(_idx_bytes(np.zeros(4, dtype=np.uint8)) + b"extra")
    with pytest.raises(DataFormatError, match=r"long\.idx.*trailing data"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(_idx_bytes(np.random.default_rng(0).integers(
        0, 255, (50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[:len(compressed) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.gz.*(truncated|corrupt)"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_huge_header_allocates_nothing(tmp_path, gz):
    # (2**32 - 1)**3 bytes claimed in a 16-byte header: must fail before any allocation
    data = b"\x00\x00\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\x00" * 64
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=r"huge\.idx"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"reading a hostile header allocated {peak} bytes"


def test_gzip_bomb_header_bounded(tmp_path):
    # a header claiming 400 MB of content inside a few hundred compressed bytes
    data = b"\x00\x00\x08\x03" + struct.pack(">III", 500000, 28, 28) + b"\x00" * 1000
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(DataFormatError, match=r"bomb\.gz.*impossible"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")


def _write_mnist(root, split="train", n=5, gz=True, labels=None, rows=28):
    prefix = "train" if split == "train" else "t10k"
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, rows, rows), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    suffix = ".gz" if gz else ""
    write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_written_files(tmp_path, gz):
    images, labels = _write_mnist(tmp_path, "test", n=6, gz=gz)
    ds = MNIST(tmp_path, split="test")
    assert len(ds) == 6 and ds.classes == [str(d) for d in range(10)]
    image, label = ds[4]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0], images[4].astype(np.float32) / np.float32(255))
    assert label == 4 and isinstance(label, int)
    assert len(MNIST(tmp_path, train=False)) == 6


def test_mnist_missing_files_are_named(tmp_path):
    _write_mnist(tmp_path, "test")
    with pytest.raises(DatasetNotFoundError, match=r"train-images-idx3-ubyte.*train-labels-idx1"):
        MNIST(tmp_path, split="train")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte") as info:
        MNIST(tmp_path, split="test")
    assert "t10k-images" not in str(info.value)


def test_mnist_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        MNIST(tmp_path, split="validation")


def test_mnist_rejects_inconsistent_files(tmp_path):
    _write_mnist(tmp_path, "train", n=4, labels=np.array([1, 2, 3], dtype=np.uint8))
    with pytest.raises(DataFormatError, match=r"4 images.*3 labels"):
        MNIST(tmp_path)
    _write_mnist(tmp_path, "train", n=3, labels=np.array([1, 12, 3], dtype=np.uint8))
    with pytest.raises(DataFormatError, match=r"train-labels.*label 12"):
        MNIST(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 4), dtype=np.uint8))
    with pytest.raises(DataFormatError, match=r"train-images.*3 dimensions"):
        MNIST(tmp_path)
    _write_mnist(tmp_path, "train", n=2, rows=5)
    with pytest.raises(DataFormatError, match=r"N x 28 x 28.*shape \(2, 5, 5\)"):
        MNIST(tmp_path)
    _write_mnist(tmp_path, "train", n=0)
    with pytest.raises(DataFormatError, match=r"N > 0.*shape \(0, 28, 28\)"):
        MNIST(tmp_path)


def test_real_mnist_test_set(shared_data):
    root = shared_data / "mnist"
    ds = MNIST(root, split="test")
    assert len(ds) == 10000
    assert ds.images.shape == (10000, 1, 28, 28)
    # decode the files independently of read_idx: 16- and 8-byte headers, then raw bytes
    raw_images = gzip.open(root / "t10k-images-idx3-ubyte.gz").read()
    raw_labels = gzip.open(root / "t10k-labels-idx1-ubyte.gz").read()
    assert struct.unpack(">IIII", raw_images[:16]) == (2051, 10000, 28, 28)
    assert struct.unpack(">II", raw_labels[:8]) == (2049, 10000)
    pixels = np.frombuffer(raw_images, np.uint8, -1, 16)
    np.testing.assert_array_equal(ds.images.reshape(-1), pixels)
    np.testing.assert_array_equal(ds.labels, np.frombuffer(raw_labels, np.uint8, -1, 8))
    assert ds.labels.min() == 0 and ds.labels.max() == 9
    assert ds[0][1] == 7 and raw_labels[8] == 7                   # the famous first test digit
    image = ds[0][0]
    assert image.shape == (1, 28, 28) and 0 <= image.min() and image.max() <= 1
