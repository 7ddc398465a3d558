"""ConvTranspose2d: the adjoint (transpose) of a 2-D convolution, PyTorch's ``nn.ConvTranspose2d``.

Every input pixel scatters a weighted copy of the kernel into the output::

    y[n, g*Cog + co, ih*S - P + kh*D, iw*S - P + kw*D] +=
        x[n, g*Cig + ci, ih, iw] * w[g*Cig + ci, co, kh, kw]

(plus the bias), with Cig = in_channels / groups and Cog = out_channels / groups. The weight is
``(in_channels, out_channels / groups, kH, kW)`` (input channels first, as PyTorch). Output size::

    O = (L - 1) S - 2 P + D (K - 1) + output_padding + 1

``output_padding`` (which must be smaller than the stride or the dilation) only adds rows/columns at
the bottom/right edge, to pick one of the input sizes a strided convolution maps to the same output.
"""

import math

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..random import uniform_init
from ..registry import hookimpl
from .checks import int_tuple, positive_int


class ConvTranspose2d(Layer):
    """(N, in_channels, H, W) -> (N, out_channels, OH, OW); the formula is in the module docstring.

    Weight and bias start as U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = weight.shape[1] * kH *
    kW, PyTorch's default. Only ``padding_mode="zeros"`` exists (as in PyTorch's transposed convs).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros"):
        super().__init__()
        name = "ConvTranspose2d"
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.groups = positive_int(name, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ConfigError(f"{name}: in_channels ({in_channels}) and out_channels "
                              f"({out_channels}) must both be divisible by groups ({groups})")
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, 2, minimum=1)
        self.stride = int_tuple(name, "stride", stride, 2, minimum=1)
        self.padding = int_tuple(name, "padding", padding, 2, minimum=0)
        self.output_padding = int_tuple(name, "output_padding", output_padding, 2, minimum=0)
        self.dilation = int_tuple(name, "dilation", dilation, 2, minimum=1)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if not (op < s or op < d):
                raise ConfigError(f"{name}: output_padding must be smaller than either stride or "
                                  f"dilation, got output_padding={self.output_padding}, "
                                  f"stride={self.stride}, dilation={self.dilation}")
        if padding_mode != "zeros":
            raise ConfigError(f"{name}: only padding_mode='zeros' is supported, got "
                              f"{padding_mode!r}")
        self.padding_mode = padding_mode
        kh, kw = self.kernel_size
        fan_in = (out_channels // groups) * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        self.add_param("weight", uniform_init((in_channels, out_channels // groups, kh, kw), bound))
        self.bias = self.add_param("bias", uniform_init((out_channels,), bound)) if bias else None

    def out_hw(self, h, w):
        return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1
                     for size, k, s, p, op, d in zip((h, w), self.kernel_size, self.stride,
                                                     self.padding, self.output_padding,
                                                     self.dilation, strict=True))

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        self.check_rank(shape, 4, "input (N, C, H, W)")
        if shape[1] != self.in_channels:
            raise ShapeError("wrong number of input channels",
                             expected=f"(N, {self.in_channels}, H, W)", received=shape)
        oh, ow = self.out_hw(shape[2], shape[3])
        if oh < 1 or ow < 1:
            raise ShapeError(f"the padding {self.padding} removes the whole output "
                             f"(computed output size {(oh, ow)})",
                             expected="a positive output size", received=shape)
        return [(shape[0], self.out_channels, oh, ow)]

    def flops(self, in_shapes, out_shapes):
        n, _, h, w = in_shapes[0]
        kh, kw = self.kernel_size
        return 2 * n * self.in_channels * (self.out_channels // self.groups) * kh * kw * h * w

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
        if any(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + f", bias={self.bias is not None}"


@hookimpl
def minicnn_layers():
    return [ConvTranspose2d]


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution of (N, C_in, H, W) with weight (C_in, C_out / groups, kH, kW)."""
    from .functional_util import build, run
    in_channels, cog, kh, kw = weight.shape
    layer = build(ConvTranspose2d, in_channels, cog * groups, (kh, kw), stride, padding,
                  output_padding, groups, bias is not None, dilation)
    return run(layer, [input], weight=weight, bias=bias)


FUNCTIONAL = ["conv_transpose2d"]
