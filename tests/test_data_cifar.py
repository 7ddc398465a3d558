"""CIFAR-10 binary batches, on small files written here."""

import numpy as np
import pytest

from minicnn.data import CIFAR10, DataFormatError, DatasetNotFoundError
from minicnn.data.cifar import CLASSES


def _records(labels, seed):
    """Records built by hand: label byte, then R, G, B planes of 32x32 bytes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    raw = b"".join(bytes([lab]) + pixels[k].tobytes() for k, lab in enumerate(labels))
    return raw, pixels


def _write_all(folder, per_file=2):
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for k in range(1, 6):
        labels = [(k + j) % 10 for j in range(per_file)]
        raw, pixels = _records(labels, seed=k)
        (folder / f"data_batch_{k}.bin").write_bytes(raw)
        written[k] = (labels, pixels)
    raw, pixels = _records([9, 0, 3], seed=99)
    (folder / "test_batch.bin").write_bytes(raw)
    written["test"] = ([9, 0, 3], pixels)
    return written


def test_record_parsing(tmp_path):
    written = _write_all(tmp_path)
    ds = CIFAR10(tmp_path, train=True)
    assert len(ds) == 10
    assert ds.classes == CLASSES
    # sample 2 is the first record of data_batch_2
    labels, pixels = written[2]
    image, label = ds[2]
    assert label == labels[0]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    expected = pixels[0].reshape(3, 32, 32).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(image, expected)
    # the red plane comes first: pixel (row 1, col 2) of red is byte 1 + 32 + 2 of the record
    assert image[0, 1, 2] == np.float32(pixels[0][32 + 2]) / np.float32(255)
    assert image[2, 0, 0] == np.float32(pixels[0][2048]) / np.float32(255)
    all_labels = [lab for k in range(1, 6) for lab in written[k][0]]
    np.testing.assert_array_equal(ds.labels, all_labels)


def test_test_split_and_nested_folder(tmp_path):
    written = _write_all(tmp_path / "cifar-10-batches-bin")
    ds = CIFAR10(tmp_path, train=False)
    assert len(ds) == 3 and [ds[i][1] for i in range(3)] == written["test"][0]


def test_meta_names(tmp_path):
    _write_all(tmp_path)
    names = [f"class{k}" for k in range(10)]
    (tmp_path / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    assert CIFAR10(tmp_path).classes == names
    (tmp_path / "batches.meta.txt").write_text("a\nb\n")
    with pytest.raises(DataFormatError, match=r"batches\.meta\.txt.*10 class names"):
        CIFAR10(tmp_path)
    (tmp_path / "batches.meta.txt").write_text("cat\n" * 10)
    with pytest.raises(DataFormatError, match=r"all different, found 10 \(1 different\)"):
        CIFAR10(tmp_path)


def test_missing_files_named(tmp_path):
    _write_all(tmp_path)
    (tmp_path / "data_batch_3.bin").unlink()
    (tmp_path / "data_batch_5.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"data_batch_3\.bin, data_batch_5\.bin"):
        CIFAR10(tmp_path)
    CIFAR10(tmp_path, train=False)      # the test split is still complete


def test_size_checked(tmp_path):
    _write_all(tmp_path)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataFormatError, match=r"test_batch\.bin.*3073-byte"):
        CIFAR10(tmp_path, train=False)
    path.write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"test_batch\.bin"):
        CIFAR10(tmp_path, train=False)


def test_bad_label(tmp_path):
    _write_all(tmp_path)
    raw, _ = _records([1, 200], seed=0)
    (tmp_path / "test_batch.bin").write_bytes(raw)
    with pytest.raises(DataFormatError, match=r"test_batch\.bin.*record 1.*label 200"):
        CIFAR10(tmp_path, train=False)
