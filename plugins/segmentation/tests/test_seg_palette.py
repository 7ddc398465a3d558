"""VOC palette, palette PNGs and overlays."""

import numpy as np
import pytest
from PIL import Image

from minicnn_segmentation import VOC_PALETTE, colorize, load_mask, overlay, save_mask_png


def test_voc_palette_known_colours():
    # colours of the VOC devkit's colour map
    assert VOC_PALETTE.shape == (256, 3) and VOC_PALETTE.dtype == np.uint8
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                7: (128, 128, 128), 8: (64, 0, 0), 15: (192, 128, 128), 20: (0, 64, 128),
                255: (224, 224, 192)}
    for index, colour in expected.items():
        assert tuple(VOC_PALETTE[index]) == colour, index


def test_save_mask_png_is_a_palette_png_of_the_labels(tmp_path):
    mask = np.array([[0, 1, 2], [3, 20, 255]])
    path = tmp_path / "mask.png"
    save_mask_png(mask, path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "P" and image.size == (3, 2)
        np.testing.assert_array_equal(np.asarray(image), mask)      # indices are the labels
        palette = np.array(image.getpalette()[:768]).reshape(-1, 3)
        np.testing.assert_array_equal(palette[:21], VOC_PALETTE[:21])
        rgb = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(rgb[1, 2], (224, 224, 192))
    np.testing.assert_array_equal(load_mask(path), mask)


def test_save_mask_png_refuses_bad_masks(tmp_path):
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        save_mask_png(np.array([[0, 256]]), tmp_path / "m.png")
    with pytest.raises(ValueError, match="2-D"):
        save_mask_png(np.zeros((1, 2, 2), int), tmp_path / "m.png")
    with pytest.raises(ValueError, match="integer"):
        save_mask_png(np.zeros((2, 2)), tmp_path / "m.png")


def test_overlay_colours():
    image = np.empty((3, 2, 2), np.float32)
    image[0], image[1], image[2] = 0.2, 0.4, 0.6             # one gray-blue colour everywhere
    mask = np.array([[0, 1], [2, 255]])
    full = np.asarray(overlay(image, mask, alpha=1.0))
    np.testing.assert_array_equal(full[0, 0], (51, 102, 153))     # background keeps the image
    np.testing.assert_array_equal(full[0, 1], (128, 0, 0))        # class 1, VOC red
    np.testing.assert_array_equal(full[1, 0], (0, 128, 0))
    np.testing.assert_array_equal(full[1, 1], (224, 224, 192))    # ignore has a colour too
    half = np.asarray(overlay(image, mask, alpha=0.5))
    np.testing.assert_array_equal(half[0, 0], (51, 102, 153))
    np.testing.assert_allclose(half[0, 1], [(0.2 * 255 + 128) / 2, 0.4 * 255 / 2, 0.6 * 255 / 2],
                               atol=0.51)             # rounding to 8 bits
    none = np.asarray(overlay(image, mask, alpha=0.0))
    np.testing.assert_array_equal(none, np.broadcast_to([51, 102, 153], (2, 2, 3)))


def test_overlay_gray_image_custom_palette_and_skip():
    image = np.full((1, 1, 2), 0.5, np.float32)
    mask = np.array([[0, 1]])
    out = np.asarray(overlay(image, mask, alpha=1.0, palette=[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
                             skip=()))
    np.testing.assert_array_equal(out[0], [[0, 0, 255], [0, 255, 0]])


def test_overlay_errors():
    with pytest.raises(ValueError, match="differs"):
        overlay(np.zeros((3, 2, 2)), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="alpha"):
        overlay(np.zeros((3, 2, 2)), np.zeros((2, 2), int), alpha=2)
    with pytest.raises(ValueError, match="no colour"):
        overlay(np.zeros((3, 1, 1)), np.array([[5]]), palette=np.zeros((3, 3), np.uint8))


def test_colorize():
    out = np.asarray(colorize(np.array([[1, 0]])))
    np.testing.assert_array_equal(out, [[[128, 0, 0], [0, 0, 0]]])
