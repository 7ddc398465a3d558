"""The detection losses with their gradients, in numpy (they act on a few thousand numbers).

* :func:`smooth_l1`: py-faster-rcnn's ``SmoothL1Loss`` with ``sigma``: per element
  ``0.5 (sigma d)^2`` if ``|d| < 1 / sigma^2`` else ``|d| - 0.5 / sigma^2`` (torchvision's
  ``smooth_l1_loss`` with ``beta = 1 / sigma^2``: sigma 3 is beta 1/9), summed, times ``weight``;
* :func:`binary_cross_entropy_with_logits` (the RPN's objectness, mean over sampled anchors);
* :func:`softmax_cross_entropy` (the Fast R-CNN classifier, mean over sampled ROIs).

Each returns ``(value, gradient with respect to its first argument)``.
"""

import numpy as np


def smooth_l1(pred, target, sigma=1.0, weight=1.0):
    """``(weight * sum smooth_l1(pred - target), gradient)``; see the module docstring."""
    d = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    beta = 1.0 / (sigma * sigma)
    small = np.abs(d) < beta
    value = np.where(small, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)
    grad = np.where(small, d / beta, np.sign(d))
    return float(weight * value.sum()), weight * grad


def binary_cross_entropy_with_logits(logits, labels):
    """Mean over elements of ``-[y log s(x) + (1 - y) log(1 - s(x))]``, computed stably."""
    x = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    if x.size == 0:
        return 0.0, np.zeros_like(x)
    value = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    grad = (1.0 / (1.0 + np.exp(-x)) - y) / x.size
    return float(value.mean()), grad


def softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean over rows of ``-log softmax(logits)[label]``."""
    p = softmax(logits)
    n = len(p)
    if n == 0:
        return 0.0, np.zeros_like(p)
    rows = np.arange(n)
    value = -np.log(np.maximum(p[rows, labels], 1e-300)).mean()
    grad = p.copy()
    grad[rows, labels] -= 1.0
    return float(value), grad / n
