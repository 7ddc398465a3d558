"""``examples/train_target.py`` (the script that measures the 0.85 mean IoU target) on tiny
settings: it trains, evaluates on the held-out seed, saves a model the CLI can use, draws the
picture, and its exit status follows the target."""

import importlib.util
import json
from pathlib import Path

import minicnn
import numpy as np
import pytest
from PIL import Image

from minicnn_segmentation import SegShapes, evaluate_segmentation

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_target.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("seg_train_target", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--train-size", "16", "--val-size", "4", "--held-out-size", "6", "--epochs", "1",
        "--size", "32", "--width", "2", "--batch-size", "8", "--threads", "1", "--quiet"]


def test_tiny_run_reports_the_held_out_metrics(script, tmp_path, capsys):
    picture = tmp_path / "pic.png"
    summary = script.main(TINY + ["--output", str(tmp_path / "run"), "--picture", str(picture),
                                  "--rows", "3", "--target", "0", "--budget", "0"])
    assert summary["met"] and "target (mean IoU >= 0.0" in capsys.readouterr().out
    assert len(summary["val_miou"]) == 1 and len(summary["held_out_iou"]) == 4
    # the reported numbers are those of the saved model on the held-out seed
    model = minicnn.load(str(tmp_path / "run" / "model.mcnn"))
    held_out = SegShapes(6, size=32, seed=script.HELD_OUT_SEED)
    again = evaluate_segmentation(model, held_out, num_threads=1)
    assert again["miou"] == pytest.approx(summary["held_out_miou"])
    assert again["pixel_acc"] == pytest.approx(summary["held_out_pixel_acc"])
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["held_out_miou"] == pytest.approx(summary["held_out_miou"])
    with Image.open(picture) as image:   # title, 3 rows of image | truth | prediction, legend
        assert image.mode == "RGB" and image.size == (3 * 64 + 2 * 4, 18 + 3 * 64 + 2 * 4 + 22)
        tiles = np.asarray(image)
    # the first column is the plain image, enlarged twice
    rows = script.picture_rows(held_out.masks, 3)
    assert len(rows) == 3
    x, _ = held_out.get_batch(rows[:1])
    np.testing.assert_allclose(tiles[18:18 + 64:2, 0:64:2] / 255.0,
                               np.transpose(x[0], (1, 2, 0)), atol=1 / 255 + 1e-6)


def test_missed_target_is_the_exit_status(script, capsys):
    summary = script.main(TINY + ["--target", "1.01"])
    assert not summary["met"] and "MISSED" in capsys.readouterr().out


def test_defaults_are_the_cli_defaults(script):
    from minicnn_segmentation.cli import TRAIN_DEFAULTS
    args = vars(script.parse_args([]))
    assert {k: args[k] for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
    assert args["target"] == 0.85 and args["budget"] == 600
