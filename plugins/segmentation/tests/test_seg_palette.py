"""VOC palette, palette PNGs and overlays."""

import numpy as np
import pytest
from PIL import Image

from minicnn_segmentation import (
    VOC_PALETTE,
    colorize,
    load_mask,
    overlay,
    overlay_grid,
    save_mask_png,
)


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


def test_overlay_takes_uint8_images_as_0_to_255():
    # an integer image used to be clipped to [0, 1] as floats: all white
    image = np.full((3, 4, 4), 100, np.uint8)
    out = np.asarray(overlay(image, np.zeros((4, 4), np.int64)))
    np.testing.assert_array_equal(out, np.full((4, 4, 3), 100))
    gray = np.asarray(overlay(np.full((4, 4), 51, np.int32), np.ones((4, 4), np.int64), 1.0))
    np.testing.assert_array_equal(gray[0, 0], (128, 0, 0))
    with pytest.raises(ValueError, match="overlay: image must hold numbers"):
        overlay(np.full((2, 2), "a"), np.zeros((2, 2), int))


def test_integer_palette_colours_must_be_0_to_255(tmp_path):
    mask = np.zeros((1, 1), np.int64)
    for bad in ([[300, -1, 0]], [[0, 0, 256]], [[-1, 0, 0]]):
        with pytest.raises(ValueError, match=r"colorize: integer palette colours .*\[0, 255\]"):
            colorize(mask, bad)
        with pytest.raises(ValueError, match=r"overlay: integer palette colours"):
            overlay(np.zeros((3, 1, 1)), mask, palette=bad)
        with pytest.raises(ValueError, match=r"save_mask_png: integer palette colours"):
            save_mask_png(mask, tmp_path / "m.png", bad)
    np.testing.assert_array_equal(np.asarray(colorize(mask, [[255, 0, 7]]))[0, 0], (255, 0, 7))


def test_save_mask_png_refuses_a_class_without_colour(tmp_path):
    path = tmp_path / "m.png"
    with pytest.raises(ValueError, match="save_mask_png: mask value 5 has no colour in a "
                                         "palette of 3"):
        save_mask_png(np.full((4, 4), 5), path, [[255, 0, 0]] * 3)
    assert not path.exists()


def test_overlay_grid_checks_its_input():
    images = np.zeros((2, 3, 4, 4))
    masks = np.zeros((2, 4, 4), np.int64)
    assert overlay_grid(images, masks, masks).size == (3 * 8 + 4, 2 * 8 + 2)
    assert overlay_grid(images, None, masks, scale=1).size == (2 * 4 + 2, 2 * 4 + 2)
    with pytest.raises(ValueError, match="overlay_grid: no images"):
        overlay_grid([], None, [])
    with pytest.raises(ValueError, match="overlay_grid: predictions are needed"):
        overlay_grid(images, masks, None)
    with pytest.raises(ValueError, match="overlay_grid: 1 predictions for 2 images"):
        overlay_grid(images, None, masks[:1])
    with pytest.raises(ValueError, match="overlay_grid: 3 truths for 2 images"):
        overlay_grid(images, np.zeros((3, 4, 4), int), masks)
    for scale in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="overlay_grid: scale must be a positive int"):
            overlay_grid(images, None, masks, scale=scale)
    with pytest.raises(ValueError, match="overlay_grid: images must have pixels"):
        overlay_grid(np.zeros((1, 3, 0, 4)), None, np.zeros((1, 0, 4), np.int64))
    with pytest.raises(ValueError, match="overlay_grid: a 13602x6800 picture"):
        overlay_grid(images[:1], None, masks[:1], scale=1700)
    uint8 = np.asarray(overlay_grid(np.full((1, 3, 4, 4), 100, np.uint8), None, masks[:1]))
    assert (uint8[0, 0] == 100).all()
