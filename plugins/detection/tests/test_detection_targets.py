"""RPN anchor targets, proposals, ROI sampling, the losses' gradients and post-processing,
against loop references and finite differences."""

import numpy as np
import pytest

from minicnn_detection import (
    anchor_targets,
    box_iou,
    decode_boxes,
    generate_anchors,
    grid_anchors,
    head_loss,
    postprocess,
    propose,
    rpn_loss,
    sample_rois,
)
from minicnn_detection.losses import (
    binary_cross_entropy_with_logits,
    smooth_l1,
    softmax_cross_entropy,
)


def slow_anchor_labels(anchors, gt, size, pos=0.7, neg=0.3):
    """py-faster-rcnn's labelling before subsampling, one anchor at a time."""
    h, w = size
    labels = np.full(len(anchors), -1)
    inside = [i for i, a in enumerate(anchors) if a[0] >= 0 and a[1] >= 0 and a[2] < w
              and a[3] < h]
    iou = box_iou(anchors[inside], gt)
    for row, i in enumerate(inside):
        if iou[row].max() < neg:
            labels[i] = 0
    for j in range(len(gt)):
        best = iou[:, j].max()
        for row, i in enumerate(inside):
            if best > 0 and iou[row, j] == best:
                labels[i] = 1
    for row, i in enumerate(inside):
        if iou[row].max() >= pos:
            labels[i] = 1
    return labels


def test_anchor_targets_match_the_slow_labelling():
    anchors = grid_anchors(generate_anchors(8, (0.5, 1, 2), (1.5, 2.5, 3.5)), (8, 8), 8)
    gt = np.array([[10, 12, 30, 28], [40, 5, 60, 20], [2, 40, 14, 60]], float)
    rng = np.random.default_rng(0)
    labels, targets = anchor_targets(anchors, gt, (64, 64), rng, batch_size=10**6,
                                     positive_fraction=1.0)
    np.testing.assert_array_equal(labels, slow_anchor_labels(anchors, gt, (64, 64)))
    pos = np.flatnonzero(labels == 1)
    best = box_iou(anchors[pos], gt).argmax(axis=1)
    np.testing.assert_allclose(decode_boxes(anchors[pos], targets[pos]), gt[best], atol=1e-9)
    assert (targets[labels != 1] == 0).all()


def test_anchor_targets_subsample_and_ignore_the_border():
    anchors = grid_anchors(generate_anchors(8, (0.5, 1, 2), (1.5, 2.5, 3.5)), (8, 8), 8)
    gt = np.array([[10, 12, 30, 28], [40, 5, 60, 20]], float)
    labels, _ = anchor_targets(anchors, gt, (64, 64), np.random.default_rng(1), batch_size=16,
                               positive_fraction=0.25)
    assert (labels == 1).sum() <= 4 and (labels >= 0).sum() == 16
    outside = (anchors[:, 0] < 0) | (anchors[:, 1] < 0) | (anchors[:, 2] >= 64) | \
        (anchors[:, 3] >= 64)
    assert (labels[outside] == -1).all()
    labels, _ = anchor_targets(anchors, np.zeros((0, 4)), (64, 64), np.random.default_rng(1),
                               batch_size=16)
    assert (labels == 1).sum() == 0 and (labels == 0).sum() == 16


def test_proposals_decode_clip_filter_and_suppress():
    anchors = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [50, 50, 51, 51],
                        [-5, -5, 5, 5]], float)
    logits = np.array([2.0, 1.0, 0.5, 3.0, -1.0])
    deltas = np.zeros((5, 4))
    boxes, scores = propose(anchors, logits, deltas, (45, 45), 10, 10, nms_thresh=0.5,
                            min_size=2.0)
    # anchor 3 is clipped to nothing, anchor 1 overlaps anchor 0 by IoU 0.68, anchor 4 is clipped
    np.testing.assert_array_equal(boxes, [[0, 0, 10, 10], [30, 30, 40, 40], [0, 0, 5, 5]])
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-logits[[0, 2, 4]])))
    boxes, _ = propose(anchors, logits, deltas, (45, 45), 2, 10, nms_thresh=0.5, min_size=2.0)
    assert len(boxes) == 1                     # top 2 before NMS: anchors 0 and 1


