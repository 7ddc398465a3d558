"""Region proposal network: anchor targets, proposals and the RPN's multi-task loss.

The RPN head (a 3x3 conv, ReLU, and two 1x1 convs) is a minicnn graph built by
:func:`minicnn_detection.model.rpn_head`; it outputs, per feature position and anchor, one
objectness logit ``(N, A, H, W)`` (a sigmoid: the two-way softmax of py-faster-rcnn has the same
expressive power, one logit being the difference of two) and box deltas ``(N, 4 A, H, W)``
(channel ``4 a + j``). Both are flattened position-major, ``((h W + w) A + a)``, the order of
:func:`minicnn_detection.grid_anchors`.
"""

import numpy as np

from .boxes import box_iou, clip_boxes, decode_boxes, encode_boxes, nms, remove_small_boxes
from .losses import binary_cross_entropy_with_logits, smooth_l1


def flatten_rpn(logits, deltas):
    """``(N, A, H, W)``, ``(N, 4A, H, W)`` -> ``(N, H W A)``, ``(N, H W A, 4)``."""
    n = logits.shape[0]
    return (logits.transpose(0, 2, 3, 1).reshape(n, -1),
            deltas.transpose(0, 2, 3, 1).reshape(n, -1, 4))


def unflatten_rpn(g_logits, g_deltas, shape):
    """The inverse of :func:`flatten_rpn` for gradients; ``shape`` is the logits' (N, A, H, W)."""
    n, a, h, w = shape
    return (np.ascontiguousarray(g_logits.reshape(n, h, w, a).transpose(0, 3, 1, 2)),
            np.ascontiguousarray(g_deltas.reshape(n, h, w, 4 * a).transpose(0, 3, 1, 2)))


def anchor_targets(anchors, gt_boxes, image_size, rng, positive_iou=0.7, negative_iou=0.3,
                   batch_size=256, positive_fraction=0.5, allowed_border=0.0):
    """py-faster-rcnn's ``anchor_target_layer`` for one image.

    Returns ``(labels (A_total,) int8: 1 object, 0 background, -1 ignored; targets (A_total, 4)
    encoded boxes (zero where not positive))``. Anchors crossing the image border by more than
    ``allowed_border`` are ignored (``None``: none is). An anchor is positive when its IoU with
    some ground-truth box is >= ``positive_iou`` or it is one of a box's best anchors (ties
    included; a box that overlaps no anchor at all has none); negative when its best IoU is
    < ``negative_iou``. At most ``positive_fraction * batch_size`` positives are kept (a random
    subset), and background fills the batch up to ``batch_size``.
    """
    total = len(anchors)
    labels = np.full(total, -1, np.int8)
    targets = np.zeros((total, 4), np.float64)
    if allowed_border is None:
        inside = np.arange(total)
    else:
        height, width = image_size
        a = anchors
        inside = np.flatnonzero((a[:, 0] >= -allowed_border) & (a[:, 1] >= -allowed_border)
                                & (a[:, 2] < width + allowed_border)
                                & (a[:, 3] < height + allowed_border))
    if len(inside) == 0:
        return labels, targets
    sub = np.full(len(inside), -1, np.int8)
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    if len(gt):
        iou = np.nan_to_num(box_iou(anchors[inside], gt), nan=0.0)
        best_gt = iou.argmax(axis=1)
        best = iou[np.arange(len(inside)), best_gt]
        sub[best < negative_iou] = 0
        gt_best = iou.max(axis=0)
        rows = np.flatnonzero(((iou == gt_best[None, :]) & (gt_best[None, :] > 0)).any(axis=1))
        sub[rows] = 1
        sub[best >= positive_iou] = 1
    else:
        sub[:] = 0
    pos = np.flatnonzero(sub == 1)
    max_pos = int(positive_fraction * batch_size)
    if len(pos) > max_pos:
        sub[rng.choice(pos, len(pos) - max_pos, replace=False)] = -1
    neg = np.flatnonzero(sub == 0)
    max_neg = batch_size - int((sub == 1).sum())
    if len(neg) > max_neg:
        sub[rng.choice(neg, len(neg) - max_neg, replace=False)] = -1
    labels[inside] = sub
    pos = np.flatnonzero(sub == 1)
    if len(pos):
        targets[inside[pos]] = encode_boxes(anchors[inside[pos]], gt[best_gt[pos]])
    return labels, targets


def rpn_loss(logits, deltas, labels, targets, sigma=3.0):
    """The RPN's loss over a batch: ``(total, {"rpn_cls", "rpn_box"}, g_logits, g_deltas)``.

    ``logits (N, T)``, ``deltas (N, T, 4)`` (flattened), ``labels (N, T)`` (-1 ignored),
    ``targets (N, T, 4)``. Objectness: binary cross-entropy averaged over the sampled anchors of
    the batch; boxes: smooth L1 (``sigma``) summed over positive anchors, divided by the number
    of sampled anchors (py-faster-rcnn's outside weights, torchvision's normalisation).
    """
    sampled = labels >= 0
    positive = labels == 1
    count = max(int(sampled.sum()), 1)
    cls, g_cls_s = binary_cross_entropy_with_logits(logits[sampled], labels[sampled])
    g_logits = np.zeros(logits.shape, np.float64)
    g_logits[sampled] = g_cls_s
    box, g_box_p = smooth_l1(deltas[positive], targets[positive], sigma, 1.0 / count)
    g_deltas = np.zeros(deltas.shape, np.float64)
    g_deltas[positive] = g_box_p
    return cls + box, {"rpn_cls": cls, "rpn_box": box}, g_logits, g_deltas


def propose(anchors, logits, deltas, image_size, pre_nms_top_n, post_nms_top_n, nms_thresh=0.7,
            min_size=0.0):
    """py-faster-rcnn's ``proposal_layer`` for one image: ``(boxes (P, 4), scores (P,))``.

    Decode every anchor's deltas, clip to the image, drop boxes narrower or shorter than
    ``min_size`` pixels, keep the ``pre_nms_top_n`` best by objectness, NMS at ``nms_thresh``,
    keep the ``post_nms_top_n`` best. ``scores`` are objectness probabilities.
    """
    boxes = clip_boxes(decode_boxes(anchors, deltas), image_size)
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores = boxes[keep], logits[keep]
    order = np.argsort(-scores, kind="stable")[:pre_nms_top_n]
    boxes, scores = boxes[order], scores[order]
    keep = nms(boxes, scores, nms_thresh)[:post_nms_top_n]
    return boxes[keep], 1.0 / (1.0 + np.exp(-scores[keep]))
