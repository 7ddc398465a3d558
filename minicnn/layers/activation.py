"""Element-wise activations: ReLU, LeakyReLU, Sigmoid, Tanh (and Identity).

Each maps x to y of the same shape; backward multiplies the output gradient by the local derivative.
"""

from ..errors import ConfigError
from ..layer import Layer
from ..registry import hookimpl


class _Elementwise(Layer):
    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]

    def flops(self, in_shapes, out_shapes):
        n = 1
        for d in out_shapes[0]:
            n *= d
        return n


class Identity(_Elementwise):
    """y = x (a placeholder, e.g. for a removed classifier head)."""


class ReLU(_Elementwise):
    """y = max(x, 0); the derivative at 0 is taken as 0, as PyTorch does."""


class LeakyReLU(_Elementwise):
    """y = x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|; dy/dx = y (1 - y)."""


class Tanh(_Elementwise):
    """y = tanh(x); dy/dx = 1 - y^2."""


class ELU(_Elementwise):
    """y = x if x > 0 else alpha (exp(x) - 1)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        if alpha < 0:
            raise ConfigError(f"ELU: alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


ACTIVATIONS = [Identity, ReLU, LeakyReLU, Sigmoid, Tanh, ELU]


@hookimpl
def minicnn_layers():
    return ACTIVATIONS


def relu(x):
    """max(x, 0)."""
    return ReLU()(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU(negative_slope)(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)


def elu(x, alpha=1.0):
    return ELU(alpha)(x)


FUNCTIONAL = ["relu", "leaky_relu", "sigmoid", "tanh", "elu"]
