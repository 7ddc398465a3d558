"""``minicnn style``: images of every Pillow mode in, a finite picture out, snapshots, the panel,
the estimate, the network choice."""

import argparse

import numpy as np
import pytest
from minicnn.data import DataFormatError, load_image
from PIL import Image

from minicnn_style_transfer import cli, load_rgb


def _write(path, mode, size=(40, 30), seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, (h, w)).astype(np.uint16)).save(path)
    elif mode == "P":
        Image.fromarray(rng.integers(0, 255, (h, w, 3)).astype(np.uint8)).convert(
            "P", palette=Image.ADAPTIVE, colors=16).save(path)
    elif mode == "RGBA":
        a = rng.integers(0, 255, (h, w, 4)).astype(np.uint8)
        a[:5, :5, 3] = 0                                   # fully transparent corner
        Image.fromarray(a, "RGBA").save(path)
    elif mode == "L":
        Image.fromarray(rng.integers(0, 255, (h, w)).astype(np.uint8), "L").save(path)
    else:
        Image.fromarray(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), "RGB").save(path)
    return path


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_every_mode_loads_as_finite_rgb(tmp_path, mode):
    path = _write(tmp_path / f"x_{mode.replace(';', '')}.png", mode)
    image = load_rgb(path, 12)
    assert image.shape == (3, 12, 16) and image.dtype == np.float32
    assert np.isfinite(image).all() and 0 <= image.min() <= image.max() <= 1
    if mode == "RGBA":   # transparent pixels are composited on white
        full = load_rgb(path)
        np.testing.assert_array_equal(full[:, :5, :5], 1.0)
    if mode == "L":      # gray is repeated to three channels
        np.testing.assert_array_equal(image[0], image[2])


def test_nan_pixels_never_enter(tmp_path):
    a = np.full((8, 8), np.nan, np.float32)
    a[4:] = 0.5
    Image.fromarray(a, "F").save(tmp_path / "nan.tif")
    with pytest.raises(DataFormatError, match=r"nan\.tif: float image with 32 NaN pixel"):
        load_rgb(tmp_path / "nan.tif")
    a[:4] = np.inf                          # infinities are clipped, as by minicnn's load_image
    Image.fromarray(a, "F").save(tmp_path / "inf.tif")
    image = load_rgb(tmp_path / "inf.tif")
    assert np.isfinite(image).all() and image[:, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_style_command_end_to_end(tmp_path, capsys):
    content = _write(tmp_path / "photo.png", "RGBA", (48, 32), seed=1)
    style = _write(tmp_path / "painting.png", "P", (40, 40), seed=2)
    out = tmp_path / "out" / "result.png"
    code = cli.main([str(content), str(style), "-o", str(out), "--size", "24", "--iterations",
                     "4", "--network", "random", "--snapshot-every", "2", "--no-progress",
                     "--panel", str(tmp_path / "panel.png"), "--tv-weight", "0.5"])
    assert code == 0
    text = capsys.readouterr().out
    assert "estimate: memory" in text and "ms per evaluation" in text and "s in all" in text
    assert "style loss" in text and "x lower" in text
    result = load_image(out)
    assert result.shape == (3, 24, 36) and np.isfinite(result).all()
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "result-0-0002.png", "result-0-0004.png", "result.png"]
    assert Image.open(tmp_path / "panel.png").size[0] > 3 * 36


def test_dry_run_prints_the_estimate_and_writes_nothing(tmp_path, capsys):
    content = _write(tmp_path / "c.png", "RGB")
    style = _write(tmp_path / "s.png", "L")
    out = tmp_path / "o.png"
    assert cli.main([str(content), str(style), "-o", str(out), "--size", "16", "--network",
                     "random", "--dry-run", "--optimizer", "adam", "--scales", "2"]) == 0
    text = capsys.readouterr().out
    assert "estimate: memory" in text and "x 2 scale(s)" in text and not out.exists()


def test_bad_arguments_exit_with_a_message(tmp_path):
    content = _write(tmp_path / "c.png", "RGB")
    out = str(tmp_path / "o.png")
    with pytest.raises(SystemExit, match="no layer named 'conv7_1'"):
        cli.main([str(content), str(content), "-o", out, "--network", "random",
                  "--style-layers", "conv1_1,conv7_1"])
    with pytest.raises(SystemExit, match="--scales must be an integer"):
        cli.main([str(content), str(content), "-o", out, "--network", "random", "--scales", "x"])
    with pytest.raises(SystemExit, match="No such file|cannot|not found"):
        cli.main([str(tmp_path / "missing.png"), str(content), "-o", out, "--network", "random"])


def test_network_choice_and_scales(monkeypatch):
    def args(**kw):
        return argparse.Namespace(**{"network": "auto", "weights": None, **kw})

    assert cli.choose_network(args(weights="vgg19.safetensors")) == ("vgg19", "vgg19.safetensors")
    assert cli.choose_network(args(weights="x/model.json")) == ("darknet", "x/model.json")
    assert cli.choose_network(args(network="random")) == ("random", None)
    monkeypatch.setattr("minicnn_style_transfer.networks.default_darknet_path", lambda: None)
    assert cli.choose_network(args()) == ("random", None)
    assert cli.auto_scales(256, "auto") == 1 and cli.auto_scales(512, "auto") == 1
    assert cli.auto_scales(1024, "auto") == 2 and cli.auto_scales(2048, "auto") == 3
    assert cli.auto_scales(256, "3") == 3
