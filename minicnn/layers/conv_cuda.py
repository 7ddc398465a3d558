"""CUDA kernels of Conv1d, Conv2d and Conv3d: direct convolution, gather-style in every direction.

Layout. As on the CPU, every convolution runs as a 3-D one on flat views of 5-D arrays
``x (N, C, D, H, W)``, weight ``(O, Cg, KD, KH, KW)`` with ``Cg = C / groups``, ``y (N, O, OD, OH,
OW)``; Conv1d and Conv2d are the same kernels with singleton axes. The geometry travels as one
device int64 array ``hp`` (see ``_HP``), uploaded once per (layer hyper-parameters, input shape).

Directions (each element written by exactly one thread, sums in a fixed order: bit-reproducible):

* forward      thread per ``y`` element: ``b[o] + sum_{ci, kd, kh, kw} w * x`` over the taps
  that fall inside the input (padding reads as zero);
* input grad   thread per ``x`` element ``(n, c, d, h, w)``: the sum over the output channels of
  ``c``'s group and the kernel taps ``k`` for which ``t = d + PD - kd * DD`` is a multiple of the
  stride and ``t / SD`` a valid output index (likewise h, w) of ``w[o, ci, k] * gy[n, o, t / S]``;
* weight grad  thread per weight element: the sum over the batch and the output positions;
* bias grad    thread per output channel.

Sums run in the array dtype. This is the plain, correct kernel; an implicit-GEMM kernel with
shared-memory tiles (design section 6: 24-27 TFLOP/s on the H100) is the next step for speed.
"""

from ..cuda_device import const_array, cuda, flat, launch, zero_of
from ..kernel import Kernel
from ..registry import hookimpl

# indices into hp
_HP = ("N", "C", "D", "H", "W", "O", "OD", "OH", "OW", "KD", "KH", "KW", "SD", "SH", "SW", "PD",
       "PH", "PW", "DD", "DH", "DW", "G")


