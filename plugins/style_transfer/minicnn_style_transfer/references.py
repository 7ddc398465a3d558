"""Slow loop oracles of the style-transfer layers, in float64, written from the formulas and
sharing no code with the kernels. The features of one sample are indexed ``a[i, j, k]`` (row,
column, channel) as in the course notes, read from NCHW arrays as ``x[n, k, i, j]``.

They ship with the package because the layers' ``reference_forward`` (what ``minicnn
check-plugin style_transfer`` compares the kernels with) calls them; the plugin's tests use them
too (``from minicnn_style_transfer import references``)."""

import numpy as np


def gram(x, normalize=False):
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    out = np.zeros((n, c, c))
    for s in range(n):
        for k in range(c):
            for kk in range(c):
                total = 0.0
                for i in range(h):
                    for j in range(w):
                        total += x[s, k, i, j] * x[s, kk, i, j]
                out[s, k, kk] = total / (h * w) if normalize else total
    return out


def style_loss(x, target, norm="gatys", reduction="sum"):
    """sum over samples of s * sum_kk' (G - T)^2, with the normaliser written out per name."""
    x = np.asarray(x, np.float64)
    target = np.asarray(target, np.float64)
    n, c, h, w = x.shape
    g = gram(x)
    total = 0.0
    for s in range(n):
        squares = 0.0
        for k in range(c):
            for kk in range(c):
                squares += (g[s, k, kk] - target[s, k, kk]) ** 2
        if norm == "gatys":            # 1 / (4 N^2 M^2), N filters, M positions
            big_n, big_m = c, h * w
            scale = 1.0 / (4 * big_n ** 2 * big_m ** 2)
        elif norm == "course":         # 1 / (2 nH nW nC)^2
            scale = 1.0 / (2 * h * w * c) ** 2
        elif norm == "mean":           # mean over C^2 entries of ((G - T) / (C H W))^2
            scale = 1.0 / (c * c) / (c * h * w) ** 2
        else:
            scale = 1.0
        total += scale * squares
    return total / n if reduction == "mean" else total


def content_loss(x, target, reduction="sum"):
    x = np.asarray(x, np.float64).reshape(-1)
    target = np.asarray(target, np.float64).reshape(-1)
    total = 0.0
    for a, b in zip(x, target, strict=True):
        total += 0.5 * (a - b) ** 2
    return total / x.size if reduction == "mean" else total


def total_variation(x, power=2, reduction="sum"):
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    total = 0.0
    for s in range(n):
        for k in range(c):
            for i in range(h):
                for j in range(w):
                    if i + 1 < h:
                        total += abs(x[s, k, i + 1, j] - x[s, k, i, j]) ** power
                    if j + 1 < w:
                        total += abs(x[s, k, i, j + 1] - x[s, k, i, j]) ** power
    return total / x.size if reduction == "mean" else total


def course_style_cost(a_s, a_g):
    """The course's layer style cost from channel-last activations ``a[i, j, k]`` of one image:
    ``1 / (2 nH nW nC)^2 sum_kk' (G_S - G_G)^2`` with
    ``G[k, k'] = sum_ij a[i, j, k] a[i, j, k']``."""
    n_h, n_w, n_c = a_s.shape
    cost = 0.0
    for k in range(n_c):
        for kk in range(n_c):
            gs = sum(a_s[i, j, k] * a_s[i, j, kk] for i in range(n_h) for j in range(n_w))
            gg = sum(a_g[i, j, k] * a_g[i, j, kk] for i in range(n_h) for j in range(n_w))
            cost += (gs - gg) ** 2
    return cost / (2 * n_h * n_w * n_c) ** 2
