"""Training learns: quick runs well above the all-background score on held-out SegShapes.

The 0.85 mean IoU target itself takes minutes: ``examples/train_target.py`` measures it (see the
README); ``test_seg_target_script.py`` runs that script on tiny settings."""

import minicnn
import numpy as np
import pytest
from minicnn import NonFiniteError

from minicnn_segmentation import (
    SegShapes,
    evaluate_segmentation,
    fcn8s,
    predict_masks,
    train_segmentation,
    unet,
)


def _chance_miou(masks, num_classes):
    """Mean IoU of the best constant prediction (everything background) on these masks."""
    return (masks == 0).mean() / num_classes


# One numba thread (conftest sets it for every test too): fast on a busy two-core machine, and the
# trajectory does not depend on the machine's core count.
QUICK = dict(epochs=2, batch_size=8, progress=False, num_threads=1)


def test_quick_fcn8s_learns_shapes():
    minicnn.manual_seed(0)
    train = SegShapes(1000, size=32, num_classes=2, seed=0)     # foreground vs background
    val = SegShapes(96, size=32, num_classes=2, seed=1)
    model = fcn8s(num_classes=2, width=8)
    lines = []
    history = train_segmentation(model, train, val, lr=3e-3, log=lines.append, **QUICK)
    assert len(history) == 2 and len(lines) == 2 and "val mIoU" in lines[0]
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    chance = _chance_miou(val.masks, 2)                          # about 0.44
    final = history[-1]["val_miou"]
    assert final > chance + 0.15, ([h["val_miou"] for h in history], chance)
    # the reported value is the one an independent evaluation gives
    again = evaluate_segmentation(model, val, num_threads=1)
    assert again["miou"] == pytest.approx(final)
    x, y = val.arrays()
    pred = predict_masks(model, x, num_threads=1)
    assert (pred == y).mean() == pytest.approx(history[-1]["val_pixel_acc"])


def test_quick_unet_learns_shapes():
    minicnn.manual_seed(0)
    train = SegShapes(1000, size=32, num_classes=2, seed=0)
    val = SegShapes(96, size=32, num_classes=2, seed=1)
    model = unet(num_classes=2, base=4, depth=2)
    history = train_segmentation(model, train, val, lr=5e-3, log=None, **QUICK)
    chance = _chance_miou(val.masks, 2)
    assert history[-1]["val_miou"] > chance + 0.15, [h["val_miou"] for h in history]


def test_divergence_is_reported():
    model = unet(num_classes=2, base=2, depth=1)
    train = SegShapes(8, size=16, num_classes=2, seed=0)
    with pytest.raises(NonFiniteError, match="loss is nan at step"):
        train_segmentation(model, train, epochs=1, batch_size=4, lr=1e30, optimizer="sgd",
                           progress=False, log=None)


def test_options_are_checked():
    model = unet(num_classes=2, base=2, depth=1)
    with pytest.raises(ValueError, match="optimizer"):
        train_segmentation(model, SegShapes(4, size=16), optimizer="rmsprop")
    with pytest.raises(ValueError, match="schedule"):
        train_segmentation(model, SegShapes(4, size=16), schedule="step")


def test_ignore_label_in_training_and_evaluation():
    minicnn.manual_seed(0)
    data = SegShapes(16, size=32, seed=0, ignore_border=1)
    assert (data.masks == 255).any()
    model = unet(num_classes=4, base=2, depth=1)
    history = train_segmentation(model, data, data, epochs=1, batch_size=8, log=None,
                                 progress=False, num_threads=1)
    assert np.isfinite(history[0]["loss"]) and np.isfinite(history[0]["val_loss"])
    # ignored pixels do not count: the metrics equal those of the masks with the band removed
    x, y = data.arrays()
    pred = predict_masks(model, x, num_threads=1)
    keep = y != 255
    assert history[0]["val_pixel_acc"] == pytest.approx((pred[keep] == y[keep]).mean())
