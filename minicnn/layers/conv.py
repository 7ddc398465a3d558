"""Convolutions: Conv1d, Conv2d, Conv3d (PyTorch's ``torch.nn.Conv{1,2,3}d``).

Cross-correlation, no kernel flip. For Conv2d with x (N, C, H, W) and weight (O, C/groups, KH, KW)::

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, g*C/groups + c, i*SH - PH + u*DH,
                                                                        j*SW - PW + v*DW]

with g = o // (O/groups) the group of output channel o, and x read as zero in the padding. Each
spatial output size is ``O = floor((W + 2P - D*(K - 1) - 1) / S) + 1``. ``padding`` is an int, a
tuple, ``"valid"`` (no padding) or ``"same"`` (stride 1 only; total padding D*(K - 1) per axis, the
odd extra on the right/bottom, as PyTorch does). Only ``padding_mode="zeros"`` is supported. Conv1d
and Conv3d are the same with one and three spatial axes. All three share one generic CPU kernel
(``conv_cpu.py``).
"""

import math

import numpy as np

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..random import uniform_init
from ..registry import hookimpl
from .checks import int_tuple, positive_int

PADDING_MODES = ("zeros",)


class _ConvNd(Layer):
    """Shared body of Conv1d/2d/3d: validation, parameters, shapes, FLOPs."""

    dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros"):
        super().__init__()
        name, n = type(self).__name__, self.dims
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.groups = positive_int(name, "groups", groups)
        if in_channels % groups:
            raise ConfigError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                              f"({groups})")
        if out_channels % groups:
            raise ConfigError(f"{name}: out_channels ({out_channels}) must be divisible by groups "
                              f"({groups})")
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, n, minimum=1)
        self.stride = int_tuple(name, "stride", stride, n, minimum=1)
        self.dilation = int_tuple(name, "dilation", dilation, n, minimum=1)
        if isinstance(padding, str):
            if padding == "valid":
                lo = total = (0,) * n
            elif padding == "same":
                if any(s != 1 for s in self.stride):
                    raise ConfigError(f"{name}: padding='same' requires stride 1, got stride "
                                      f"{self.stride}")
                total = tuple(d * (k - 1) for d, k in zip(self.dilation, self.kernel_size,
                                                          strict=True))
                lo = tuple(t // 2 for t in total)   # the odd extra goes right/bottom
            else:
                raise ConfigError(f"{name}: padding must be an int, a tuple of {n} ints, 'valid' "
                                  f"or 'same', got {padding!r}")
            self.padding = padding
        else:
            lo = int_tuple(name, "padding", padding, n, minimum=0)
            total = tuple(2 * p for p in lo)
            self.padding = lo
        self.padding_lo, self.padding_total = lo, total
        if padding_mode not in PADDING_MODES:
            raise ConfigError(f"{name}: padding_mode {padding_mode!r} is not supported; supported: "
                              f"{', '.join(repr(m) for m in PADDING_MODES)}")
        self.padding_mode = padding_mode
        if not isinstance(bias, bool):
            raise ConfigError(f"{name}: bias must be True or False, got {bias!r}")
        fan_in = (in_channels // groups) * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        self.add_param("weight", uniform_init((out_channels, in_channels // groups)
                                              + self.kernel_size, bound))
        self.bias = self.add_param("bias", uniform_init((out_channels,), bound)) if bias else None

    def hyper_key(self):
        """The hyper-parameters that decide the kernel's geometry (kernels cache per key)."""
        return (self.in_channels, self.out_channels, self.kernel_size, self.stride,
                self.padding_lo, self.padding_total, self.dilation, self.groups)

    def out_spatial(self, spatial):
        """Output spatial sizes for input spatial sizes (no checks)."""
        return tuple((w + t - d * (k - 1) - 1) // s + 1 for w, t, d, k, s in
                     zip(spatial, self.padding_total, self.dilation, self.kernel_size, self.stride,
                         strict=True))

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        n = self.dims
        layout = "(N, C, " + ", ".join("DHW"[3 - n:]) + ")" if n > 1 else "(N, C, L)"
        if len(shape) != n + 2:
            raise ShapeError(f"{type(self).__name__} input must be {layout}",
                             expected=f"{n + 2} axes {layout}", received=f"shape {shape}")
        if shape[1] != self.in_channels:
            raise ShapeError(f"{type(self).__name__} input has the wrong number of channels",
                             expected=f"(N, {self.in_channels}, ...)", received=f"shape {shape}")
        spatial = shape[2:]
        for axis, (w, t, d, k) in enumerate(zip(spatial, self.padding_total, self.dilation,
                                                self.kernel_size, strict=True)):
            if w + t < d * (k - 1) + 1:
                raise ShapeError(
                    f"{type(self).__name__} kernel (dilated size {d * (k - 1) + 1}) is larger than "
                    f"the padded input (size {w + t}) along spatial axis {axis}",
                    expected=f"padded spatial size >= {d * (k - 1) + 1}", received=f"shape {shape}")
        return [(shape[0], self.out_channels) + self.out_spatial(spatial)]

    def flops(self, in_shapes, out_shapes):
        """2 * N * out * prod(out_spatial) * in/groups * prod(kernel): one multiply and one add per
        weight tap; the bias adds (N * out * prod(out_spatial)) are not counted."""
        return 2 * math.prod(out_shapes[0]) * (self.in_channels // self.groups) \
            * math.prod(self.kernel_size)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.dims:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.dims:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv1d(_ConvNd):
    """1-D convolution: x (N, C_in, L) -> y (N, C_out, L_out); weight (C_out, C_in/groups, K)."""

    dims = 1


class Conv2d(_ConvNd):
    """2-D convolution: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out);
    weight (C_out, C_in/groups, KH, KW), bias (C_out,)."""

    dims = 2


class Conv3d(_ConvNd):
    """3-D convolution: x (N, C_in, D, H, W) -> y (N, C_out, D_out, H_out, W_out);
    weight (C_out, C_in/groups, KD, KH, KW)."""

    dims = 3


@hookimpl
def minicnn_layers():
    return [Conv1d, Conv2d, Conv3d]


def _functional(cls, x, weight, bias, stride, padding, dilation, groups):
    from .functional_util import build, run
    weight = np.asarray(weight)
    if weight.ndim != cls.dims + 2:
        raise ShapeError(f"{cls.__name__.lower()}: weight must be (out, in/groups, *kernel)",
                         expected=f"{cls.dims + 2} axes", received=f"shape {weight.shape}")
    out_channels, cg = weight.shape[:2]
    layer = build(cls, cg * groups, out_channels, tuple(weight.shape[2:]), stride=stride,
                  padding=padding, dilation=dilation, groups=groups, bias=bias is not None)
    if bias is not None:
        bias = np.asarray(bias, dtype=weight.dtype)
        if bias.shape != (out_channels,):
            raise ShapeError(f"{cls.__name__.lower()}: bias must be (out,)",
                             expected=f"({out_channels},)", received=f"shape {bias.shape}")
    return run(layer, [x], weight=weight, bias=bias)


def _bias(b, bias):
    if b is not None and bias is not None:
        raise TypeError("give the bias once: as b (positional) or as bias=")
    return b if b is not None else bias


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, bias=None):
    """1-D cross-correlation of x (N, C, L) with w (O, C/groups, K) plus bias b (O,); see Conv1d.
    ``bias=`` is accepted as PyTorch spells it."""
    return _functional(Conv1d, x, w, _bias(b, bias), stride, padding, dilation, groups)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, bias=None):
    """2-D cross-correlation of x (N, C, H, W) with w (O, C/groups, KH, KW) plus bias b (O,); see
    Conv2d. ``bias=`` is accepted as PyTorch spells it."""
    return _functional(Conv2d, x, w, _bias(b, bias), stride, padding, dilation, groups)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, bias=None):
    """3-D cross-correlation of x (N, C, D, H, W) with w (O, C/groups, KD, KH, KW) plus bias b."""
    return _functional(Conv3d, x, w, _bias(b, bias), stride, padding, dilation, groups)


FUNCTIONAL = ["conv1d", "conv2d", "conv3d"]
