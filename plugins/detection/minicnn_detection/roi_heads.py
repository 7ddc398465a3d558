"""The Fast R-CNN head's targets, loss and post-processing (the network itself, ROI pooling and
fully connected layers, is a minicnn graph: :func:`minicnn_detection.model.fast_rcnn_head`).

* :func:`sample_rois`: py-faster-rcnn's ``proposal_target_layer``: proposals plus the
  ground-truth boxes, foreground at IoU >= ``fg_iou``, background in ``[bg_iou_lo, bg_iou_hi)``;
  ``batch_size`` ROIs an image of which at most ``fg_fraction`` foreground. The count is fixed:
  when too few candidates exist, background (or foreground) is drawn again with replacement;
* :func:`head_loss`: softmax cross-entropy (mean over ROIs) plus smooth L1 on the ground-truth
  class's box deltas of foreground ROIs, summed and divided by the number of ROIs;
* :func:`postprocess`: class probabilities, class-specific boxes decoded and clipped, per class a
  score threshold and NMS, the best ``detections_per_img``.
"""

import numpy as np

from .boxes import batched_nms, box_iou, clip_boxes, decode_boxes, encode_boxes, remove_small_boxes
from .losses import smooth_l1, softmax, softmax_cross_entropy


def sample_rois(proposals, gt_boxes, gt_labels, rng, batch_size=128, fg_fraction=0.25,
                fg_iou=0.5, bg_iou_hi=0.5, bg_iou_lo=0.1, weights=(10.0, 10.0, 5.0, 5.0)):
    """ROIs for one image: ``(rois (B, 4), labels (B,) int64 (0 background), targets (B, 4))``
    with ``B = batch_size``; targets are the encoded ground-truth boxes (zero for background)."""
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    candidates = np.concatenate([np.asarray(proposals, np.float64).reshape(-1, 4), gt])
    if len(gt):
        iou = np.nan_to_num(box_iou(candidates, gt), nan=0.0)
        best_gt = iou.argmax(axis=1)
        best = iou[np.arange(len(candidates)), best_gt]
    else:
        best_gt = np.zeros(len(candidates), np.int64)
        best = np.zeros(len(candidates))
    fg = np.flatnonzero(best >= fg_iou)
    bg = np.flatnonzero((best < bg_iou_hi) & (best >= bg_iou_lo))
    if not len(bg):                       # e.g. bg_iou_lo too high for these proposals
        bg = np.flatnonzero(best < bg_iou_hi)
    n_fg = min(int(round(fg_fraction * batch_size)), len(fg))
    fg = rng.choice(fg, n_fg, replace=False) if n_fg else fg[:0]
    n_bg = batch_size - n_fg
    if len(bg):
        bg = rng.choice(bg, n_bg, replace=len(bg) < n_bg)
    elif n_bg:                            # nothing below fg_iou at all: repeat foreground
        fg = np.concatenate([fg, rng.choice(np.flatnonzero(best >= fg_iou), n_bg)])
        n_fg = len(fg)
    keep = np.concatenate([fg, bg]).astype(np.int64)
    rois = candidates[keep]
    labels = np.zeros(len(keep), np.int64)
    labels[:n_fg] = gt_labels[best_gt[keep[:n_fg]]] if len(gt) else 0
    targets = np.zeros((len(keep), 4))
    if n_fg:
        targets[:n_fg] = encode_boxes(rois[:n_fg], gt[best_gt[keep[:n_fg]]], weights)
    return rois, labels, targets


def head_loss(class_logits, box_deltas, labels, targets, sigma=1.0):
    """``(total, {"cls", "box"}, g_class_logits, g_box_deltas)`` over all sampled ROIs of the
    batch; ``box_deltas (R, 4 (K + 1))``, class-specific."""
    cls, g_cls = softmax_cross_entropy(class_logits, labels)
    g_box = np.zeros(box_deltas.shape, np.float64)
    fg = np.flatnonzero(labels > 0)
    box = 0.0
    if len(fg):
        cols = 4 * labels[fg][:, None] + np.arange(4)[None, :]
        pred = box_deltas[fg[:, None], cols]
        box, g = smooth_l1(pred, targets[fg], sigma, 1.0 / max(len(labels), 1))
        g_box[fg[:, None], cols] = g
    return cls + box, {"cls": cls, "box": box}, g_cls, g_box


def postprocess(class_logits, box_deltas, proposals, image_size, score_thresh=0.05,
                nms_thresh=0.5, detections_per_img=100, weights=(10.0, 10.0, 5.0, 5.0),
                min_size=1e-2):
    """Detections for one image: ``{"boxes" (D, 4), "scores" (D,), "labels" (D,)}`` sorted by
    decreasing score (torchvision's ``postprocess_detections``)."""
    probs = softmax(class_logits)
    k1 = probs.shape[1]
    boxes = clip_boxes(decode_boxes(proposals, box_deltas, weights), image_size)
    boxes = boxes.reshape(-1, k1, 4)[:, 1:].reshape(-1, 4)
    scores = probs[:, 1:].reshape(-1)
    labels = np.tile(np.arange(1, k1), len(probs))
    keep = np.flatnonzero(scores > score_thresh)
    keep = keep[remove_small_boxes(boxes[keep], min_size)]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
    return {"boxes": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
            "labels": labels[keep].astype(np.int64)}
