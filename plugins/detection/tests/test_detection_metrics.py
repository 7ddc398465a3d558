"""VOC and COCO average precision on hand-computed cases, and their edge cases."""

import numpy as np
import pytest

from minicnn_detection import average_precision, coco_evaluate, voc_evaluate


def det(boxes, scores, labels):
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "scores": np.array(scores, float),
            "labels": np.array(labels, int)}


def gt(boxes, labels, difficult=None):
    t = {"boxes": np.array(boxes, float).reshape(-1, 4), "labels": np.array(labels, int)}
    if difficult is not None:
        t["difficult"] = np.array(difficult, bool)
    return t


# one class, two objects; detections: a hit (0.9), a duplicate of it (0.8), the second hit (0.7)
TARGETS = [gt([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1])]
DETECTIONS = [det([[0, 0, 10, 9], [1, 0, 10, 10], [20, 21, 30, 30]], [0.9, 0.8, 0.7], [1, 1, 1])]


def test_voc_ap_by_hand():
    # recall 0.5, 0.5, 1; precision 1, 1/2, 2/3
    area = voc_evaluate(DETECTIONS, TARGETS, method="area")
    assert area["ap"][1] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    eleven = voc_evaluate(DETECTIONS, TARGETS, method="11point")
    assert eleven["map"] == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    assert area["recall"][1] == 1.0 and area["precision"][1] == pytest.approx(2 / 3)


def test_coco_101_point_by_hand():
    result = coco_evaluate(DETECTIONS, TARGETS, iou_thresholds=[0.5])
    assert result["map"] == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)


def test_coco_averages_over_thresholds():
    # every detection has IoU 0.7 with its object: a hit up to 0.70, a miss above
    targets = [gt([[0, 0, 10, 10]], [1]), gt([[5, 5, 15, 15]], [2])]
    shrink = 10 - 10 * 0.7            # a 10 x 7 box inside a 10 x 10 one: IoU 0.7
    detections = [det([[0, 0, 10, 10 - shrink]], [0.9], [1]),
                  det([[5, 5, 15, 15 - shrink]], [0.8], [2])]
    result = coco_evaluate(detections, targets)
    assert result["map50"] == pytest.approx(1.0) and result["map75"] == pytest.approx(0.0)
    assert result["map"] == pytest.approx(0.5)


def test_perfect_and_empty_detections():
    targets = [gt([[0, 0, 5, 5], [6, 6, 9, 9]], [1, 2]), gt([[1, 1, 4, 4]], [2])]
    perfect = [det(t["boxes"], np.linspace(1, 0.5, len(t["labels"])), t["labels"])
               for t in targets]
    assert voc_evaluate(perfect, targets)["map"] == pytest.approx(1.0)
    assert coco_evaluate(perfect, targets)["map"] == pytest.approx(1.0)
    nothing = [det([], [], []) for _ in targets]
    assert voc_evaluate(nothing, targets)["map"] == 0.0
    assert coco_evaluate(nothing, targets)["map"] == 0.0


def test_wrong_class_is_a_false_positive_and_a_miss():
    targets = [gt([[0, 0, 10, 10]], [1])]
    result = voc_evaluate([det([[0, 0, 10, 10]], [0.9], [2])], targets)
    assert result["ap"] == {1: 0.0} and result["map"] == 0.0


def test_difficult_objects_neither_count_nor_penalise():
    targets = [gt([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1], difficult=[False, True])]
    detections = [det([[0, 0, 10, 10], [20, 20, 30, 30]], [0.5, 0.9], [1, 1])]
    assert voc_evaluate(detections, targets)["ap"][1] == pytest.approx(1.0)


def test_classes_without_ground_truth_are_left_out():
    targets = [gt([[0, 0, 10, 10]], [1])]
    detections = [det([[0, 0, 10, 10], [3, 3, 5, 5]], [0.9, 0.8], [1, 3])]
    result = voc_evaluate(detections, targets, num_classes=3)
    assert result["ap"] == {1: pytest.approx(1.0)}


def test_average_precision_methods_and_errors():
    assert average_precision([], [], "area") == 0.0
    assert average_precision([1.0], [1.0], "11point") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="method"):
        average_precision([1.0], [1.0], "auc")
    with pytest.raises(ValueError, match="2 detection entries for 1 images"):
        voc_evaluate(DETECTIONS * 2, TARGETS)
