"""Classification metrics on logits: top-k accuracy (the ImageNet top-5), running averages.

Logits and labels may be numpy arrays or device arrays (a model on ``"cuda"`` returns its logits
on the device): they are copied to the host once per call (``minicnn.to_numpy``, the identity on
numpy arrays).
"""

import numpy as np

from .device import to_numpy


def topk_correct(logits, labels, k=1):
    """How many rows have their label among the k largest logits (ties broken by index, stably:
    a row counts when fewer than k logits beat its label's, a tie beating it when it comes first).
    ``logits`` (N, C), ``labels`` (N,) ints; labels outside [0, C) never count."""
    logits = to_numpy(logits)
    labels = to_numpy(labels).astype(np.int64, copy=False)
    n, classes = logits.shape
    if k <= 1:
        return int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
    if k >= classes:
        return int(np.count_nonzero((labels >= 0) & (labels < classes)))
    valid = (labels >= 0) & (labels < classes)
    safe = np.where(valid, labels, 0)
    target = logits[np.arange(n), safe][:, None]
    earlier = np.arange(classes)[None, :] < safe[:, None]
    rank = np.count_nonzero((logits > target) | ((logits == target) & earlier), axis=1)
    correct = valid & (rank < k) & ~np.isnan(target[:, 0])
    return int(np.count_nonzero(correct))


def accuracy(logits, labels, k=1):
    """The fraction of rows whose label is among the k largest logits (see ``topk_correct``)."""
    labels = to_numpy(labels)
    return topk_correct(logits, labels, k) / len(labels) if len(labels) else float("nan")


class RunningMean:
    """Weighted mean of per-batch values (weights = batch sizes)."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def add(self, value, weight=1):
        self.total += float(value) * weight
        self.count += weight

    @property
    def value(self):
        return self.total / self.count if self.count else float("nan")
