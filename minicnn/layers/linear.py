"""Linear (fully connected): y = x W^T + b, x of shape (N, in_features), W of shape (out, in)."""

import math

from ..errors import ShapeError
from ..layer import Layer
from ..random import uniform_init
from ..registry import hookimpl
from .checks import positive_int


class Linear(Layer):
    """Fully connected layer, PyTorch's ``nn.Linear``: weight (out_features, in_features), bias
    (out,). Input (N, *, in_features), output (N, *, out_features): every leading position is a
    row of one matrix product.

    Weights and bias start as U(-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's default.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        bound = 1.0 / math.sqrt(in_features)
        self.add_param("weight", uniform_init((out_features, in_features), bound))
        self.bias = self.add_param("bias", uniform_init((out_features,), bound)) if bias else None

    def infer_shapes(self, in_shapes):
        shape = in_shapes[0]
        if len(shape) < 2 or shape[-1] != self.in_features:
            raise ShapeError("input must be (N, *, in_features) (Flatten before Linear takes an "
                             "image batch to (N, C*H*W))",
                             expected=f"(N, *, {self.in_features})", received=tuple(shape))
        return [tuple(shape[:-1]) + (self.out_features,)]

    def flops(self, in_shapes, out_shapes):
        return 2 * rows(in_shapes[0]) * self.in_features * self.out_features

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def rows(shape):
    """The matrix rows of a Linear input or output shape: the product of its leading axes."""
    return math.prod(shape[:-1])


@hookimpl
def minicnn_layers():
    return [Linear]


def linear(x, weight, bias=None):
    """x W^T + b with W of shape (out_features, in_features)."""
    from .functional_util import build, run
    out_features, in_features = weight.shape
    layer = build(Linear, in_features, out_features, bias=bias is not None)
    return run(layer, [x], weight=weight, bias=bias)


FUNCTIONAL = ["linear"]
