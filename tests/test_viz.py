"""minicnn.viz: colour maps, tiles in grids, labelled rows, titles, insets."""

import numpy as np
import pytest
from PIL import Image

from minicnn import viz

WHITE = (255, 255, 255)


def test_diverging_map_is_centred_on_zero():
    a = np.array([[-2.0, 0.0, 2.0], [-1.0, 0.5, 1.0]])
    rgb = viz.colormap(a, "diverging")
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (5, 48, 97)          # -max: darkest blue
    assert tuple(rgb[0, 1]) == (247, 247, 247)      # 0: white
    assert tuple(rgb[0, 2]) == (103, 0, 31)         # +max: darkest red
    # -1 of [-2, 2] sits at t = 0.25: between anchors 2 (67,147,195) and 3 (146,197,222), halfway
    assert tuple(rgb[1, 0]) == (106, 172, 208)
    # negative values are bluer than red, positive redder than blue
    assert rgb[1, 1, 0] > rgb[1, 1, 2] and rgb[1, 0, 2] > rgb[1, 0, 0]


def test_diverging_map_shares_a_given_scale():
    # with vmax = 4 the value 2 is half way to the top (t = 0.75, anchor 7.5 of 0..10)
    rgb = viz.colormap(np.array([[2.0, 8.0]]), "diverging", vmax=4.0)
    expected = np.rint((np.array([244, 165, 130]) + np.array([214, 96, 77])) / 2)
    assert tuple(rgb[0, 0]) == tuple(expected.astype(int))
    assert tuple(rgb[0, 1]) == (103, 0, 31)         # clipped at +vmax


def test_viridis_and_gray_ramps():
    ramp = np.linspace(-3, 5, 50)[None, :]
    rgb = viz.colormap(ramp, "viridis")
    assert tuple(rgb[0, 0]) == (68, 1, 84) and tuple(rgb[0, -1]) == (253, 231, 37)
    luma = rgb.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(luma[0]) > 0)              # brighter all the way: readable in gray
    gray = viz.colormap(np.array([[0.0, 0.5, 1.0]]), "gray")
    assert gray[0, :, 0].tolist() == [0, 128, 255] and np.all(gray == gray[..., :1])
    assert viz.colormap(np.array([[1.0, 2.0]]), "gray", vmin=0, vmax=4)[0, :, 0].tolist() == \
        [64, 128]


def test_colormap_errors_and_constant_input():
    with pytest.raises(ValueError, match="unknown colour map 'jet'"):
        viz.colormap(np.zeros((2, 2)), "jet")
    with pytest.raises(ValueError, match="2-D array"):
        viz.colormap(np.zeros((2, 2, 2)))
    assert np.all(viz.normalize(np.full((3, 3), 7.0)) == 0.5)
    assert tuple(viz.colormap(np.zeros((2, 2)), "diverging")[0, 0]) == (247, 247, 247)
    np.testing.assert_allclose(viz.normalize(np.array([0.0, 5.0, 10.0]), 0, 5), [0, 1, 1])


def test_to_rgb_layouts():
    hw = np.array([[0.0, 1.0]])
    assert viz.to_rgb(hw).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    chw = np.zeros((3, 2, 2), np.float32)
    chw[0] = 1.0                                      # red plane
    out = viz.to_rgb(chw)
    assert out.shape == (2, 2, 3) and tuple(out[0, 0]) == (255, 0, 0)
    assert viz.to_rgb(np.ones((1, 4, 5))).shape == (4, 5, 3)
    hwc = np.full((2, 2, 3), 7, np.uint8)
    assert viz.to_rgb(hwc).tolist() == hwc.tolist()
    assert viz.to_rgb(np.array([[300, -5]]))[0].tolist() == [[255] * 3, [0] * 3]
    assert viz.to_rgb(Image.new("L", (3, 2), 9)).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        viz.to_rgb(np.zeros((2, 2, 5)))


def test_upscale_makes_blocks():
    a = np.array([[0.0, 1.0]])
    big = viz.upscale(a, 3)
    assert big.shape == (3, 6, 3)
    assert np.all(big[:, :3] == 0) and np.all(big[:, 3:] == 255)
    with pytest.raises(ValueError, match="positive int"):
        viz.upscale(a, 0)


def _tiles(n, size=8):
    return [np.full((size, size), (k + 1) / (n + 1)) for k in range(n)]


def test_grid_layout_and_tile_positions():
    tiles = _tiles(10)
    image = viz.grid(tiles, nrow=4, pad=2)
    # 4 per row, 3 rows: 4 * 8 + 5 * 2 = 42 wide, 3 * 8 + 4 * 2 = 32 high
    assert image.size == (42, 32)
    a = np.asarray(image)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, 4)
        y, x = 2 + r * 10, 2 + c * 10
        expected = round(tile[0, 0] * 255)
        assert np.all(a[y:y + 8, x:x + 8] == expected), k
    assert np.all(a[:2] == 255) and np.all(a[:, 10:12] == 255)      # padding is background
    assert np.all(a[22:30, 22:] == 255)                              # the empty cells of row 3


