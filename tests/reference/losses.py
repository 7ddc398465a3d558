"""Slow loop oracles of the losses in float64: PyTorch's definitions, element by element.

Each takes numpy arrays and returns a Python float; none shares code with minicnn's kernels.
"""

import itertools
import math

import numpy as np


def _positions(shape):
    """Every (n, spatial...) index of a class-score array of shape (N, C, d1, ...)."""
    return itertools.product(range(shape[0]), *(range(d) for d in shape[2:]))


def _log_softmax_row(scores):
    m = max(scores)
    total = sum(math.exp(s - m) for s in scores)
    return [s - m - math.log(total) for s in scores]


def cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    x = np.asarray(x, np.float64)
    n_class = x.shape[1]
    w = [1.0] * n_class if weight is None else [float(v) for v in weight]
    total, denom = 0.0, 0.0
    for pos in _positions(x.shape):
        n, rest = pos[0], pos[1:]
        target = int(t[(n,) + rest])
        if target == ignore_index:
            continue
        logp = _log_softmax_row([float(x[(n, c) + rest]) for c in range(n_class)])
        nll = -w[target] * logp[target]
        smooth = -sum(w[c] * logp[c] for c in range(n_class))
        total += (1.0 - label_smoothing) * nll + label_smoothing / n_class * smooth
        denom += w[target]
    if reduction == "sum":
        return total
    return total / denom if denom else math.nan


def nll_loss(x, t, weight=None, ignore_index=-100, reduction="mean"):
    x = np.asarray(x, np.float64)
    n_class = x.shape[1]
    w = [1.0] * n_class if weight is None else [float(v) for v in weight]
    total, denom = 0.0, 0.0
    for pos in _positions(x.shape):
        n, rest = pos[0], pos[1:]
        target = int(t[(n,) + rest])
        if target == ignore_index:
            continue
        total += -w[target] * float(x[(n, target) + rest])
        denom += w[target]
    if reduction == "sum":
        return total
    return total / denom if denom else math.nan


def _reduce(values, reduction):
    total = 0.0
    for v in values:
        total += v
    return total / len(values) if reduction == "mean" else total


def _pairs(x, y):
    return zip(np.asarray(x, np.float64).reshape(-1).tolist(),
               np.asarray(y, np.float64).reshape(-1).tolist(), strict=True)


def _broadcast(value, shape):
    if value is None:
        return [1.0] * int(np.prod(shape))
    return np.broadcast_to(np.asarray(value, np.float64), shape).reshape(-1).tolist()


def mse_loss(x, y, reduction="mean"):
    return _reduce([(a - b) ** 2 for a, b in _pairs(x, y)], reduction)


def l1_loss(x, y, reduction="mean"):
    return _reduce([abs(a - b) for a, b in _pairs(x, y)], reduction)


def smooth_l1_loss(x, y, reduction="mean", beta=1.0):
    values = []
    for a, b in _pairs(x, y):
        d = abs(a - b)
        values.append(0.5 * d * d / beta if d < beta else d - 0.5 * beta)
    return _reduce(values, reduction)


def binary_cross_entropy_with_logits(x, y, weight=None, reduction="mean", pos_weight=None):
    """-w [p y log(sigmoid(x)) + (1 - y) log(1 - sigmoid(x))] (direct, for moderate logits)."""
    shape = np.shape(x)
    ws, pws = _broadcast(weight, shape), _broadcast(pos_weight, shape)
    values = []
    for (a, b), w, pw in zip(_pairs(x, y), ws, pws, strict=True):
        sig = 1.0 / (1.0 + math.exp(-a))
        values.append(-w * (pw * b * math.log(sig) + (1.0 - b) * math.log(1.0 - sig)))
    return _reduce(values, reduction)


def binary_cross_entropy(x, y, weight=None, reduction="mean"):
    ws = _broadcast(weight, np.shape(x))
    values = []
    for (a, b), w in zip(_pairs(x, y), ws, strict=True):
        log_a = max(math.log(a), -100.0) if a > 0 else -100.0
        log_1a = max(math.log(1.0 - a), -100.0) if a < 1 else -100.0
        values.append(-w * (b * log_a + (1.0 - b) * log_1a))
    return _reduce(values, reduction)