@cuda.jit
def conv_forward(x, w, b, y, hp, has_bias, zero):
    C, D, H, W = hp[1], hp[2], hp[3], hp[4]
    O, OD, OH, OW = hp[5], hp[6], hp[7], hp[8]
    KD, KH, KW = hp[9], hp[10], hp[11]
    SD, SH, SW = hp[12], hp[13], hp[14]
    PD, PH, PW = hp[15], hp[16], hp[17]
    DD, DH, DW = hp[18], hp[19], hp[20]
    G = hp[21]
    cg = C // G
    og = O // G
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        ow = idx % OW
        r = idx // OW
        oh = r % OH
        r = r // OH
        od = r % OD
        r = r // OD
        o = r % O
        n = r // O
        c0 = (o // og) * cg
        acc = zero
        for ci in range(cg):
            xc = (n * C + c0 + ci) * D
            wc = (o * cg + ci) * KD
            for kd in range(KD):
                d = od * SD - PD + kd * DD
                if d < 0 or d >= D:
                    continue
                for kh in range(KH):
                    h = oh * SH - PH + kh * DH
                    if h < 0 or h >= H:
                        continue
                    xrow = ((xc + d) * H + h) * W
                    wrow = ((wc + kd) * KH + kh) * KW
                    for kw in range(KW):
                        ww = ow * SW - PW + kw * DW
                        if ww >= 0 and ww < W:
                            acc += w[wrow + kw] * x[xrow + ww]
        if has_bias:
            acc += b[o]
        y[idx] = acc


@cuda.jit
def conv_backward_data(gy, w, gx, hp, zero):
    C, D, H, W = hp[1], hp[2], hp[3], hp[4]
    O, OD, OH, OW = hp[5], hp[6], hp[7], hp[8]
    KD, KH, KW = hp[9], hp[10], hp[11]
    SD, SH, SW = hp[12], hp[13], hp[14]
    PD, PH, PW = hp[15], hp[16], hp[17]
    DD, DH, DW = hp[18], hp[19], hp[20]
    G = hp[21]
    cg = C // G
    og = O // G
    for idx in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        iw = idx % W
        r = idx // W
        ih = r % H
        r = r // H
        id_ = r % D
        r = r // D
        c = r % C
        n = r // C
        g = c // cg
        ci = c - g * cg
        acc = zero
        for o in range(g * og, (g + 1) * og):
            gyo = (n * O + o) * OD
            wc = (o * cg + ci) * KD
            for kd in range(KD):
                t = id_ + PD - kd * DD
                if t < 0 or t % SD != 0 or t // SD >= OD:
                    continue
                od = t // SD
                for kh in range(KH):
                    t = ih + PH - kh * DH
                    if t < 0 or t % SH != 0 or t // SH >= OH:
                        continue
                    oh = t // SH
                    grow = ((gyo + od) * OH + oh) * OW
                    wrow = ((wc + kd) * KH + kh) * KW
                    for kw in range(KW):
                        t = iw + PW - kw * DW
                        if t >= 0 and t % SW == 0 and t // SW < OW:
                            acc += w[wrow + kw] * gy[grow + t // SW]
        gx[idx] = acc


@cuda.jit
def conv_backward_weight(x, gy, gw, hp, zero):
    N, C, D, H, W = hp[0], hp[1], hp[2], hp[3], hp[4]
    O, OD, OH, OW = hp[5], hp[6], hp[7], hp[8]
    KD, KH, KW = hp[9], hp[10], hp[11]
    SD, SH, SW = hp[12], hp[13], hp[14]
    PD, PH, PW = hp[15], hp[16], hp[17]
    DD, DH, DW = hp[18], hp[19], hp[20]
    G = hp[21]
    cg = C // G
    og = O // G
    for idx in range(cuda.grid(1), gw.size, cuda.gridsize(1)):
        kw = idx % KW
        r = idx // KW
        kh = r % KH
        r = r // KH
        kd = r % KD
        r = r // KD
        ci = r % cg
        o = r // cg
        c = (o // og) * cg + ci
        acc = zero
        for n in range(N):
            xc = (n * C + c) * D
            gyo = (n * O + o) * OD
            for od in range(OD):
                d = od * SD - PD + kd * DD
                if d < 0 or d >= D:
                    continue
                for oh in range(OH):
                    h = oh * SH - PH + kh * DH
                    if h < 0 or h >= H:
                        continue
                    xrow = ((xc + d) * H + h) * W
                    grow = ((gyo + od) * OH + oh) * OW
                    for ow in range(OW):
                        ww = ow * SW - PW + kw * DW
                        if ww >= 0 and ww < W:
                            acc += gy[grow + ow] * x[xrow + ww]
        gw[idx] = acc


@cuda.jit
def conv_backward_bias(gy, gb, hp, zero):
    N, O = hp[0], hp[5]
    P = hp[6] * hp[7] * hp[8]
    for o in range(cuda.grid(1), O, cuda.gridsize(1)):
        acc = zero
        for n in range(N):
            base = (n * O + o) * P
            for p in range(P):
                acc += gy[base + p]
        gb[o] = acc


def _pad3(values, dims, fill):
    return (fill,) * (3 - dims) + tuple(values)


def geometry(layer, in_shape):
    """The hp table (see _HP) of a convolution for an input shape, as a cached device array."""
    dims = layer.dims
    n, c = in_shape[:2]
    spatial = _pad3(in_shape[2:], dims, 1)
    out = _pad3(layer.out_spatial(tuple(in_shape[2:])), dims, 1)
    values = ((n, c) + spatial + (layer.out_channels,) + out
              + _pad3(layer.kernel_size, dims, 1) + _pad3(layer.stride, dims, 1)
              + _pad3(layer.padding_lo, dims, 0) + _pad3(layer.dilation, dims, 1)
              + (layer.groups,))
    return const_array(values)


class _ConvCUDA(Kernel):
    """Conv1d / Conv2d / Conv3d on the GPU (the subclasses only name the layer)."""

    device = "cuda"

    def forward(self, layer, xs, ys, ws):
        hp = geometry(layer, xs[0].shape)
        w = flat(layer.weight.data)
        b = flat(layer.bias.data) if layer.bias is not None else w
        launch(conv_forward, ys[0].size, flat(xs[0]), w, b, flat(ys[0]), hp,
               layer.bias is not None, zero_of(w.dtype))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        hp = geometry(layer, xs[0].shape)
        gy = flat(gys[0])
        zero = zero_of(gy.dtype)
        gw, gb = grads.get("weight"), grads.get("bias")
        if gxs[0] is not None:
            launch(conv_backward_data, gxs[0].size, gy, flat(layer.weight.data), flat(gxs[0]),
                   hp, zero)
        if gw is not None:
            launch(conv_backward_weight, gw.size, flat(xs[0]), gy, flat(gw), hp, zero)
        if gb is not None:
            launch(conv_backward_bias, gb.size, gy, gb, hp, zero)


class Conv1dCUDA(_ConvCUDA):
    layer = "Conv1d"


class Conv2dCUDA(_ConvCUDA):
    layer = "Conv2d"


class Conv3dCUDA(_ConvCUDA):
    layer = "Conv3d"


@hookimpl
def minicnn_kernels():
    return [Conv1dCUDA, Conv2dCUDA, Conv3dCUDA]
