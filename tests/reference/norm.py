"""Loop references for batch normalisation (float64, one channel at a time, plain Python sums)."""

import math

import numpy as np


def _channel_values(x, c):
    """Every value of channel c of an (N, C, ...) array, as Python floats."""
    values = []
    for idx in np.ndindex(x.shape):
        if idx[1] == c:
            values.append(float(x[idx]))
    return values


def batch_stats(x):
    """Per-channel (mean, biased variance, unbiased variance) lists."""
    means, biased, unbiased = [], [], []
    for c in range(x.shape[1]):
        values = _channel_values(x, c)
        m = len(values)
        mean = math.fsum(values) / m
        ss = math.fsum((v - mean) ** 2 for v in values)
        means.append(mean)
        biased.append(ss / m)
        unbiased.append(ss / (m - 1))
    return means, biased, unbiased


def normalize(x, mean, var, weight, bias, eps):
    """y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c, element by element."""
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        c = idx[1]
        w = 1.0 if weight is None else float(weight[c])
        b = 0.0 if bias is None else float(bias[c])
        out[idx] = (float(x[idx]) - mean[c]) / math.sqrt(var[c] + eps) * w + b
    return out


def batch_norm_train(x, weight, bias, eps):
    mean, biased, _ = batch_stats(x)
    return normalize(x, mean, biased, weight, bias, eps)


def batch_norm_eval(x, running_mean, running_var, weight, bias, eps):
    return normalize(x, [float(v) for v in running_mean], [float(v) for v in running_var],
                     weight, bias, eps)


def running_update(running_mean, running_var, x, momentum):
    """New (running_mean, running_var) lists after one training batch x."""
    mean, _, unbiased = batch_stats(x)
    new_mean = [(1 - momentum) * float(r) + momentum * m
                for r, m in zip(running_mean, mean, strict=True)]
    new_var = [(1 - momentum) * float(r) + momentum * v
               for r, v in zip(running_var, unbiased, strict=True)]
    return new_mean, new_var
