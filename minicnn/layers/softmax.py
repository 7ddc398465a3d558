"""Softmax and LogSoftmax along one axis, any rank.

    softmax(x)_i     = exp(x_i - max x) / sum_j exp(x_j - max x)
    log_softmax(x)_i = x_i - max x - log(sum_j exp(x_j - max x))      (log-sum-exp)

Subtracting the maximum keeps every exponent <= 0, so logits of 1e4 give finite results.
Backward: softmax ``gx = y * (gy - sum(gy * y))``; log-softmax ``gx = gy - exp(y) * sum(gy)``, the
sums along ``dim``.

``dim`` follows PyTorch (negative counts from the end, the batch axis is axis 0). ``dim=None`` (the
default, as in ``torch.nn.Softmax``) means axis 1: the class axis of (N, C) logits and the channel
axis of (N, C, H, W) maps, which is PyTorch's legacy implicit choice for 2-D and 4-D input. (For
3-D input PyTorch's legacy rule would pick axis 0, the batch axis here; minicnn uses 1 for every
rank.)
"""

import numpy as np

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..registry import hookimpl


class _SoftmaxBase(Layer):
    def __init__(self, dim=None):
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))):
            raise ConfigError(f"{type(self).__name__}: dim must be an int or None, got {dim!r}")
        self.dim = None if dim is None else int(dim)

    def axis(self, rank):
        """The axis the softmax runs along, for an input of this rank."""
        dim = 1 if self.dim is None else self.dim
        if not -rank <= dim < rank:
            raise ShapeError(f"{type(self).__name__}: dim {self.dim} is out of range for "
                             f"{rank}-axis input", expected=f"dim in [{-rank}, {rank - 1}]",
                             received=f"dim={dim}")
        return dim % rank

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        try:
            self.axis(len(shape))
        except ShapeError as err:
            raise ShapeError(err.detail, expected=err.expected,
                             received=f"{err.received} with input shape {shape}") from None
        return [shape]

    def flops(self, in_shapes, out_shapes):
        return 4 * int(np.prod(in_shapes[0]))

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """exp(x - max) / sum(exp(x - max)) along ``dim`` (None: axis 1)."""


class LogSoftmax(_SoftmaxBase):
    """x - max - log(sum(exp(x - max))) along ``dim`` (None: axis 1)."""


@hookimpl
def minicnn_layers():
    return [Softmax, LogSoftmax]


def softmax(x, dim=None):
    """Softmax of ``x`` along ``dim`` (None: axis 1)."""
    return Softmax(dim)(x)


def log_softmax(x, dim=None):
    """Log-softmax of ``x`` along ``dim`` (None: axis 1)."""
    return LogSoftmax(dim)(x)


FUNCTIONAL = ["softmax", "log_softmax"]
