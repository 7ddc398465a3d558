"""load_image: every Pillow mode converted as documented, bombs and truncated files refused."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from minicnn.data import DataFormatError, array_to_image, load_image, save_image

LUMA = np.array([0.299, 0.587, 0.114])


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _save(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def _close(actual, expected, atol=1e-6):
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64), rtol=0, atol=atol)


def test_gray(tmp_path):
    a = _pixels((4, 5))
    path = _save(tmp_path, Image.fromarray(a), "g.png")
    out = load_image(path, mode="L")
    assert out.dtype == np.float32 and out.shape == (1, 4, 5) and out.flags.c_contiguous
    np.testing.assert_array_equal(out[0], a.astype(np.float32) / np.float32(255))
    rgb = load_image(path)                              # mode="RGB" by default: channel repeated
    assert rgb.shape == (3, 4, 5)
    for c in range(3):
        np.testing.assert_array_equal(rgb[c], out[0])


def test_rgb_and_luma(tmp_path):
    a = _pixels((4, 5, 3))
    path = _save(tmp_path, Image.fromarray(a), "c.png")
    out = load_image(path, mode="RGB")
    np.testing.assert_array_equal(out, a.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    gray = load_image(path, mode="L")
    _close(gray[0], (a / 255.0) @ LUMA)
    rgba = load_image(path, mode="RGBA")
    assert rgba.shape == (4, 4, 5) and (rgba[3] == 1).all()


def test_rgba_composited_on_white(tmp_path):
    a = _pixels((3, 4, 4))
    a[0, 0, 3], a[0, 1, 3] = 0, 255                     # fully transparent, fully opaque pixels
    path = _save(tmp_path, Image.fromarray(a, mode="RGBA"), "t.png")
    color, alpha = a[:, :, :3] / 255.0, a[:, :, 3:] / 255.0
    expected = color * alpha + (1 - alpha)              # over a white background
    out = load_image(path, mode="RGB")
    _close(out, expected.transpose(2, 0, 1))
    assert (out[:, 0, 0] == 1).all()                    # transparent -> white
    np.testing.assert_array_equal(out[:, 0, 1], a[0, 1, :3] / np.float32(255))
    _close(load_image(path, mode="L")[0], expected @ LUMA)
    kept = load_image(path, mode="RGBA")
    np.testing.assert_array_equal(kept, a.transpose(2, 0, 1).astype(np.float32) / np.float32(255))


def test_gray_alpha(tmp_path):
    a = _pixels((3, 4, 2))
    path = _save(tmp_path, Image.fromarray(a, mode="LA"), "la.png")
    g, alpha = a[:, :, 0] / 255.0, a[:, :, 1] / 255.0
    _close(load_image(path, mode="L")[0], g * alpha + 1 - alpha)


def test_palette_with_and_without_transparency(tmp_path):
    palette = _pixels((256, 3), seed=3)
    index = np.array([[0, 1, 2], [3, 3, 1]], dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.reshape(-1).tolist())
    plain = load_image(_save(tmp_path, image, "p.png"))
    np.testing.assert_array_equal(plain, palette[index].transpose(2, 0, 1) / np.float32(255))
    clear = load_image(_save(tmp_path, image, "pt.png", transparency=3))
    expected = palette[index].transpose(2, 0, 1) / 255.0
    expected[:, index == 3] = 1.0                       # the transparent index shows white
    _close(clear, expected)


def test_sixteen_bit_scaled(tmp_path):
    a = (np.arange(12).reshape(3, 4) * 5957).astype(np.uint16)
    a[2, 3] = 65535
    path = _save(tmp_path, Image.fromarray(a), "deep.png")
    assert Image.open(path).mode in ("I;16", "I")
    out = load_image(path, mode="L")
    _close(out[0], a / 65535.0)
    assert out[0, 2, 3] == 1.0
    assert load_image(path, mode="RGB").shape == (3, 3, 4)


def test_sixteen_bit_transparent_gray_level(tmp_path):
    a = np.array([[0, 65535], [0, 32768]], "<u2")
    path = _save(tmp_path, Image.fromarray(a), "key.png", transparency=0)
    assert Image.open(path).info["transparency"] == 0
    rgba = load_image(path, mode="RGBA")
    np.testing.assert_array_equal(rgba[3], [[0, 1], [0, 1]])
    np.testing.assert_array_equal(load_image(path, mode="L")[0][:, 0], [1, 1])   # on white


def test_float_image_with_nan_refused(tmp_path):
    path = tmp_path / "nan.tif"
    Image.fromarray(np.array([[np.nan, 0.5]], np.float32), "F").save(path)
    with pytest.raises(DataFormatError, match=r"nan\.tif: float image with 1 NaN pixel"):
        load_image(path, mode="L")


def test_bilevel_int_float_and_cmyk(tmp_path):
    bits = np.array([[True, False], [False, True]])
    out = load_image(_save(tmp_path, Image.fromarray(bits), "b.png"), mode="L")
    np.testing.assert_array_equal(out[0], bits.astype(np.float32))
    ints = np.array([[0, 65535], [100000, 32768]], dtype=np.int32)
    out = load_image(_save(tmp_path, Image.fromarray(ints), "i.tif"), mode="L")
    _close(out[0], np.clip(ints / 65535.0, 0, 1))
    floats = np.array([[-0.5, 0.25], [0.75, 2.0]], dtype=np.float32)
    out = load_image(_save(tmp_path, Image.fromarray(floats), "f.tif"), mode="L")
    _close(out[0], np.clip(floats, 0, 1))
    cmyk = Image.new("CMYK", (2, 3), (10, 20, 30, 40))
    out = load_image(_save(tmp_path, cmyk, "k.tif"))
    expected = np.array(cmyk.convert("RGB").getpixel((0, 0))) / 255.0
    _close(out[:, 1, 1], expected)


def test_resize(tmp_path):
    path = _save(tmp_path, Image.new("RGB", (40, 30), (51, 102, 204)), "flat.png")
    out = load_image(path, size=(12, 7))
    assert out.shape == (3, 12, 7)
    _close(out, np.broadcast_to(np.array([0.2, 0.4, 0.8])[:, None, None], out.shape), atol=1e-5)
    assert load_image(path, mode="L", size=5).shape == (1, 5, 5)
    with pytest.raises(ValueError, match="size"):
        load_image(path, size=(0, 3))
    with pytest.raises(ValueError, match="mode"):
        load_image(path, mode="CMYK")


def _png_header_only(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(100000, 100000))
    with pytest.raises(DataFormatError, match=r"bomb\.png.*decompression bomb"):
        load_image(path)


def test_bomb_between_limits_refused_by_our_check(tmp_path):
    path = tmp_path / "big.png"                        # 1e8 pixels: Pillow only warns
    path.write_bytes(_png_header_only(10000, 10000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(DataFormatError, match=r"big\.png.*10000x10000.*limit"):
            load_image(path)


def test_pixel_limit_parameter(tmp_path):
    path = _save(tmp_path, Image.new("L", (64, 64)), "small.png")
    with pytest.raises(DataFormatError, match=r"small\.png.*64x64"):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=4096).shape == (3, 64, 64)
    for bad in ("x", 0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"load_image: max_pixels must be a positive int"):
            load_image(path, max_pixels=bad)


def test_truncated_jpeg(tmp_path):
    path = _save(tmp_path, Image.fromarray(_pixels((64, 64, 3))), "whole.jpg", quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert load_image(path).shape == (3, 64, 64)
    with pytest.raises(DataFormatError, match=r"cut\.jpg.*truncated"):
        load_image(cut)


def test_not_an_image_and_missing(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(DataFormatError, match=r"notes\.png.*not an image"):
        load_image(path)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "absent.png")


def test_save_and_array_to_image_round_trip(tmp_path):
    a = _pixels((3, 6, 5)).astype(np.float32) / 255
    save_image(a, tmp_path / "x.png")
    np.testing.assert_array_equal(load_image(tmp_path / "x.png"), a)
    gray = array_to_image(np.array([[-1.0, 0.5, 2.0]]))
    assert gray.mode == "L" and list(np.asarray(gray)[0]) == [0, 128, 255]
    with pytest.raises(ValueError, match="channels"):
        array_to_image(np.zeros((2, 4, 4)))


def test_real_photo(shared_data):
    cat = load_image(shared_data / "images" / "chelsea.png")
    assert cat.ndim == 3 and cat.shape[0] == 3 and cat.dtype == np.float32
    assert 0 <= cat.min() and cat.max() <= 1 and cat.std() > 0.05
    small = load_image(shared_data / "images" / "amber.jpg", mode="L", size=(32, 48))
    assert small.shape == (1, 32, 48)
