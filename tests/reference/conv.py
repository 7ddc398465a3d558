"""Loop reference for Conv1d/2d/3d: cross-correlation written out element by element (float64).

Independent of the kernels: padding is resolved here from PyTorch's rules, the input is padded with
zeros explicitly, and every output element is a plain sum over its group's input channels and the
kernel taps.
"""

import itertools

import numpy as np


def resolve_padding(padding, kernel, dilation, dims):
    """(left, right) zero padding per spatial axis, as PyTorch resolves ``padding``."""
    if padding == "valid":
        return [(0, 0)] * dims
    if padding == "same":
        pads = []
        for k, d in zip(kernel, dilation, strict=True):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        padding = (padding,) * dims
    return [(p, p) for p in padding]


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, *pos] = b[o] + sum_{c, *tap} w[o, c, *tap] * xpad[n, g*Cg + c, *(pos*S + tap*D)]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    dims = x.ndim - 2
    n_img, c_in = x.shape[:2]
    c_out, cg = w.shape[:2]
    kernel = w.shape[2:]
    stride = (stride,) * dims if isinstance(stride, int) else tuple(stride)
    dilation = (dilation,) * dims if isinstance(dilation, int) else tuple(dilation)
    assert cg * groups == c_in
    og = c_out // groups
    pads = resolve_padding(padding, kernel, dilation, dims)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    out_size = [(xp.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                for a in range(dims)]
    y = np.zeros((n_img, c_out, *out_size))
    for n in range(n_img):
        for o in range(c_out):
            g = o // og
            for pos in itertools.product(*[range(s) for s in out_size]):
                total = 0.0 if b is None else float(b[o])
                for c in range(cg):
                    for tap in itertools.product(*[range(k) for k in kernel]):
                        where = tuple(pos[a] * stride[a] + tap[a] * dilation[a]
                                      for a in range(dims))
                        total += w[(o, c) + tap] * xp[(n, g * cg + c) + where]
                y[(n, o) + pos] = total
    return y
