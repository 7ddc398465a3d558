"""The Swish layer: hyper-parameters, shapes, its conformance cases and a slow reference.

``y = x * sigmoid(beta_c * x)`` on inputs ``(N, C, *)``, one beta per channel ``c`` (axis 1); beta
is a parameter of shape ``(C,)`` (learnable by default, frozen with ``learnable=False``). The
gradients::

    s = sigmoid(beta_c x),  z = beta_c x
    dy/dx     = s (1 + z (1 - s))
    dy/dbeta_c = x^2 s (1 - s)      (summed over the batch and every position of channel c)
"""

import math

import minicnn
import numpy as np
from minicnn import ConfigError, ShapeError


class Swish(minicnn.Layer):
    """y = x * sigmoid(beta_c x), beta of shape (C,) per channel; input (N, C, *), output alike.

    :param num_features: C, the channel count (axis 1 of the input).
    :param beta: the initial beta: a number for every channel, or C numbers.
    :param learnable: False freezes beta (no gradient is computed for it).
    """

    def __init__(self, num_features, beta=1.0, learnable=True):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) \
                or num_features <= 0:
            raise ConfigError(f"Swish: num_features must be a positive integer, got "
                              f"{num_features!r}")
        values = np.array(beta, dtype=np.float64).reshape(-1)
        if values.size == 1:
            values = np.full(num_features, values[0])
        if values.size != num_features:
            raise ConfigError(f"Swish: beta must be a number or {num_features} numbers (one per "
                              f"channel), got {values.size}")
        if not np.isfinite(values).all():
            raise ConfigError(f"Swish: beta must be finite, got {beta!r}")
        self.num_features = num_features
        self.learnable = bool(learnable)
        self.add_param("beta", values.astype(np.float32), requires_grad=self.learnable)

    def infer_shapes(self, in_shapes):
        self.check_inputs(in_shapes)
        shape = tuple(in_shapes[0])
        if len(shape) < 2 or shape[1] != self.num_features:
            raise ShapeError("input channels (axis 1) do not match num_features",
                             expected=f"(N, {self.num_features}, *)", received=f"shape {shape}")
        return [shape]

    def flops(self, in_shapes, out_shapes):
        """Five operations per element: beta * x, exp, 1 + e, the division, the product."""
        return 5 * math.prod(out_shapes[0])

    def extra_repr(self):
        frozen = "" if self.learnable else ", learnable=False"
        return f"{self.num_features}{frozen}"

    # -- what ``minicnn check-plugin swish`` uses -------------------------------------------------

    @classmethod
    def conformance_cases(cls):
        """Constructor arguments and input shapes to check, and inputs that must be refused."""
        return [
            {"args": (3,), "kwargs": {"beta": (0.5, 1.0, 2.0)}, "shapes": [(2, 3, 4, 4)]},
            {"args": (4,), "shapes": [(5, 4)]},
            {"args": (2,), "kwargs": {"beta": 1.5, "learnable": False}, "shapes": [(2, 2, 7)]},
            {"args": (0,), "raises": "ConfigError", "match": "num_features"},
            {"args": (3,), "kwargs": {"beta": (1.0, 2.0)}, "raises": "ConfigError",
             "match": "one per channel"},
            {"args": (3,), "shapes": [(2, 4, 5, 5)], "raises": "ShapeError",
             "match": r"expected \(N, 3, \*\)"},
            {"args": (3,), "shapes": [(6,)], "raises": "ShapeError"},
        ]

    def reference_forward(self, x):
        """The slow, obviously correct forward in float64 (no shared code with the kernels)."""
        x = np.asarray(x, np.float64)
        beta = np.asarray(minicnn.to_numpy(self.beta.data), np.float64)
        b = beta.reshape((1, -1) + (1,) * (x.ndim - 2))
        return x / (1.0 + np.exp(-b * x))


def swish(x, beta=1.0):
    """Functional form: ``x * sigmoid(beta_c x)`` for ``x`` of shape (N, C, *); beta a number or C
    numbers. Builds a frozen layer, so it draws no random numbers."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ShapeError("swish: the input must be (N, C, *)", expected="at least 2 axes",
                         received=f"shape {x.shape}")
    layer = Swish(int(x.shape[1]), beta=beta, learnable=False)
    if x.dtype == np.float64:
        layer.double()
    return layer(x)
