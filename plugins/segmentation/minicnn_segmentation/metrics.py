"""Segmentation metrics from a confusion matrix: per-class IoU, mean IoU, pixel accuracy.

``cm[t, p]`` counts the pixels of true class ``t`` predicted as ``p``; pixels whose truth is the
ignore label (255, VOC's object borders) are left out. Then, per class ``c``::

    IoU_c = cm[c, c] / (sum_p cm[c, p] + sum_t cm[t, c] - cm[c, c])     (TP / (TP + FN + FP))

A class absent from both the truth and the predictions has no IoU (NaN) and is excluded from the
mean IoU, as in the VOC and Cityscapes evaluations. Pixel accuracy is ``trace(cm) / sum(cm)``. The
matrix is accumulated over a whole data set before dividing (VOC's definition), not averaged per
image.
"""

import numpy as np

IGNORE_INDEX = 255


def confusion_matrix(pred, target, num_classes, ignore_index=IGNORE_INDEX):
    """``(num_classes, num_classes) int64`` counts, rows true class, columns predicted class.

    ``pred`` and ``target`` are integer arrays of one shape; target pixels equal to
    ``ignore_index`` are skipped. Any other value outside ``[0, num_classes)`` is a ValueError.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: prediction shape {pred.shape} differs from target "
                         f"shape {target.shape}")
    if pred.dtype.kind not in "iu" or target.dtype.kind not in "iu":
        raise ValueError(f"confusion_matrix: predictions and targets must be integer class "
                         f"indices, got {pred.dtype} and {target.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be a positive int, got "
                         f"{num_classes!r}")
    keep = target != ignore_index if ignore_index is not None else np.ones(target.shape, bool)
    t = target[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    for what, values in ((f"target (ignore index {ignore_index})", t), ("prediction", p)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values[(values < 0) | (values >= num_classes)][0]
            raise ValueError(f"confusion_matrix: {what} value {bad} is outside "
                             f"[0, {num_classes})")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def iou_per_class(cm):
    """IoU of every class (float64); NaN for a class absent from both truth and predictions."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(cm):
    """Mean of the per-class IoUs over the classes present in truth or predictions (NaN if none)."""
    iou = iou_per_class(cm)
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")


def pixel_accuracy(cm):
    """Correct pixels over all counted pixels (NaN if none)."""
    cm = np.asarray(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def class_accuracy(cm):
    """Per-class recall ``cm[c, c] / sum_p cm[c, p]`` (NaN for a class absent from the truth)."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(cm) / np.where(rows > 0, rows, 1), np.nan)


class SegmentationMetrics:
    """Accumulates a confusion matrix batch by batch: ``update(logits or labels, target)``, then
    ``compute()`` gives ``{"miou", "pixel_acc", "mean_class_acc", "iou"}``."""

    def __init__(self, num_classes, ignore_index=IGNORE_INDEX):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.cm = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def reset(self):
        self.cm[:] = 0

    def update(self, pred, target):
        """``pred``: (N, C, H, W) scores (argmax over C is taken) or (N, H, W) labels."""
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.ndim == target.ndim + 1:
            pred = pred.argmax(axis=1)
        self.cm += confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        return self

    def compute(self):
        acc = class_accuracy(self.cm)
        return {"miou": mean_iou(self.cm), "pixel_acc": pixel_accuracy(self.cm),
                "mean_class_acc": float(np.nanmean(acc)) if not np.isnan(acc).all() else
                float("nan"), "iou": iou_per_class(self.cm)}
