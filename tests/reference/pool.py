"""Loop references for the pooling layers (PyTorch's definitions, written out window by window)."""

import math

import numpy as np


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size, in real arithmetic."""
    exact = (size + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(exact) if ceil_mode else math.floor(exact)) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Returns (output, argmax) where argmax[n, c, i, j] = (h, w) of the first maximum."""
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
    sh, sw = pair(stride if stride is not None else kernel_size)
    n_, c_, h_, w_ = x.shape
    oh_ = out_size(h_, kh, sh, ph, dh, ceil_mode)
    ow_ = out_size(w_, kw, sw, pw, dw, ceil_mode)
    out = np.empty((n_, c_, oh_, ow_))
    arg = np.empty((n_, c_, oh_, ow_, 2), int)
    for n in range(n_):
        for c in range(c_):
            for i in range(oh_):
                for j in range(ow_):
                    best, where = -math.inf, None
                    for a in range(kh):
                        for b in range(kw):
                            h, w = i * sh - ph + a * dh, j * sw - pw + b * dw
                            if 0 <= h < h_ and 0 <= w < w_:
                                v = float(x[n, c, h, w])
                                if where is None or v > best:
                                    best, where = v, (h, w)
                    out[n, c, i, j] = best
                    arg[n, c, i, j] = where
    return out, arg


def max_pool2d_backward(x, gy, **kwargs):
    _, arg = max_pool2d(x, **kwargs)
    gx = np.zeros(x.shape)
    for idx in np.ndindex(gy.shape):
        n, c = idx[:2]
        h, w = arg[idx]
        gx[n, c, h, w] += gy[idx]
    return gx


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    (kh, kw), (ph, pw) = pair(kernel_size), pair(padding)
    sh, sw = pair(stride if stride is not None else kernel_size)
    n_, c_, h_, w_ = x.shape
    oh_ = out_size(h_, kh, sh, ph, 1, ceil_mode)
    ow_ = out_size(w_, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((n_, c_, oh_, ow_))
    for n in range(n_):
        for c in range(c_):
            for i in range(oh_):
                for j in range(ow_):
                    h0, w0 = i * sh - ph, j * sw - pw
                    # window clipped to the padded input (PyTorch's pool_size)
                    padded = (min(h0 + kh, h_ + ph) - h0) * (min(w0 + kw, w_ + pw) - w0)
                    total, count = 0.0, 0
                    for h in range(h0, h0 + kh):
                        for w in range(w0, w0 + kw):
                            if 0 <= h < h_ and 0 <= w < w_:
                                total += float(x[n, c, h, w])
                                count += 1
                    if divisor_override is not None:
                        out[n, c, i, j] = total / divisor_override
                    elif count_include_pad:
                        out[n, c, i, j] = total / padded
                    else:
                        out[n, c, i, j] = total / count if count else 0.0
    return out


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """PyTorch's own formulation: (kernel_area * avg_pool2d(x^p)) ^ (1/p)."""
    kh, kw = pair(kernel_size)
    avg = avg_pool2d(np.asarray(x, np.float64) ** norm_type, kernel_size, stride, 0, ceil_mode)
    with np.errstate(invalid="ignore"):
        return (avg * kh * kw) ** (1.0 / norm_type)


def lp_window_sum(x, norm_type, kernel_size, stride=None):
    """(sum over each window of x^p)^(1/p), the textbook definition (no ceil_mode)."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else kernel_size)
    n_, c_, h_, w_ = x.shape
    oh_, ow_ = (h_ - kh) // sh + 1, (w_ - kw) // sw + 1
    out = np.zeros((n_, c_, oh_, ow_))
    for n, c, i, j in np.ndindex(out.shape):
        window = x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw].astype(np.float64)
        out[n, c, i, j] = np.sum(window ** norm_type) ** (1.0 / norm_type)
    return out


def adaptive_avg_pool2d(x, output_size):
    n_, c_, h_, w_ = x.shape
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    oh_ = h_ if output_size[0] is None else output_size[0]
    ow_ = w_ if output_size[1] is None else output_size[1]
    out = np.zeros((n_, c_, oh_, ow_))
    for n, c, i, j in np.ndindex(out.shape):
        h0, h1 = math.floor(i * h_ / oh_), math.ceil((i + 1) * h_ / oh_)
        w0, w1 = math.floor(j * w_ / ow_), math.ceil((j + 1) * w_ / ow_)
        out[n, c, i, j] = np.mean(x[n, c, h0:h1, w0:w1].astype(np.float64))
    return out
