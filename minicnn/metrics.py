"""Classification metrics on logits: top-k accuracy (the ImageNet top-5), running averages."""

import numpy as np


def topk_correct(logits, labels, k=1):
    """How many rows have their label among the k largest logits (ties broken by index, stably)."""
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    k = min(k, logits.shape[1])
    if k == 1:
        return int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int(np.count_nonzero((top == labels[:, None]).any(axis=1)))


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
