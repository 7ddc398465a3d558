"""Loop references for activations, Linear, Flatten, Add and Concat."""

import math

import numpy as np


def activation(name, x, alpha=0.0):
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        v = float(x[idx])
        if name == "ReLU":
            out[idx] = max(v, 0.0)
        elif name == "LeakyReLU":
            out[idx] = v if v > 0 else alpha * v
        elif name == "Sigmoid":
            out[idx] = 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0
        elif name == "Tanh":
            out[idx] = math.tanh(v)
        elif name == "ELU":
            out[idx] = v if v > 0 else alpha * (math.exp(v) - 1.0)
        elif name == "Identity":
            out[idx] = v
    return out


def linear(x, w, b):
    n, i = x.shape
    o = w.shape[0]
    out = np.zeros((n, o))
    for r in range(n):
        for c in range(o):
            s = 0.0 if b is None else float(b[c])
            for k in range(i):
                s += float(x[r, k]) * float(w[c, k])
            out[r, c] = s
    return out
