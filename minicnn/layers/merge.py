"""Layers that merge several inputs: Add (residual connections) and Concat (DenseNet)."""

from ..errors import ShapeError
from ..layer import Layer
from ..registry import hookimpl


class Add(Layer):
    """y = x_0 + x_1 + ... (all the same shape): the skip of a residual block, added before the
    nonlinearity. A projection shortcut is a 1x1 Conv2d on the skip path, not part of Add."""

    num_inputs = None

    def infer_shapes(self, in_shapes):
        if len(in_shapes) < 2:
            raise ShapeError("Add needs at least two inputs", expected=">= 2 inputs",
                             received=f"{len(in_shapes)}")
        first = tuple(in_shapes[0])
        for shape in in_shapes[1:]:
            if tuple(shape) != first:
                raise ShapeError("inputs of Add must have equal shapes (use a 1x1 conv projection "
                                 "on the shortcut)", expected=first, received=tuple(shape))
        return [first]


class Concat(Layer):
    """Concatenate inputs along ``dim`` (1, channels, by default); other axes must match."""

    num_inputs = None

    def __init__(self, dim=1):
        super().__init__()
        self.dim = int(dim)

    def axis(self, rank):
        return self.dim % rank

    def infer_shapes(self, in_shapes):
        if len(in_shapes) < 1:
            raise ShapeError("Concat needs inputs", expected=">= 1 input", received="0")
        first = tuple(in_shapes[0])
        rank = len(first)
        if not -rank <= self.dim < rank:
            raise ShapeError(f"dim {self.dim} is out of range", expected=f"rank > {self.dim}",
                             received=first)
        axis = self.axis(rank)
        total = 0
        for shape in in_shapes:
            shape = tuple(shape)
            others = shape[:axis] + shape[axis + 1:]
            if len(shape) != rank or others != first[:axis] + first[axis + 1:]:
                raise ShapeError(f"inputs of Concat must match on every axis but {axis}",
                                 expected=first, received=shape)
            total += shape[axis]
        return [first[:axis] + (total,) + first[axis + 1:]]

    def extra_repr(self):
        return f"dim={self.dim}"


@hookimpl
def minicnn_layers():
    return [Add, Concat]


def add(*xs):
    """Element-wise sum of two or more arrays of one shape."""
    return Add()(list(xs))


def concat(xs, dim=1):
    """Concatenate a list of arrays along ``dim``."""
    return Concat(dim)(list(xs))


FUNCTIONAL = ["add", "concat"]
