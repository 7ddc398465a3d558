"""Loop reference for ConstantPad2d / ZeroPad2d (PyTorch's definition, element by element)."""

import numpy as np


def constant_pad2d(x, padding, value):
    left, right, top, bottom = (padding,) * 4 if isinstance(padding, int) else padding
    h_, w_ = x.shape[-2:]
    oh, ow = h_ + top + bottom, w_ + left + right
    out = np.empty(x.shape[:-2] + (oh, ow))
    for lead in np.ndindex(x.shape[:-2]):
        for i in range(oh):
            for j in range(ow):
                h, w = i - top, j - left
                out[lead + (i, j)] = x[lead + (h, w)] if 0 <= h < h_ and 0 <= w < w_ else value
    return out
