"""Constant padding of the two spatial axes: ConstantPad2d and ZeroPad2d (PyTorch semantics).

``padding`` is an int (all four sides) or ``(left, right, top, bottom)``; a negative amount crops,
as in PyTorch. For input (N, C, H, W) (or (C, H, W)) the output is (N, C, H + top + bottom,
W + left + right) with

    y[..., i, j] = x[..., i - top, j - left]   where that index is inside x, else ``value``.

``value`` may be any float, including -inf (padding before a max pool: TensorFlow's uneven "same"
padding). Backward: ``gx[..., h, w] = gy[..., h + top, w + left]`` (0 for cropped positions).
"""

import math

import numpy as np

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..registry import hookimpl


def _padding(name, padding):
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return (int(padding),) * 4
    try:
        value = tuple(padding)
    except TypeError:
        value = None
    if value is None or len(value) != 4 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{name}: padding must be an int or (left, right, top, bottom) ints, "
                          f"got {padding!r}")
    return tuple(int(v) for v in value)


class ConstantPad2d(Layer):
    """Pad (N, C, H, W) or (C, H, W) with ``value``: ``padding`` = int or (left, right, top,
    bottom); output (N, C, H + top + bottom, W + left + right)."""

    def __init__(self, padding, value):
        super().__init__()
        name = type(self).__name__
        self.padding = _padding(name, padding)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or math.isnan(value):
            raise ConfigError(f"{name}: value must be a number (inf allowed, not NaN), got "
                              f"{value!r}")
        self.value = float(value)

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        if len(shape) not in (3, 4):
            raise ShapeError(f"{type(self).__name__} pads the last two axes of an image",
                             expected="(N, C, H, W) or (C, H, W)", received=f"shape {shape}")
        left, right, top, bottom = self.padding
        oh, ow = shape[-2] + top + bottom, shape[-1] + left + right
        if oh < 1 or ow < 1:
            raise ShapeError(f"{type(self).__name__}: padding {self.padding} crops the input "
                             f"away", expected=f"H > {-(top + bottom)} and W > {-(left + right)}",
                             received=f"shape {shape}")
        return [shape[:-2] + (oh, ow)]

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pad (N, C, H, W) or (C, H, W) with zeros: ``padding`` = int or (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"padding={self.padding}"


@hookimpl
def minicnn_layers():
    return [ConstantPad2d, ZeroPad2d]


def pad(input, pad, mode="constant", value=0.0):
    """PyTorch's ``F.pad`` for the last two axes: ``pad`` = (left, right) or (left, right, top,
    bottom); only ``mode="constant"``."""
    if mode != "constant":
        raise ConfigError(f"pad: only mode='constant' is supported, got {mode!r}")
    try:
        amounts = tuple(pad)
    except TypeError:
        raise ConfigError(f"pad: pad must be a tuple of 2 or 4 ints, got {pad!r}") from None
    if len(amounts) == 2:
        amounts += (0, 0)
    from .functional_util import build
    return build(ConstantPad2d, amounts, value)(input)


FUNCTIONAL = ["pad"]
