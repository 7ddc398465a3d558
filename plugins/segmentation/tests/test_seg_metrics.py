"""Confusion matrix, IoU, mean IoU and pixel accuracy against examples computed by hand."""

import numpy as np
import pytest

from minicnn_segmentation import (
    SegmentationMetrics,
    class_accuracy,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

# Truth and prediction of a 2x3 image; the 255 pixel is ignored. By hand, the five counted pixels
# are (truth, prediction) = (0, 0), (0, 1), (1, 1), (1, 1), (2, 2):
#   cm = [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
#   IoU_0 = 1 / (2 + 1 - 1) = 1/2, IoU_1 = 2 / (2 + 3 - 2) = 2/3, IoU_2 = 1 / 1 = 1
#   mean IoU = (1/2 + 2/3 + 1) / 3 = 13/18, pixel accuracy = 4/5
TARGET = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(PRED, TARGET, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    assert cm.dtype == np.int64


def test_iou_mean_iou_and_pixel_accuracy_by_hand():
    cm = confusion_matrix(PRED, TARGET, 3)
    np.testing.assert_allclose(iou_per_class(cm), [1 / 2, 2 / 3, 1.0])
    assert mean_iou(cm) == pytest.approx(13 / 18)
    assert pixel_accuracy(cm) == pytest.approx(4 / 5)
    np.testing.assert_allclose(class_accuracy(cm), [1 / 2, 1.0, 1.0])


def test_absent_class_is_excluded_from_the_mean():
    cm = confusion_matrix(PRED, TARGET, 5)        # classes 3 and 4: in neither truth nor pred
    iou = iou_per_class(cm)
    assert np.isnan(iou[3]) and np.isnan(iou[4])
    assert mean_iou(cm) == pytest.approx(13 / 18)


def test_class_only_predicted_counts_as_zero():
    # class 2 appears only in the prediction: IoU 0, and it drags the mean down
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])
    cm = confusion_matrix(pred, target, 3)
    np.testing.assert_allclose(iou_per_class(cm), [1 / 2, 1.0, 0.0])
    assert mean_iou(cm) == pytest.approx(0.5)
    assert pixel_accuracy(cm) == pytest.approx(0.75)


def test_perfect_and_all_ignored():
    cm = confusion_matrix(TARGET.clip(0, 2), TARGET.clip(0, 2), 3)
    assert mean_iou(cm) == 1.0 and pixel_accuracy(cm) == 1.0
    empty = confusion_matrix(np.zeros(3, int), np.full(3, 255), 3)
    assert empty.sum() == 0
    assert np.isnan(mean_iou(empty)) and np.isnan(pixel_accuracy(empty))


def test_custom_ignore_index():
    target = np.array([0, 1, -1, 1])
    pred = np.array([0, 1, 1, 0])
    cm = confusion_matrix(pred, target, 2, ignore_index=-1)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])


def test_bad_values_are_errors():
    with pytest.raises(ValueError, match=r"target .* value 7 is outside \[0, 3\)"):
        confusion_matrix(np.zeros(2, int), np.array([0, 7]), 3)
    with pytest.raises(ValueError, match=r"prediction value 3 is outside \[0, 3\)"):
        confusion_matrix(np.array([0, 3]), np.zeros(2, int), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 3)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(np.zeros(2), np.zeros(2, int), 3)


def test_running_metrics_accumulate_like_one_matrix():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (6, 5, 7))
    target[rng.random(target.shape) < 0.1] = 255
    logits = rng.standard_normal((6, 4, 5, 7))
    metrics = SegmentationMetrics(4)
    metrics.update(logits[:2], target[:2]).update(logits[2:], target[2:])
    result = metrics.compute()
    pred = logits.argmax(axis=1)
    keep = target != 255
    # an independent count: loop over the pixels
    cm = np.zeros((4, 4), int)
    for t, p in zip(target[keep], pred[keep], strict=True):
        cm[t, p] += 1
    np.testing.assert_array_equal(metrics.cm, cm)
    ious = [cm[c, c] / (cm[c].sum() + cm[:, c].sum() - cm[c, c]) for c in range(4)]
    assert result["miou"] == pytest.approx(np.mean(ious))
    assert result["pixel_acc"] == pytest.approx(np.trace(cm) / cm.sum())
    metrics.update(pred[:1], target[:1])          # labels are accepted as well as logits
    assert metrics.cm.sum() == cm.sum() + keep[0].sum()
