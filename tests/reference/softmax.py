"""Loop references for softmax and log-softmax along any axis (float64, plain Python)."""

import math

import numpy as np


def _lines(shape, axis):
    """For every position of the other axes, the list of full indices along ``axis``."""
    others = shape[:axis] + shape[axis + 1:]
    for rest in np.ndindex(others):
        yield [rest[:axis] + (k,) + rest[axis:] for k in range(shape[axis])]


def softmax(x, axis, log=False):
    out = np.empty(x.shape)
    for line in _lines(x.shape, axis):
        values = [float(x[i]) for i in line]
        top = max(values)
        total = math.fsum(math.exp(v - top) for v in values)
        for i, v in zip(line, values, strict=True):
            out[i] = (v - top - math.log(total)) if log else math.exp(v - top) / total
    return out
