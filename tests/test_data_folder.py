"""ImageFolder: class folders, sorted names, modes, sizes and bad files."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from minicnn.data import DataFormatError, DataLoader, DatasetNotFoundError, ImageFolder


def _tree(root):
    """dog/ has two images in two modes, cat/ one (plus a sub-folder), bird/ a 16-bit PNG."""
    (root / "dog").mkdir(parents=True)
    (root / "cat" / "more").mkdir(parents=True)
    (root / "bird").mkdir()
    Image.new("RGB", (6, 4), (255, 0, 0)).save(root / "dog" / "b.PNG")
    Image.new("L", (6, 4), 51).save(root / "dog" / "a.jpg", quality=100)
    Image.new("RGBA", (6, 4), (0, 0, 255, 0)).save(root / "cat" / "more" / "c.png")
    Image.fromarray(np.full((4, 6), 65535, dtype=np.uint16)).save(root / "bird" / "d.png")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"junk")
    (root / ".cache").mkdir()


def test_classes_samples_and_labels(tmp_path):
    _tree(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    names = [p.name for p, _ in ds.samples]
    assert names == ["d.png", "c.png", "a.jpg", "b.PNG"]
    assert ds.targets == [0, 1, 2, 2]
    assert len(ds) == 4
    image, label = ds[3]
    assert label == 2 and image.shape == (3, 4, 6) and image.dtype == np.float32
    np.testing.assert_array_equal(image[:, 0, 0], [1, 0, 0])
    bird, _ = ds[0]                                    # 16-bit white
    np.testing.assert_array_equal(bird, np.ones((3, 4, 6), np.float32))
    cat, _ = ds[1]                                     # fully transparent blue -> white
    np.testing.assert_array_equal(cat, np.ones((3, 4, 6), np.float32))
    gray, _ = ds[2]
    np.testing.assert_allclose(gray, 0.2, atol=1.5 / 255)


def test_mode_and_size_make_batches(tmp_path):
    _tree(tmp_path)
    ds = ImageFolder(tmp_path, mode="L", size=(5, 3))
    x, y = next(iter(DataLoader(ds, batch_size=4, seed=0, prefetch=0)))
    assert x.shape == (4, 1, 5, 3) and y.tolist() == [0, 1, 2, 2]
    np.testing.assert_allclose(x[3, 0], 0.299, atol=1e-5)   # pure red through the luma weights


def test_without_size_different_shapes_do_not_batch(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("L", (3, 3)).save(tmp_path / "a" / "1.png")
    Image.new("L", (4, 3)).save(tmp_path / "a" / "2.png")
    with pytest.raises(ValueError, match=r"shape.*Resize"):
        next(iter(DataLoader(ImageFolder(tmp_path), batch_size=2, seed=0, prefetch=0)))


def test_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    Image.new("L", (3, 3)).save(tmp_path / "full" / "x.png")
    with pytest.raises(DataFormatError, match=r"\['empty'\]"):
        ImageFolder(tmp_path)
    (tmp_path / "empty" / "y.bmp").write_bytes(b"BMtruncated")
    ds = ImageFolder(tmp_path)
    with pytest.raises(DataFormatError, match=r"y\.bmp"):
        ds[0]
    with pytest.raises(ValueError, match="mode"):
        ImageFolder(tmp_path, mode="P")
    with pytest.raises(ValueError, match=r"ImageFolder: size .*got -1"):
        ImageFolder(tmp_path, size=-1)
    with pytest.raises(ValueError, match=r"ImageFolder: max_pixels"):
        ImageFolder(tmp_path, max_pixels="many")
    with pytest.raises(TypeError, match=r"ImageFolder: extensions"):
        ImageFolder(tmp_path, extensions=None)


def test_one_extension_as_a_string(tmp_path):
    (tmp_path / "c").mkdir()
    Image.new("L", (2, 2)).save(tmp_path / "c" / "a.png")
    Image.new("L", (2, 2)).save(tmp_path / "c" / "notes.log", format="PNG")   # ends in "g"
    assert [p.name for p, _ in ImageFolder(tmp_path, extensions=".png").samples] == ["a.png"]


def test_bomb_and_truncated_jpeg_in_a_folder(tmp_path):
    (tmp_path / "a").mkdir()
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    chunk = (struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
             + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND") & 0xFFFFFFFF)
    (tmp_path / "a" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + iend)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "a" / "photo.jpg", quality=95)
    whole = (tmp_path / "a" / "photo.jpg").read_bytes()
    (tmp_path / "a" / "photo.jpg").write_bytes(whole[: len(whole) // 2])
    ds = ImageFolder(tmp_path)
    with pytest.raises(DataFormatError, match=r"bomb\.png.*decompression bomb"):
        ds[0]
    with pytest.raises(DataFormatError, match=r"photo\.jpg.*truncated"):
        ds[1]
