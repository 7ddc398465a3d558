"""The example scripts under ``examples/``, run in-process on small sizes: they write PNGs that are
not blank, lay them out as documented, and compute the right numbers."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minicnn
from minicnn import zoo

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    """Import an example script by name (its folder on sys.path, for ``_common``)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name):
        spec = importlib.util.spec_from_file_location(f"minicnn_example_{name}",
                                                      EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def read_png(path, min_width, min_height):
    """The PNG as an RGB array, after checking it is a sensible size and not blank."""
    assert path.exists(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        a = np.asarray(image.convert("RGB"))
    assert a.shape[1] >= min_width and a.shape[0] >= min_height, a.shape
    assert a.shape[1] <= 4000 and a.shape[0] <= 4000, a.shape
    assert a.std() > 10, "the picture is (nearly) constant"
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 20, "too few colours for a picture"
    return a


def segments(mask, min_length=1):
    """Lengths of the runs of True in a 1-D mask (runs shorter than ``min_length`` dropped)."""
    runs, length = [], 0
    for v in list(mask) + [False]:
        if v:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return [r for r in runs if r >= min_length]


# -- filters -------------------------------------------------------------------------------------

def test_filter_kernels_and_convolution_values(example):
    filters = example("filters")
    g = filters.gaussian_kernel(2.0)
    assert g.shape == (13, 13) and abs(float(g.sum()) - 1) < 1e-6
    assert np.unravel_index(np.argmax(g), g.shape) == (6, 6)
    np.testing.assert_allclose(g, g.T) and np.testing.assert_allclose(g, g[::-1])
    # blurring a constant image gives the constant away from the border (zero padding beyond it)
    const = np.full((1, 30, 30), 0.4, np.float32)
    blurred = filters.convolve(const, g)
    np.testing.assert_allclose(blurred[0, 6:-6, 6:-6], 0.4, atol=1e-6)
    assert blurred[0, 0, 0] < 0.3                    # the corner sees zeros beyond the border
    # a depthwise colour blur keeps every channel to itself
    rgb = np.stack([np.full((20, 20), v, np.float32) for v in (0.1, 0.5, 0.9)])
    out = filters.convolve(rgb, filters.box_kernel(5))
    np.testing.assert_allclose(out[:, 2:-2, 2:-2].mean(axis=(1, 2)), [0.1, 0.5, 0.9], atol=1e-6)
    # a vertical step edge between columns 11 and 12 (0.2 -> 0.6)
    step = np.full((1, 24, 24), 0.2, np.float32)
    step[:, :, 12:] = 0.6
    gx = filters.convolve(step, filters.SOBEL_X)[0]
    gy = filters.convolve(step, filters.SOBEL_Y)[0]
    inner = gx[1:-1]
    np.testing.assert_allclose(inner[:, [11, 12]], 4 * 0.4, rtol=1e-5)   # 1 + 2 + 1 times 0.4
    assert set(np.argmax(np.abs(inner[:, 1:-1]), axis=1) + 1) <= {11, 12}
    np.testing.assert_allclose(inner[:, 1:10], 0, atol=1e-6)              # flat regions
    np.testing.assert_allclose(inner[:, 14:-1], 0, atol=1e-6)
    np.testing.assert_allclose(gy[1:-1, :], 0, atol=1e-6)                 # no horizontal edge
    lap = filters.convolve(step, filters.LAPLACIAN)[0][1:-1]
    np.testing.assert_allclose(lap[:, 11], 0.4, rtol=1e-5)                # +/- either side
    np.testing.assert_allclose(lap[:, 12], -0.4, rtol=1e-5)
    sharp = filters.convolve(step, filters.SHARPEN)[0][1:-1]
    np.testing.assert_allclose(sharp[:, 5], 0.2, atol=1e-6)               # flat: unchanged
    np.testing.assert_allclose(sharp[:, [11, 12]], [[0.2 - 0.4, 0.6 + 0.4]] * 22, atol=1e-6)


def test_filters_script_on_a_given_image(example, tmp_path):
    filters = example("filters")
    # a smooth colour ramp with a disc: no pure white anywhere, so tiles stand out from the page
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([0.2 + 0.4 * x / 64, 0.3 + 0.3 * y / 48, np.full((48, 64), 0.5)], axis=-1)
    base[(y - 24) ** 2 + (x - 32) ** 2 < 100] = (0.7, 0.3, 0.2)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.uint8(base * 255)).save(photo)
    result = filters.main(["--out", str(tmp_path / "out"), "--small", "--image", str(photo),
                           "--size", "48"])
    assert result["source"] == str(photo)
    names = list(result["results"])
    assert names[:2] == ["original", "grayscale"] and len(names) == 11
    assert result["results"]["original"][1].shape == (3, 48, 64)
    a = read_png(result["path"], 300, 150)
    # tile rows: long runs of non-background pixels (text makes only short runs); 11 tiles, 4 a row
    busy = (a != 255).any(axis=2)
    tile_rows = np.array([max(segments(row), default=0) >= 40 for row in busy])
    assert segments(tile_rows) == [48, 48, 48]
    starts = [i for i in range(1, len(tile_rows)) if tile_rows[i] and not tile_rows[i - 1]]
    counts = [len(segments(busy[s:s + 48].mean(axis=0) > 0.5, min_length=20)) for s in starts]
    assert counts == [4, 4, 3]


def test_filters_script_finds_a_photo_or_makes_one(example, tmp_path, monkeypatch):
    filters = example("filters")
    monkeypatch.setattr(filters, "SHARED_DATA", tmp_path / "nowhere")
    result = filters.main(["--out", str(tmp_path), "--small"])
    assert "test pattern" in result["source"]
    read_png(result["path"], 300, 150)
    pattern = filters.test_pattern(64)
    assert pattern.shape == (3, 64, 64) and pattern.std() > 0.1


# -- learned features ----------------------------------------------------------------------------

def test_learned_features_script(example, tmp_path):
    lf = example("learned_features")
    result = lf.main(["--out", str(tmp_path), "--small"])
    model = result["model"]
    # the filters shown first are the initial ones (same seed, fresh model), then trained ones
    minicnn.manual_seed(0)
    np.testing.assert_array_equal(result["before"], zoo.lenet5()["conv1"].weight.data)
    np.testing.assert_array_equal(result["after"], model["conv1"].weight.data)
    assert np.abs(result["after"] - result["before"]).max() > 1e-3
    # one row for the input and one per spatial node of LeNet-5
    assert result["rows"] == 7
    conv1, act1 = model.activation("conv1"), model.activation("act1")
    pool1 = model.activation("pool1")
    assert conv1.shape == (1, 6, 28, 28) and pool1.shape == (1, 6, 14, 14)
    np.testing.assert_array_equal(act1, np.maximum(conv1, 0))          # the taps are consistent
    np.testing.assert_array_equal(pool1, act1.reshape(1, 6, 14, 2, 14, 2).max(axis=(3, 5)))
    filters_png = read_png(result["filters_path"], 400, 250)
    maps_png = read_png(result["maps_path"], 800, 400)
    # the maps picture shows viridis (activations) and blue/red (convolution outputs)
    colours = {tuple(c) for c in maps_png.reshape(-1, 3)}
    assert (68, 1, 84) in colours                       # viridis' zero
    assert any(r < 60 and b > 90 for r, g, b in colours)   # some blue
    assert filters_png.shape[1] > 400


# -- degradation ---------------------------------------------------------------------------------

def test_degradation_script(example, tmp_path):
    deg = example("degradation")
    result = deg.main(["--out", str(tmp_path), "--small"])
    plain, resnet = result["histories"]
    assert (plain["name"], resnet["name"]) == ("plain-20", "ResNet-20")
    # option B projections: 16*32 + 2*32 + 32*64 + 2*64 = 2,752 more parameters than plain
    assert resnet["parameters"] - plain["parameters"] == 2752
    for h in (plain, resnet):
        assert h["steps_per_epoch"] == 2                  # 64 images, batch 32
        assert len(h["step_loss"]) == len(h["step_error"]) == 4
        assert len(h["epochs"]) == 2
        assert all(math.isfinite(v) for v in h["step_loss"])
        assert abs(h["step_loss"][0] - result["chance_loss"]) < 1.0   # starts near ln 10
        assert all(0 <= e <= 1 for e in h["step_error"])
        # the epoch mean is the mean of its steps (equal batches)
        assert h["epochs"][0]["loss"] == pytest.approx(np.mean(h["step_loss"][:2]))
        assert h["epochs"][1]["error"] == pytest.approx(np.mean(h["step_error"][2:]))
    a = read_png(result["path"], 1000, 300)
    assert a.shape == (360, 3 * 520, 3)                   # three panels of minicnn.plot
    record = json.loads((tmp_path / "degradation.json").read_text())
    assert record["settings"]["depth"] == 20 and len(record["histories"]) == 2
    pts = deg.smoothed([1.0, 2.0, 3.0, 4.0, 5.0], 2, 5)
    assert pts == [(0.4, 1.5), (0.8, 3.5), (1.0, 5.0)]
