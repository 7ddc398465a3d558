"""panel on bad input (from a fuzzing pass): empty, 2-D, Pillow and zero-size images, label
counts, heights and over-wide panels."""

import numpy as np
import pytest
from PIL import Image

from minicnn_style_transfer import panel

RGB = np.full((3, 8, 12), 0.5, np.float32)


def test_panel_lays_images_out():
    out = panel([RGB, RGB[:1]], ["content", "gray"], height=16)
    assert out.size == (24 + 24 + 3 * 8, 16 + 2 * 8 + 18)
    assert out.getpixel((10, 10)) == (128, 128, 128)
    assert panel([RGB], height=16).size == (24 + 16, 32)          # no labels: no caption row
    assert panel(np.stack([RGB, RGB]), height=8, gap=0).size == (24, 8)


def test_panel_wants_a_list_of_chw_arrays():
    with pytest.raises(ValueError, match="panel: expected a non-empty list.*no images"):
        panel([])
    with pytest.raises(ValueError, match=r"panel: image 0 must be a \(3, H, W\).*\(8, 8\)"):
        panel([np.zeros((8, 8))])
    with pytest.raises(ValueError, match=r"panel: image 1 must be .*H, W > 0.*\(3, 0, 0\)"):
        panel([RGB, np.zeros((3, 0, 0))])
    with pytest.raises(ValueError, match=r"panel: image 0 must be .*\(4, 8, 8\)"):
        panel([np.zeros((4, 8, 8))])
    with pytest.raises(TypeError, match="panel: image 0 is a Pillow image"):
        panel([Image.new("RGB", (8, 8))])
    with pytest.raises(TypeError, match="panel: expected a list"):
        panel(None)


def test_panel_wants_one_label_per_image():
    with pytest.raises(ValueError, match="panel: 1 labels for 2 images"):
        panel([RGB, RGB], ["only one"])
    with pytest.raises(ValueError, match="panel: 0 labels for 1 images"):
        panel([RGB], [])


@pytest.mark.parametrize("height", [0, -1, 4097, 1.5, True])
def test_panel_height_is_bounded(height):
    with pytest.raises(ValueError, match=r"panel: height must be an int in \[1, 4096\]"):
        panel([RGB], height=height)


def test_panel_caps_tile_width_and_canvas():
    # a 1 x 400 strip made a 102416-pixel-wide panel (1 x 2000 ran out of memory)
    assert panel([np.zeros((3, 1, 400))]).size == (8 * 256 + 16, 256 + 16)
    assert panel([np.zeros((3, 1, 2000))], height=4).size == (32 + 16, 4 + 16)
    with pytest.raises(ValueError, match="panel: a 32784x4112 picture is over"):
        panel([np.zeros((3, 1, 8))], height=4096)
    with pytest.raises(ValueError, match=r"panel: gap must be an int in \[0, 4096\]"):
        panel([RGB], gap=10**9)
