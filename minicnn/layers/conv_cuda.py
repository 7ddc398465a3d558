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
* weight grad  thread per weight element: the sum over the batch and the output positions; when
  those sums are long, a block per (weight element, chunk of positions) summing in float64 in a
  fixed tree (``conv_backward_weight_chunks``), the chunks then added in order;
* bias grad    thread per output channel.

The forward kernels can also apply an activation as they store (``forward_fused``, used by the
executor's fusion: ``minicnn/fusion.py``).

Sums run in the array dtype. These direct kernels serve every case (any groups, 3-D); where it
pays (groups == 1, no depth axis, enough channels and pixels: ``conv_tiled_cuda.use_forward`` and
friends) the tiled implicit-GEMM kernels of ``conv_tiled_cuda`` run instead, and large bias
gradients use its block-reduced channel sum. The weight gradient's tiled form splits its long
reduction into chunks whose partials live in the ``gw_part`` workspace (summed in chunk order).
``conv_backward_data`` takes an optional per-channel bias: ``conv_transpose_cuda`` runs the
transposed convolution's forward through it.
"""

import numpy as np
from numba import float64

from .. import cuda_device
from ..cuda_device import const_array, cuda, flat, launch, launch_blocks, zero_of
from ..cuda_reduce import MIN_PER_THREAD, TREE, block_shape, block_sum, chunk_of
from ..kernel import Kernel
from ..registry import hookimpl
from . import conv_tiled_cuda as tiled
from .activation_cuda import NO_EPILOGUE, activate, epilogue_args

# indices into hp
_HP = ("N", "C", "D", "H", "W", "O", "OD", "OH", "OW", "KD", "KH", "KW", "SD", "SH", "SW", "PD",
       "PH", "PW", "DD", "DH", "DW", "G")


@cuda.jit
def conv_forward(x, w, b, y, hp, has_bias, zero, op, alpha, act_out):
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
        if op != NO_EPILOGUE:     # a fused activation (Kernel.forward_fused) writes act_out too
            act_out[idx] = activate(acc, op, alpha)


@cuda.jit
def conv_backward_data(gy, w, b, gx, hp, has_bias, zero):
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
        # taps outside-in, output channels innermost: the stride and bounds tests (integer
        # division and remainder, slow on a GPU) run once per tap instead of once per channel
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
                for kw in range(KW):
                    t = iw + PW - kw * DW
                    if t < 0 or t % SW != 0 or t // SW >= OW:
                        continue
                    gyi = ((n * O + g * og) * OD + od) * OH * OW + oh * OW + t // SW
                    wi = (((g * og) * cg + ci) * KD + kd) * KH * KW + kh * KW + kw
                    for _ in range(og):
                        acc += w[wi] * gy[gyi]
                        gyi += OD * OH * OW
                        wi += cg * KD * KH * KW
        if has_bias:
            acc += b[c]
        gx[idx] = acc


@cuda.jit(device=True)
def _weight_element(idx, cg, og, KD, KH, KW):
    """(output channel, input channel, kd, kh, kw) of flat weight index ``idx``."""
    kw = idx % KW
    r = idx // KW
    kh = r % KH
    r = r // KH
    kd = r % KD
    r = r // KD
    ci = r % cg
    o = r // cg
    return o, (o // og) * cg + ci, kd, kh, kw


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
        o, c, kd, kh, kw = _weight_element(idx, cg, og, KD, KH, KW)
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
def conv_backward_weight_chunks(x, gy, part, hp, splits):
    """Long weight-gradient sums cut into chunks: block (weight element e, chunk k) sums its chunk
    of the N OD OH OW output positions in float64, in a fixed tree; part[k, e] (flat (splits,
    gw.size)) gets the sum. Thread per weight element walking every position is what
    ``conv_backward_weight`` does; with few weights and long sums (LeNet's first layer at batch
    1024: 150 threads, 113 ms on an H100) that leaves the GPU idle."""
    tree = cuda.shared.array(TREE, float64)
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    N, C, D, H, W = hp[0], hp[1], hp[2], hp[3], hp[4]
    O, OD, OH, OW = hp[5], hp[6], hp[7], hp[8]
    KD, KH, KW = hp[9], hp[10], hp[11]
    SD, SH, SW = hp[12], hp[13], hp[14]
    PD, PH, PW = hp[15], hp[16], hp[17]
    DD, DH, DW = hp[18], hp[19], hp[20]
    G = hp[21]
    cg = C // G
    og = O // G
    size = O * cg * KD * KH * KW
    positions = N * OD * OH * OW
    for block in range(cuda.blockIdx.x, size * splits, cuda.gridDim.x):
        idx, first, stop = chunk_of(block, splits, positions)
        o, c, kd, kh, kw = _weight_element(idx, cg, og, KD, KH, KW)
        acc = 0.0
        for j in range(first + t, stop, threads):
            ow = j % OW
            q = j // OW
            oh = q % OH
            q = q // OH
            od = q % OD
            n = q // OD
            d = od * SD - PD + kd * DD
            h = oh * SH - PH + kh * DH
            ww = ow * SW - PW + kw * DW
            if d >= 0 and d < D and h >= 0 and h < H and ww >= 0 and ww < W:
                g = np.float64(gy[(((n * O + o) * OD + od) * OH + oh) * OW + ow])
                acc += g * x[(((n * C + c) * D + d) * H + h) * W + ww]
        total = block_sum(tree, acc, t, threads)
        if t == 0:
            part[(block % splits) * size + idx] = total


@cuda.jit
def conv_backward_bias(gy, gb, shape, zero):
    """gb[o] = sum of gy[n, o, :] (gy flat (N, O, P), shape = (N, O, P)): a thread per channel."""
    N, O, P = shape[0], shape[1], shape[2]
    for o in range(cuda.grid(1), O, cuda.gridsize(1)):
        acc = zero
        for n in range(N):
            base = (n * O + o) * P
            for p in range(P):
                acc += gy[base + p]
        gb[o] = acc


def _pad3(values, dims, fill):
    return (fill,) * (3 - dims) + tuple(values)


def geometry_values(layer, in_shape):
    """The hp numbers (see _HP) of a convolution for an input shape, a tuple."""
    dims = layer.dims
    n, c = in_shape[:2]
    spatial = _pad3(in_shape[2:], dims, 1)
    out = _pad3(layer.out_spatial(tuple(in_shape[2:])), dims, 1)
    return ((n, c) + spatial + (layer.out_channels,) + out
            + _pad3(layer.kernel_size, dims, 1) + _pad3(layer.stride, dims, 1)
            + _pad3(layer.padding_lo, dims, 0) + _pad3(layer.dilation, dims, 1)
            + (layer.groups,))


def geometry(layer, in_shape):
    """The hp table (see _HP) of a convolution for an input shape, as a cached device array."""
    return const_array(geometry_values(layer, in_shape))


# -- the three directions of a convolution given its geometry numbers (shared with
#    conv_transpose_cuda, which runs them with the roles of x and y exchanged) -------------------

def run_forward(x, w, b, y, values, act=None, r=None, ws=None):
    """y = conv(x, w) (+ b when not None); flat device arrays. With ``act`` (an activation
    kernel's ``epilogue``) also r = act(y) in the same pass. ``ws``: the workspace of
    ``conv_workspace`` (a tiled GEMM short of blocks splits its reduction into it)."""
    if tiled.use_forward(values):
        tiled.forward(x, w, b if b is not None else w, y, values, b is not None, act, r,
                      part=ws.get("k_part") if ws else None)
    else:
        op, alpha = epilogue_args(act)
        launch(conv_forward, y.size, x, w, b if b is not None else w, y, const_array(values),
               b is not None, zero_of(y.dtype), op, alpha, r if r is not None else y)


def run_backward_data(gy, w, gx, values, b=None, ws=None):
    """gx = the input gradient of conv for gy (+ b[c] per input channel when not None)."""
    if tiled.use_backward_data(values):
        tiled.backward_data(gy, w, gx, values, b, part=ws.get("k_part") if ws else None)
    else:
        launch(conv_backward_data, gx.size, gy, w, b if b is not None else w, gx,
               const_array(values), b is not None, zero_of(gx.dtype))


def _positions(values):
    return values[0] * values[6] * values[7] * values[8]


def chunked_weight_shape(values, weight_size):
    """(threads per block, chunks per weight element) of ``conv_backward_weight_chunks``; 0
    chunks for sums too short to be worth a block (a thread per element then)."""
    threads, splits = block_shape(weight_size, _positions(values))
    return threads, (splits if _positions(values) >= threads * MIN_PER_THREAD else 0)


def conv_workspace(values, weight_size, dtype):
    """The partial sums of split reductions, {} when none splits: the weight gradient's chunks
    (tiled: in the dtype; chunked direct: float64) and the tiled forward's and input gradient's
    (``k_part``, one buffer for both)."""
    ws = {}
    splits = tiled.weight_splits(values)
    if splits > 1:
        ws["gw_part"] = ((splits * weight_size,), dtype)
    chunks = chunked_weight_shape(values, weight_size)[1] if splits == 0 else 0
    if chunks:
        ws["gw_part64"] = ((chunks * weight_size,), np.float64)
    size = tiled.split_workspace(values)
    if size:
        ws["k_part"] = ((size,), dtype)
    return ws


def run_backward_weight(x, gy, gw, values, ws):
    """gw = the weight gradient of conv for input x and output gradient gy."""
    splits = tiled.weight_splits(values)
    part = ws.get("gw_part")
    if splits > 1 and (part is None or part.size != splits * gw.size):
        splits = 0        # the workspace was planned with other settings: the direct kernel
    if splits:
        tiled.backward_weight(x, gy, gw, part if splits > 1 else gw, values, splits)
        return
    threads, chunks = chunked_weight_shape(values, gw.size)
    part = ws.get("gw_part64")
    if chunks and part is not None and part.size == chunks * gw.size:
        launch_blocks(conv_backward_weight_chunks, min(gw.size * chunks, cuda_device.MAX_BLOCKS),
                      threads, x, gy, part, const_array(values), chunks)
        launch(tiled.split_sum, gw.size, part, gw, chunks)   # in order, then to gw's dtype
    else:
        launch(conv_backward_weight, gw.size, x, gy, gw, const_array(values), zero_of(gw.dtype))


def channel_sums(g, out, n, c, p):
    """out[c] = sum over n and p of g[n, c, p] (the bias gradient): a block-reduced sum for large
    planes, a thread per channel otherwise."""
    if n * p >= tiled.MIN_PIXELS:
        tiled.channel_sums(g, out, n, c, p)
    else:
        launch(conv_backward_bias, c, g, out, const_array((n, c, p)), zero_of(out.dtype))


class _ConvCUDA(Kernel):
    """Conv1d / Conv2d / Conv3d on the GPU (the subclasses only name the layer)."""

    device = "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return conv_workspace(geometry_values(layer, in_shapes[0]), layer.weight.size, dtype)

    def forward(self, layer, xs, ys, ws):
        self.forward_fused(layer, xs, ys, ws, None, None)

    @staticmethod
    def _geometry(layer, x, ws):
        """The geometry numbers, worked out once per plan step (its input shape is fixed; this
        is host time every launch would pay)."""
        values = ws.get("geometry")
        if values is None:
            values = ws["geometry"] = geometry_values(layer, x.shape)
        return values

    def forward_fused(self, layer, xs, ys, ws, act, out):
        values = self._geometry(layer, xs[0], ws)
        b = flat(layer.bias.data) if layer.bias is not None else None
        run_forward(flat(xs[0]), flat(layer.weight.data), b, flat(ys[0]), values, act,
                    None if out is None else flat(out), ws)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        values = self._geometry(layer, xs[0], ws)
        gy = flat(gys[0])
        gw, gb = grads.get("weight"), grads.get("bias")
        if gxs[0] is not None:
            run_backward_data(gy, flat(layer.weight.data), flat(gxs[0]), values, ws=ws)
        if gw is not None:
            run_backward_weight(flat(xs[0]), gy, flat(gw), values, ws)
        if gb is not None:
            n, o = values[0], values[5]
            channel_sums(gy, gb, n, o, gy.size // (n * o))


class Conv1dCUDA(_ConvCUDA):
    layer = "Conv1d"


class Conv2dCUDA(_ConvCUDA):
    layer = "Conv2d"


class Conv3dCUDA(_ConvCUDA):
    layer = "Conv3d"


@hookimpl
def minicnn_kernels():
    return [Conv1dCUDA, Conv2dCUDA, Conv3dCUDA]