def test_sample_rois_fractions_and_targets():
    rng = np.random.default_rng(0)
    gt = np.array([[10, 10, 30, 30], [40, 40, 60, 50]], float)
    proposals = np.concatenate([gt + rng.uniform(-3, 3, (2, 4)),
                                rng.uniform(0, 40, (50, 2)) @ [[1, 0, 1, 0], [0, 1, 0, 1]]
                                + [0, 0, 8, 8]])
    rois, labels, targets = sample_rois(proposals, gt, [2, 5], rng, batch_size=32,
                                        fg_fraction=0.25, bg_iou_lo=0.0)
    assert len(rois) == 32 and (labels > 0).sum() <= 8
    iou = box_iou(rois, gt)
    fg = labels > 0
    assert (iou[fg].max(axis=1) >= 0.5).all() and (iou[~fg].max(axis=1) < 0.5).all()
    np.testing.assert_array_equal(labels[fg], np.array([2, 5])[iou[fg].argmax(axis=1)])
    np.testing.assert_allclose(decode_boxes(rois[fg], targets[fg], (10, 10, 5, 5)),
                               gt[iou[fg].argmax(axis=1)], atol=1e-9)
    # no proposals at all: the ground truth alone, repeated to fill the batch
    rois, labels, _ = sample_rois(np.zeros((0, 4)), gt, [1, 1], rng, batch_size=8)
    assert len(rois) == 8 and (labels == 1).all()


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        old = x.flat[i]
        x.flat[i] = old + eps
        plus = f(x)
        x.flat[i] = old - eps
        minus = f(x)
        x.flat[i] = old
        g.flat[i] = (plus - minus) / (2 * eps)
    return g


def test_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    t = rng.standard_normal((6, 4))
    for sigma in (1.0, 3.0):
        _, grad = smooth_l1(x, t, sigma, 0.5)
        np.testing.assert_allclose(grad, numeric_grad(
            lambda v, s=sigma: smooth_l1(v, t, s, 0.5)[0], x.copy()), atol=1e-6)
    y = rng.integers(0, 2, (6, 4))
    _, grad = binary_cross_entropy_with_logits(x, y)
    np.testing.assert_allclose(grad, numeric_grad(
        lambda v: binary_cross_entropy_with_logits(v, y)[0], x.copy()), atol=1e-7)
    labels = rng.integers(0, 4, 6)
    _, grad = softmax_cross_entropy(x, labels)
    np.testing.assert_allclose(grad, numeric_grad(
        lambda v: softmax_cross_entropy(v, labels)[0], x.copy()), atol=1e-7)


def test_smooth_l1_values():
    # beta = 1 / sigma^2 = 1/9: quadratic below, linear above
    assert smooth_l1([0.1], [0.0], sigma=3.0)[0] == pytest.approx(0.5 * 9 * 0.01)
    assert smooth_l1([1.0], [0.0], sigma=3.0)[0] == pytest.approx(1.0 - 0.5 / 9)


def test_rpn_and_head_loss_gradients():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 12))
    deltas = rng.standard_normal((2, 12, 4))
    labels = rng.integers(-1, 2, (2, 12))
    targets = rng.standard_normal((2, 12, 4))
    _, parts, g_l, g_d = rpn_loss(logits, deltas, labels, targets, sigma=3.0)
    np.testing.assert_allclose(g_l, numeric_grad(
        lambda v: rpn_loss(v, deltas, labels, targets)[0], logits.copy()), atol=1e-7)
    np.testing.assert_allclose(g_d, numeric_grad(
        lambda v: rpn_loss(logits, v, labels, targets)[0], deltas.copy()), atol=1e-6)
    scores = rng.standard_normal((5, 3))
    box = rng.standard_normal((5, 12))
    roi_labels = np.array([0, 1, 2, 0, 2])
    roi_targets = rng.standard_normal((5, 4))
    _, _, g_s, g_b = head_loss(scores, box, roi_labels, roi_targets)
    np.testing.assert_allclose(g_b, numeric_grad(
        lambda v: head_loss(scores, v, roi_labels, roi_targets)[0], box.copy()), atol=1e-6)
    assert (g_b[[0, 3]] == 0).all() and (g_b[1, :4] == 0).all()   # background / other classes


def test_postprocess_thresholds_and_per_class_nms():
    proposals = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    logits = np.log(np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.97, 0.02, 0.01]]))
    out = postprocess(logits, np.zeros((3, 12)), proposals, (40, 40), score_thresh=0.05,
                      nms_thresh=0.5)
    # class 1: proposals 0 and 1 overlap (IoU 0.68), only 0 stays; class 2: 0.1 and 0.1 boxes
    assert out["labels"].tolist() == [1, 2] and out["scores"][0] == pytest.approx(0.8)
    np.testing.assert_allclose(out["boxes"][0], proposals[0])
    assert postprocess(logits, np.zeros((3, 12)), proposals, (40, 40), 0.9)["boxes"].shape \
        == (0, 4)
