"""Bilinear upsampling, normalisation, colour maps and overlays."""

import re

import numpy as np
import pytest
from PIL import Image
from saliency_models import SQUARE, bright_square_model, square_image

from minicnn_saliency import COLORMAPS, apply_colormap, grad_cam, normalize, overlay, upsample


def test_upsample_doubles_with_pixel_centres_aligned():
    a = np.array([[0.0, 4.0], [8.0, 12.0]])
    # output centres at input coordinates -0.25, 0.25, 0.75, 1.25 (clamped at the edges)
    row = [0.0, 1.0, 3.0, 4.0]
    want = np.array([[v + 8 * w for v in row] for w in (0.0, 0.25, 0.75, 1.0)])
    np.testing.assert_allclose(upsample(a, (4, 4)), want)
    np.testing.assert_allclose(upsample(a[None, None], 4)[0, 0], want)


def test_upsample_keeps_constants_linear_ramps_and_same_sizes():
    np.testing.assert_allclose(upsample(np.full((3, 5), 2.5), (7, 11)), 2.5)
    ramp = np.arange(4.0)[None, :].repeat(3, 0)                    # x = 0, 1, 2, 3 at centres
    big = upsample(ramp, (3, 8))
    centres = (np.arange(8) + 0.5) / 2 - 0.5                       # output centres in input units
    np.testing.assert_allclose(big[0], np.clip(centres, 0, 3))
    x = np.random.default_rng(0).random((2, 5, 6))
    np.testing.assert_allclose(upsample(x, (5, 6)), x)
    with pytest.raises(ValueError, match="positive size"):
        upsample(x, (0, 3))


def test_normalize():
    a = np.array([[-2.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(normalize(a, "minmax"), [[0, 0.5], [0.75, 1]])
    np.testing.assert_allclose(normalize(np.abs(a), "max"), [[1, 0], [0.5, 1]])
    np.testing.assert_allclose(normalize(np.array([0.0, 1, 2, 100]), "max", clip_percentile=50),
                               [0, 2 / 3, 1, 1])
    np.testing.assert_array_equal(normalize(np.full((2, 2), 3.0), "minmax"), 0)
    with pytest.raises(ValueError, match="mode must be"):
        normalize(a, "sum")


def test_jet_and_inferno():
    t = np.array([[0.0, 0.125, 0.375, 0.5, 0.625, 0.875, 1.0]])
    jet = apply_colormap(t, "jet")[0]
    # MATLAB's jet: dark blue, blue, cyan, mid, yellow, red, dark red
    np.testing.assert_array_equal(jet, [[0, 0, 128], [0, 0, 255], [0, 255, 255], [128, 255, 128],
                                        [255, 255, 0], [255, 0, 0], [128, 0, 0]])
    inferno = apply_colormap(np.array([[0.0, 0.5, 1.0]]), "inferno")[0]
    # matplotlib's inferno(0), inferno(0.5) = #bc3754, inferno(1), within one level
    np.testing.assert_allclose(inferno, [[0, 0, 4], [188, 55, 84], [252, 255, 164]], atol=1)
    for name in COLORMAPS:
        assert apply_colormap(np.linspace(0, 1, 12).reshape(3, 4), name).shape == (3, 4, 3)
    np.testing.assert_array_equal(apply_colormap(np.array([[-1.0, 2.0]]), "gray"),
                                  [[[0, 0, 0], [255, 255, 255]]])
    with pytest.raises(ValueError, match="unknown colour map 'hot'"):
        apply_colormap(t, "hot")
    with pytest.raises(ValueError, match="2-D"):
        apply_colormap(t[0], "jet")


def test_overlay_blends_at_the_image_size():
    image = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32)
    heat = np.linspace(0, 1, 12).reshape(3, 4)
    picture = overlay(image, heat, alpha=0.4)
    assert isinstance(picture, Image.Image) and picture.mode == "RGB"
    assert picture.size == (30, 20)
    rgb = np.rint(image.transpose(1, 2, 0) * 255)
    colour = apply_colormap(upsample(heat, (20, 30)), "jet")
    np.testing.assert_allclose(np.asarray(picture), 0.6 * rgb + 0.4 * colour, atol=1.01)
    np.testing.assert_array_equal(np.asarray(overlay(image, heat, alpha=0.0)), rgb)
    np.testing.assert_array_equal(np.asarray(overlay(image, heat, alpha=1.0)), colour)
    with pytest.raises(ValueError, match="alpha must be in"):
        overlay(image, heat, alpha=1.5)


def test_overlay_png_puts_the_heat_on_the_square(tmp_path):
    """The written PNG has the image's size, and with a gray map at alpha 1 (the picture is the
    heat) its brightest pixels lie in the bright square."""
    image = square_image(height=40, width=50)
    result = grad_cam(bright_square_model(), image, target=0)
    result.overlay(image[0], alpha=1.0, cmap="gray").save(tmp_path / "heat.png")
    result.overlay(image[0], alpha=0.5).save(tmp_path / "jet.png")
    with Image.open(tmp_path / "heat.png") as png:
        assert png.size == (50, 40)
        gray = np.asarray(png)[:, :, 0].astype(float)
    with Image.open(tmp_path / "jet.png") as png:
        assert png.size == (50, 40) and png.mode == "RGB"
    rows, cols = np.nonzero(gray == gray.max())
    assert gray.max() == 255
    assert np.all((rows >= SQUARE[0].start) & (rows < SQUARE[0].stop))
    assert np.all((cols >= SQUARE[1].start) & (cols < SQUARE[1].stop))
    inside = np.zeros(gray.shape, bool)
    inside[SQUARE] = True
    assert gray[inside].mean() > 100 > 10 > gray[~inside].mean()


def test_overlay_nan_cell_stays_one_cell_of_no_heat():
    image = np.zeros((3, 56, 56), np.float32)
    heat = np.zeros((7, 7))
    heat[3, 3] = np.nan
    cold = np.asarray(overlay(image, np.zeros((7, 7)), alpha=1.0))
    np.testing.assert_array_equal(np.asarray(overlay(image, heat, alpha=1.0)), cold)
    heat[3, 3], heat[0, 0] = np.inf, -np.inf
    one = np.zeros((7, 7))
    one[3, 3] = 1.0                                   # +inf counts as 1, -inf as 0
    np.testing.assert_array_equal(np.asarray(overlay(image, heat, alpha=1.0)),
                                  np.asarray(overlay(image, one, alpha=1.0)))


def test_upsample_refuses_empty_maps():
    for shape in ((0, 5), (5, 0), (2, 0, 3)):
        with pytest.raises(ValueError, match=r"upsample: the maps are empty.*" +
                           re.escape(str(shape))):
            upsample(np.zeros(shape), 8)
    with pytest.raises(ValueError, match="upsample"):
        overlay(np.zeros((3, 8, 8)), np.zeros((0, 5)))


@pytest.mark.parametrize("bad", [150, -1, float("nan"), True, "99"])
def test_normalize_clip_percentile_is_0_to_100(bad):
    with pytest.raises(ValueError, match=r"normalize: clip_percentile must be a number in "
                                         r"\[0, 100\]"):
        normalize(np.arange(4.0), clip_percentile=bad)
    out = normalize(np.arange(5.0), clip_percentile=np.float32(75))
    np.testing.assert_allclose(out, [0, 1 / 3, 2 / 3, 1, 1])
