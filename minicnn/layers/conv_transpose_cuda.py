"""CUDA kernel of ConvTranspose2d: the adjoint of a convolution, run on the convolution's kernels.

A transposed convolution x (N, Cin, H, W) -> y (N, Cout, OH, OW) with weight (Cin, Cout/G, KH, KW)
is exactly the input gradient of the convolution y' (N, Cout, OH, OW) -> x' (N, Cin, H, W) with
the same weight read as (O = Cin, C/G = Cout/G, KH, KW), stride, padding, dilation and groups (the
way cuDNN runs it too). So, with ``values`` the geometry of that convolution (its input is our
output: C = Cout, H x W = OH x OW; its output is our input: O = Cin, OH x OW = H x W):

* forward      y  = conv input-gradient(x) + bias      (``conv_cuda.run_backward_data``)
* input grad   gx = conv forward(gy)                   (``conv_cuda.run_forward``, no bias)
* weight grad  gw = conv weight-gradient(input gy, output gradient x)
* bias grad    gb[o] = sum of gy[:, o]

``output_padding`` only changes the output size, which ``values`` carries. Every direction is a
gather (a thread per written element, or the tiled implicit GEMM of ``conv_tiled_cuda`` where it
pays): deterministic, no atomics, float32 and float64.
"""

from ..cuda_device import flat
from ..kernel import Kernel
from ..registry import hookimpl
from .conv_cuda import (
    channel_sums,
    conv_workspace,
    run_backward_data,
    run_backward_weight,
    run_forward,
)


def adjoint_values(layer, in_shape):
    """The geometry numbers (``conv_cuda._HP`` order) of the convolution whose input gradient
    this transposed convolution is."""
    n, cin, h, w = in_shape
    oh, ow = layer.out_hw(h, w)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (layer.kernel_size, layer.stride, layer.padding,
                                              layer.dilation)
    return (n, layer.out_channels, 1, oh, ow, cin, 1, h, w, 1, kh, kw, 1, sh, sw, 0, ph, pw,
            1, dh, dw, layer.groups)


class ConvTranspose2dCUDA(Kernel):
    layer, device = "ConvTranspose2d", "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return conv_workspace(adjoint_values(layer, in_shapes[0]), layer.weight.size, dtype)

    def forward(self, layer, xs, ys, ws):
        values = adjoint_values(layer, xs[0].shape)
        b = flat(layer.bias.data) if layer.bias is not None else None
        run_backward_data(flat(xs[0]), flat(layer.weight.data), flat(ys[0]), values, b, ws)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        values = adjoint_values(layer, xs[0].shape)
        gy = flat(gys[0])
        gw, gb = grads.get("weight"), grads.get("bias")
        if gxs[0] is not None:
            run_forward(gy, flat(layer.weight.data), None, flat(gxs[0]), values, ws=ws)
        if gw is not None:
            run_backward_weight(gy, flat(xs[0]), flat(gw), values, ws)
        if gb is not None:
            n, cout = values[0], values[1]
            channel_sums(gy, gb, n, cout, gy.size // (n * cout))


@hookimpl
def minicnn_kernels():
    return [ConvTranspose2dCUDA]
