"""Pooling over the two spatial axes of NCHW tensors, with PyTorch's semantics and argument names.

* ``MaxPool2d``: the maximum of each window (padding counts as -inf);
* ``AvgPool2d``: the mean of each window (``count_include_pad``, ``divisor_override`` as PyTorch);
* ``LPPool2d``: ``(sum x^p)^(1/p)`` over each window (``norm_type=2``: root of the sum of squares);
* ``AdaptiveAvgPool2d`` / ``GlobalAvgPool2d``: means over windows chosen for a fixed output size.

Output size along one axis (PyTorch's rule)::

    O = floor_or_ceil((L + 2 P - D (K - 1) - 1) / S) + 1

where with ``ceil_mode`` the last window must still start inside the input or its left padding
(``(O - 1) S < L + P``, else ``O`` drops by one). Padding may be at most half the kernel size.

Every pool here is separable in its window bounds: each layer describes its windows as per-axis
tables (first index, tap count, divisor factor: :class:`AxisWindows`), which the kernels read.
"""

import functools
import math
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..registry import hookimpl
from .checks import int_tuple


def _frozen(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's ``pooling_output_shape`` along one axis (may be < 1 for a too-small input)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:   # the last window must start inside
            out -= 1
    else:
        out = span // stride + 1
    return out


class AxisWindows(NamedTuple):
    """The pooling windows along one axis, per output index ``o`` (read by the kernels).

    ``first[o]``: first in-bounds input index; ``count[o]``: in-bounds taps (stepping by
    ``dilation``); ``div[o]``: this axis' factor of the divisor. ``inner`` = (lo, hi): the outputs
    whose window is whole and unclipped, starting at ``o * stride - padding`` (kernels take fast
    paths there; (0, 0) for adaptive windows).
    """

    first: np.ndarray
    count: np.ndarray
    div: np.ndarray
    kernel: int
    stride: int
    padding: int
    dilation: int
    inner: tuple


@functools.lru_cache(maxsize=512)
def strided_windows(size, kernel, stride, padding, dilation, ceil_mode, mode):
    """:class:`AxisWindows` of a strided pool along one axis of length ``size``.

    ``mode`` picks the divisor factor: ``"pad"`` the window length clipped to the padded input
    (AvgPool2d, count_include_pad), ``"valid"`` the in-bounds count, ``"lp"`` the in-bounds count
    over the kernel size (PyTorch's LPPool2d computes ``kernel_area * avg_pool``, which rescales
    ceil_mode's partial windows), ``"one"`` 1.
    """
    out = max(pool_output_size(size, kernel, stride, padding, dilation, ceil_mode), 0)
    first = np.zeros(out, np.int64)
    count = np.zeros(out, np.int64)
    div = np.ones(out, np.float64)
    inner = []
    for o in range(out):
        start = o * stride - padding
        stop = start + dilation * (kernel - 1) + 1
        lo = start
        while lo < 0:
            lo += dilation
        first[o] = lo
        count[o] = len(range(lo, min(stop, size), dilation))
        if start >= 0 and stop <= size:
            inner.append(o)
        if mode == "pad":
            div[o] = min(stop, size + padding) - start
        elif mode == "valid":      # an empty window (only possible with ceil_mode) averages to 0
            div[o] = max(count[o], 1)
        elif mode == "lp":
            div[o] = max(count[o], 1) / kernel
    inner = (inner[0], inner[-1] + 1) if inner else (0, 0)
    return AxisWindows(*_frozen(first, count, div), kernel, stride, padding, dilation, inner)


@functools.lru_cache(maxsize=512)
def adaptive_windows(size, out):
    """PyTorch's adaptive windows: ``[floor(i L / O), ceil((i + 1) L / O))``, divisor = length."""
    first = np.array([(i * size) // out for i in range(out)], np.int64)
    end = np.array([-((-(i + 1) * size) // out) for i in range(out)], np.int64)
    count = end - first
    return AxisWindows(*_frozen(first, count, count.astype(np.float64)), 0, 0, 0, 1, (0, 0))


class _Pool2d(Layer):
    """Shared shape logic of the strided pools: kernel, stride, padding, dilation, ceil_mode."""

    def _configure(self, kernel_size, stride, padding, dilation, ceil_mode):
        name = type(self).__name__
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, 2, minimum=1)
        self.stride = self.kernel_size if stride is None else \
            int_tuple(name, "stride", stride, 2, minimum=1)
        self.padding = int_tuple(name, "padding", padding, 2, minimum=0)
        self.dilation = int_tuple(name, "dilation", dilation, 2, minimum=1)
        self.ceil_mode = bool(ceil_mode)
        for k, p in zip(self.kernel_size, self.padding, strict=True):
            if p > k // 2:
                raise ConfigError(f"{name}: padding must be at most half of kernel_size, got "
                                  f"padding={self.padding}, kernel_size={self.kernel_size}")

    def out_hw(self, h, w):
        return tuple(pool_output_size(size, *args, self.ceil_mode) for size, args in
                     zip((h, w), zip(self.kernel_size, self.stride, self.padding, self.dilation,
                                     strict=True), strict=True))

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        self.check_rank(shape, 4, "input (N, C, H, W)")
        oh, ow = self.out_hw(shape[2], shape[3])
        if oh < 1 or ow < 1:
            need = tuple(d * (k - 1) + 1 - 2 * p for k, p, d in
                         zip(self.kernel_size, self.padding, self.dilation, strict=True))
            raise ShapeError(f"the pooling window {self.kernel_size} (dilation {self.dilation}, "
                             f"padding {self.padding}) is larger than the padded input",
                             expected=f"H >= {need[0]} and W >= {need[1]}", received=shape)
        return [(shape[0], shape[1], oh, ow)]

    _divisor_mode = "one"

    def windows(self, in_shape):
        """``(rows, cols)``: the :class:`AxisWindows` over output rows and columns."""
        return tuple(strided_windows(size, k, s, p, d, self.ceil_mode, self._divisor_mode)
                     for size, k, s, p, d in zip(in_shape[2:], self.kernel_size, self.stride,
                                                 self.padding, self.dilation, strict=True))

    def flops(self, in_shapes, out_shapes):
        n = 1
        for d in out_shapes[0]:
            n *= d
        return n * self.kernel_size[0] * self.kernel_size[1]

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_Pool2d):
    """y[n, c, i, j] = max over the window of x (padded positions count as -inf).

    (N, C, H, W) -> (N, C, OH, OW) with the output size rule of the module docstring; ``stride``
    defaults to ``kernel_size``. On ties the first maximum in row-major window order wins (and gets
    the whole gradient), as in PyTorch; a NaN in a window propagates. A window of padding only
    (dilation can skip over the input) is -inf and passes no gradient (PyTorch sends it to some
    element outside the window). ``return_indices`` is accepted for PyTorch's argument order but
    must stay False (the indices are kept internally for backward).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        if return_indices:
            raise ConfigError("MaxPool2d: return_indices=True is not supported (the arg-max "
                              "indices stay inside the layer for its backward pass)")
        self._configure(kernel_size, stride, padding, dilation, ceil_mode)


class AvgPool2d(_Pool2d):
    """y[n, c, i, j] = sum over the window of x / divisor.

    The divisor is ``divisor_override`` when given, else the window size clipped to the padded input
    (``count_include_pad=True``) or the number of in-bounds elements (``count_include_pad=False``),
    exactly as PyTorch. (N, C, H, W) -> (N, C, OH, OW).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self._configure(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None and (not isinstance(divisor_override, int)
                                             or isinstance(divisor_override, bool)
                                             or divisor_override == 0):
            raise ConfigError(f"AvgPool2d: divisor_override must be a non-zero integer or None, "
                              f"got {divisor_override!r}")
        self.divisor_override = divisor_override
        self._divisor_mode = "pad" if self.count_include_pad else "valid"

    def windows(self, in_shape):
        rows, cols = super().windows(in_shape)
        if self.divisor_override is None:
            return rows, cols
        return (rows._replace(div=np.full(rows.div.shape, float(self.divisor_override))),
                cols._replace(div=np.ones(cols.div.shape)))

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}, "
                f"divisor_override={self.divisor_override}")


class LPPool2d(_Pool2d):
    """Power-average pooling, PyTorch's definition: y = (sum over the window of x^p)^(1/p).

    ``norm_type`` p > 0; p = 2 is L2 pooling (square root of the sum of squares), p = 1 sum pooling.
    No padding. With ``ceil_mode`` a partial window at the border is scaled by kernel area /
    in-bounds count before the root, because PyTorch computes ``kernel_area * avg_pool2d(x^p)``;
    minicnn gives the same numbers. As in PyTorch, negative inputs with a non-integer p (or a
    negative window sum with an odd p) give NaN.

    Gradient: dy/dx = x^(p-1) y^(1-p). Where the window's sum is 0 (all inputs 0) this is 0/0 for
    p != 1 (PyTorch returns NaN there); minicnn returns 0, the subgradient at the origin.
    """

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        try:
            norm = float(norm_type)
        except (TypeError, ValueError):
            norm = float("nan")
        if not (math.isfinite(norm) and norm > 0):
            raise ConfigError(f"LPPool2d: norm_type must be a finite number > 0, got {norm_type!r}")
        self.norm_type = norm
        self._configure(kernel_size, stride, 0, 1, ceil_mode)
        self._divisor_mode = "lp"

    def flops(self, in_shapes, out_shapes):
        return 2 * super().flops(in_shapes, out_shapes)

    def extra_repr(self):
        return (f"norm_type={self.norm_type:g}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class AdaptiveAvgPool2d(Layer):
    """Average over windows chosen to give ``output_size`` (PyTorch's rule).

    Output row i averages input rows ``floor(i H / OH)`` to ``ceil((i + 1) H / OH) - 1`` (columns
    alike); the windows may overlap and OH may exceed H. ``output_size`` is an int or a pair whose
    entries are ints or None (None keeps the input size). (N, C, H, W) -> (N, C, OH, OW).
    """

    def __init__(self, output_size):
        super().__init__()
        name = type(self).__name__
        if isinstance(output_size, int) and not isinstance(output_size, bool):
            output_size = (output_size, output_size)
        try:
            output_size = tuple(output_size)
        except TypeError:
            output_size = (output_size,)
        if len(output_size) != 2 or not all(
                v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
                for v in output_size):
            raise ConfigError(f"{name}: output_size must be a positive int or a pair of positive "
                              f"ints / None, got {output_size!r}")
        self.output_size = output_size

    def out_hw(self, h, w):
        return tuple(size if o is None else o for size, o in zip((h, w), self.output_size,
                                                                  strict=True))

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        self.check_rank(shape, 4, "input (N, C, H, W)")
        return [(shape[0], shape[1]) + self.out_hw(shape[2], shape[3])]

    def windows(self, in_shape):
        oh, ow = self.out_hw(in_shape[2], in_shape[3])
        return adaptive_windows(in_shape[2], oh), adaptive_windows(in_shape[3], ow)

    def flops(self, in_shapes, out_shapes):
        n = 1
        for d in in_shapes[0]:
            n *= d
        return n

    def extra_repr(self):
        size = self.output_size
        return f"output_size={size[0] if size[0] == size[1] else size}"


class GlobalAvgPool2d(AdaptiveAvgPool2d):
    """The mean of each channel's whole map: (N, C, H, W) -> (N, C, 1, 1).

    The same as ``AdaptiveAvgPool2d(1)``; the output stays 4-D, so put ``Flatten()`` after it before
    a ``Linear`` classifier head.
    """

    def __init__(self):
        super().__init__(1)

    def extra_repr(self):
        return ""


POOLS = [MaxPool2d, AvgPool2d, LPPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d]


@hookimpl
def minicnn_layers():
    return POOLS


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling of an (N, C, H, W) array (PyTorch's argument order)."""
    return MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode)(input)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling of an (N, C, H, W) array."""
    return AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)(input)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling (sum x^p)^(1/p) of an (N, C, H, W) array."""
    return LPPool2d(norm_type, kernel_size, stride, ceil_mode)(input)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of an (N, C, H, W) array to a fixed output size."""
    return AdaptiveAvgPool2d(output_size)(input)


FUNCTIONAL = ["max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d"]