def test_grid_scale_labels_and_mixed_sizes():
    tiles = [np.zeros((4, 4)), np.zeros((2, 6))]
    image = viz.grid(tiles, nrow=2, pad=1, scale=2)
    # cells of the largest tile: 8 x 12 -> 2 * 12 + 3 = 27 wide, 8 + 2 = 10 high
    assert image.size == (27, 10)
    a = np.asarray(image)
    assert np.all(a[1:9, 3:11] == 0)                  # the 8x8 tile centred in its 12-wide cell
    assert np.all(a[3:7, 14:26] == 0) and np.all(a[1:3, 14:26] == 255)
    labelled = viz.grid(tiles, nrow=2, pad=1, scale=2, labels=["a", "bb"])
    assert labelled.height > image.height
    below = np.asarray(labelled)[10:]
    assert (below < 128).any()                        # label text drawn under the tiles
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        viz.grid(_tiles(3), labels=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        viz.grid([])


def test_grid_takes_a_batch_array():
    batch = np.random.default_rng(0).random((6, 1, 5, 5))
    assert viz.grid(batch, nrow=3, pad=0).size == (15, 10)


def test_rows_puts_labels_left():
    a, b = np.zeros((10, 20)), np.zeros((6, 30))
    image = viz.rows([a, b], ["first", "second row"], pad=2)
    arr = np.asarray(image)
    width = image.width
    assert image.height == 10 + 6 + 3 * 2
    label_w = width - 30 - 2 * 2
    assert label_w > 0
    assert np.all(arr[2:12, label_w + 2:label_w + 22] == 0)          # image a, left-aligned
    assert np.all(arr[14:20, label_w + 2:label_w + 32] == 0)         # image b
    assert (arr[2:12, :label_w] < 128).any()                         # its label
    assert viz.rows([a]).width == 20 + 2 * 4


def test_titled_and_inset():
    base = np.zeros((20, 40))
    image = viz.titled(base, "Title")
    arr = np.asarray(image)
    assert image.width >= 40
    assert image.height > 20 and np.all(arr[-20:, (image.width - 40) // 2:][:, :40] == 0)
    assert (arr[:-20] < 128).any()                   # the title's text
    small = np.ones((3, 3))
    out = viz.inset(base, small, border=1)
    assert out.shape == (20, 40, 3)
    assert np.all(out[0:5, 0:5][[0, -1]] == 255) and np.all(out[1:4, 1:4] == 255)
    assert np.all(out[5:, 5:] == 0)
    right = viz.inset(base, small, corner="bottom-right", border=0)
    assert np.all(right[-3:, -3:] == 255) and np.all(right[:-3] == 0)


# -- awkward values and arguments (found by fuzzing the drawing functions) -----------------------

def test_colour_scale_comes_from_the_finite_values():
    gray = viz.colormap(np.array([[100.0, 101.0, np.nan]]), "gray")
    assert gray[0, :, 0].tolist() == [0, 255, 0]                   # NaN drawn at the low end
    ramp = viz.colormap(np.array([[0.0, 1.0, 2.0, np.inf]]), "gray")
    assert ramp[0, :, 0].tolist() == [0, 128, 255, 255]            # one inf flattens nothing
    both = viz.colormap(np.array([[0.0, 1.0], [np.inf, -np.inf]]), "diverging")
    assert both.shape == (2, 2, 3)                                 # was an IndexError
    assert tuple(both[1, 0]) == (103, 0, 31) and tuple(both[1, 1]) == (5, 48, 97)
    assert viz.colormap(np.zeros((0, 4)), "viridis").shape == (0, 4, 3)
    np.testing.assert_array_equal(viz.normalize([1.0, 3.0], vmin=-np.inf), [0.0, 1.0])


def test_a_single_rgb_pixel_in_chw_stays_a_colour():
    pixel = np.array([1.0, 0.0, 0.0]).reshape(3, 1, 1)
    assert viz.to_rgb(pixel).tolist() == [[[255, 0, 0]]]
    assert viz.to_rgb(np.ones((1, 5, 1))).shape == (5, 1, 3)       # CHW with one channel


def test_labels_may_be_numbers_or_an_array():
    tiles = [np.zeros((4, 4))] * 3
    with_zero = np.asarray(viz.grid(tiles, labels=[0, 1, 2], font_size=12))
    without_zero = np.asarray(viz.grid(tiles, labels=["", "1", "2"], font_size=12))
    assert not np.array_equal(with_zero, without_zero)             # "0" is drawn
    from_array = np.asarray(viz.grid(tiles, labels=np.array(["0", "1", "2"]), font_size=12))
    np.testing.assert_array_equal(from_array, with_zero)
    assert viz.rows(tiles, labels=np.arange(3)).size[1] > 0


@pytest.mark.parametrize("call, match", [
    (lambda t: viz.grid(t, pad=-1), r"grid: pad must be an int >= 0"),
    (lambda t: viz.grid(t, nrow=float("nan")), r"grid: nrow"),
    (lambda t: viz.grid(t, font_size=0), r"grid: font_size must be an int >= 1"),
    (lambda t: viz.grid(t, scale=3000), r"upscale: a 12000x12000 picture is over"),
    (lambda t: viz.upscale(t[0], 1.5), r"upscale factor must be a positive int"),
    (lambda t: viz.rows(t, pad=-2), r"rows: pad"),
    (lambda t: viz.inset(t[0], t[0], border=-1), r"inset: border"),
    (lambda t: viz.grid(t, labels=["a"]), r"grid: 1 labels for 2 images"),
])
def test_layout_arguments_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call([np.zeros((4, 4))] * 2)


def test_titles_may_be_none_or_numbers():
    assert viz.titled(np.zeros((4, 4)), None).size[0] >= 4
    assert viz.titled(np.zeros((4, 4)), 3).size[1] > 4
