"""Flatten: merge axes start_dim..end_dim into one (PyTorch's defaults: 1 and -1)."""

from ..errors import ShapeError
from ..layer import Layer
from ..registry import hookimpl


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) with the defaults; ``start_dim``/``end_dim`` as in PyTorch."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        rank = len(shape)
        start = self.start_dim % rank if rank else 0
        end = self.end_dim % rank if rank else 0
        if rank == 0 or not (self.start_dim < rank and -rank <= self.end_dim < rank) \
                or start > end:
            raise ShapeError(f"cannot flatten axes {self.start_dim}..{self.end_dim}",
                             expected="an input with those axes", received=shape)
        merged = 1
        for d in shape[start:end + 1]:
            merged *= d
        return [shape[:start] + (merged,) + shape[end + 1:]]

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


@hookimpl
def minicnn_layers():
    return [Flatten]


def flatten(x, start_dim=1, end_dim=-1):
    return Flatten(start_dim, end_dim)(x)


FUNCTIONAL = ["flatten"]
