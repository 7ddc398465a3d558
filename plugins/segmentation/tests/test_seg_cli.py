"""``minicnn segment train`` (tiny) then ``minicnn segment IMAGE --model FILE -o mask.png``."""

import json

import minicnn
import numpy as np
import pytest
from minicnn.cli import main
from minicnn.data import save_image
from minicnn.registry import Registry, set_registry
from PIL import Image

from minicnn_segmentation import SegShapes, plugin


@pytest.fixture(scope="module")
def registry():
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="segmentation")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["segment", "train", "--model", "fcn8s", "--epochs", "2", "--size", "32",
                 "--train-size", "24", "--val-size", "8", "--width", "2", "--batch-size", "8",
                 "--output", str(out), "--no-progress"])
    assert code == 0
    return out


def test_train_writes_model_overlay_curve_and_history(trained, capsys):
    for name in ("model.mcnn", "overlay.png", "curve.png", "history.json"):
        assert (trained / name).is_file(), name
    history = json.loads((trained / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert 0.0 <= history[-1]["val_miou"] <= 1.0 and len(history[-1]["val_iou"]) == 4
    model = minicnn.load(str(trained / "model.mcnn")).eval()
    assert model(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 4, 32, 32)
    with Image.open(trained / "overlay.png") as grid:      # 8 rows of image | truth | prediction
        assert grid.size == (3 * 64 + 2 * 2, 8 * 64 + 7 * 2)


def test_segment_writes_a_palette_png_of_the_image_size(trained, tmp_path, capsys):
    image = SegShapes(1, size=64, seed=3)[0][0][:, :40, :50]   # not a multiple of 32
    save_image(image, tmp_path / "in.png")
    mask_path, overlay_path = tmp_path / "mask.png", tmp_path / "overlay.png"
    assert main(["segment", str(tmp_path / "in.png"), "--model", str(trained / "model.mcnn"),
                 "-o", str(mask_path), "--overlay", str(overlay_path)]) == 0
    with Image.open(mask_path) as mask:
        assert mask.mode == "P" and mask.size == (50, 40)
        assert np.asarray(mask).max() < 4
    with Image.open(overlay_path) as over:
        assert over.mode == "RGB" and over.size == (50, 40)
    assert "in.png: 50x40" in capsys.readouterr().out


def test_segment_several_images_into_a_directory(trained, tmp_path):
    for k in range(2):
        save_image(SegShapes(2, size=32, seed=0)[k][0], tmp_path / f"img{k}.png")
    out = tmp_path / "masks"
    assert main(["segment", str(tmp_path / "img0.png"), str(tmp_path / "img1.png"), "--model",
                 str(trained / "model.mcnn"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0_mask.png", "img1_mask.png"]


def test_segment_errors(trained, tmp_path, capsys):
    with pytest.raises(SystemExit, match="--model FILE"):
        main(["segment", "x.png", "-o", str(tmp_path / "m.png")])
    with pytest.raises(SystemExit, match="unknown model 'nope'"):
        main(["segment", "train", "--model", "nope", "--output", str(tmp_path)])
    with pytest.raises(SystemExit, match="multiple of 32"):
        main(["segment", "train", "--size", "40", "--output", str(tmp_path)])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["segment", str(bad), "--model", str(trained / "model.mcnn"), "-o",
                 str(tmp_path / "m.png")]) == 1
    assert "bad.png" in capsys.readouterr().err


def test_train_on_a_voc_tree(registry, tmp_path):
    from test_seg_voc import make_voc
    make_voc(tmp_path / "VOC2012", ids=[f"2008_{k:06d}" for k in range(5)])
    out = tmp_path / "run"
    assert main(["segment", "train", "--data", "voc", "--data-dir", str(tmp_path / "VOC2012"),
                 "--size", "32", "--epochs", "1", "--train-size", "4", "--val-size", "1",
                 "--width", "2", "--batch-size", "2", "--output", str(out), "--no-progress",
                 "--threads", "1"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history[0]["val_iou"]) == 21
    model = minicnn.load(str(out / "model.mcnn")).eval()
    assert model(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 21, 32, 32)
