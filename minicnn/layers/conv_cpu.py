"""CPU kernels of Conv1d, Conv2d and Conv3d: one generic 3-D im2col + GEMM, and Winograd for 3x3.

Layout. Every convolution runs as a 3-D one on 5-D arrays ``x (N, C, D, H, W)``; Conv1d and Conv2d
pass views with singleton axes (a size-1 axis with kernel 1, stride 1, padding 0 changes nothing),
so the three layers share one set of compiled kernels per dtype. Inside the kernels the weight is
viewed as ``(G, Og, Kg)`` (groups, output channels per group, ``Kg = Cg*KD*KH*KW``) and the output
as ``(N, G, Og, P)`` with ``P = OD*OH*OW`` output positions, flattened row-major.

Algorithm (design section 6). The work is split into ``nchunks`` contiguous chunks (one per numba
thread, ``prange``); each chunk owns a slice of every scratch array, so no two threads write the
same element. For one image and one tile of output positions ``[p0, p1)`` a chunk unfolds the
receptive fields into ``col (Kg, p1 - p0)`` (im2col, zeros where the window hangs over the padding)
and multiplies with ``np.dot`` (SciPy's BLAS, held to one thread by ``limit_blas_threads``):

* forward      ``y[n, g][:, tile] = W[g] @ col`` (+ bias);
* weight grad  ``gW[g] += gy[n, g][:, tile] @ col.T``, accumulated per chunk in ``gws[chunk]`` and
  summed over chunks in a fixed order afterwards, so results are bit-reproducible from run to run;
* input grad   ``gcol = W[g].T @ gy[n, g][:, tile]``, then col2im adds ``gcol`` back into ``gx[n]``.
  A work item is (image, group, block of input channels) and owns its slice of ``gx`` alone, so the
  scatter-add has no races and a fixed order.

Tiles bound the scratch memory (``COL_BUDGET`` elements per thread) and, with fewer images than
threads, split an image so that every thread has work. A 1x1 convolution with stride 1 and no
padding needs no im2col: when an image is one tile it is a plain GEMM per image (``x[n, g]`` is
``col``).

2-D 3x3 convolutions with stride 1, no dilation and at least ``WINO_MIN_CHANNELS`` channels per
group (VGG, ResNet bodies) take Winograd's F(2x2, 3x3) instead, in all three directions: 16 GEMMs
over transformed 4x4 tiles replace the 9-tap im2col GEMM, 2.25x fewer multiplications. Its
transforms use only 0, +-1 and +-1/2; results agree with the im2col path to float32 rounding (tests
check both). Those kernels live in ``winograd_cpu.py``; this file holds im2col, the geometry and the
Kernel classes.
"""

import numba
import numpy as np
from numba import prange

from ..jit import cpu_kernel, limit_blas_threads
from ..kernel import Kernel
from ..registry import hookimpl
from .winograd_cpu import (
    WINO_PAD,
    winograd_conv3x3,
    winograd_grad_weight3x3,
    winograd_weights,
    winograd_weights_grad,
)

COL_BUDGET = 1 << 20   # scratch elements per thread for one im2col tile (4 MiB in float32)
WINOGRAD = True        # use Winograd F(2x2, 3x3) where it applies (see Geometry)
WINO_MIN_CHANNELS = 16  # ... and only with at least this many channels per group on both sides
WINO_BUDGET = 1 << 19  # scratch elements per thread for each of Winograd's two tile buffers

# hp: the geometry tuple the kernels receive (all ints)
# (OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW, ptile, ntiles, pointwise)


@cpu_kernel(parallel=False)
def _im2col(x, n, c0, nc, hp, p0, p1, col):
    """col[((ci*KD + kd)*KH + kh)*KW + kw, p - p0] = x[n, c0+ci, id, ih, iw] for p in [p0, p1).

    Output position p is (od, oh, ow) row-major; id = od*SD - PD + kd*DD (likewise ih, iw); zero
    where the window element falls in the padding. Element accesses use flat unsigned indices:
    numba then emits no negative-index wraparound, and the copy loops vectorise (several times
    faster than signed 5-D indexing). Whole images (the usual tile) take plain row loops, with a
    single copy loop for rows that lie inside the input.
    """
    OD, OH, OW = hp[0], hp[1], hp[2]
    if p0 != 0 or p1 != OD * OH * OW:
        _im2col_part(x, n, c0, nc, hp, p0, p1, col)
        return
    D, H, W = x.shape[2], x.shape[3], x.shape[4]
    KD, KH, KW = hp[3], hp[4], hp[5]
    SD, SH, SW = hp[6], hp[7], hp[8]
    PD, PH, PW = hp[9], hp[10], hp[11]
    DD, DH, DW = hp[12], hp[13], hp[14]
    xf = x.reshape(-1)
    cf = col.reshape(-1)
    dst = 0
    for ci in range(nc):
        xc = (n * x.shape[1] + c0 + ci) * D
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off = kw * DW - PW          # iw = ow*SW + off
                    lo = min((-off + SW - 1) // SW if off < 0 else 0, OW)
                    hi = max(min(OW, (W - 1 - off) // SW + 1), lo)
                    inner = SW == 1 and lo == 0 and hi == OW
                    for od in range(OD):
                        idd = od * SD - PD + kd * DD
                        for oh in range(OH):
                            ih = oh * SH - PH + kh * DH
                            src = ((xc + idd) * H + ih) * W + off
                            if idd < 0 or idd >= D or ih < 0 or ih >= H:
                                for ow in range(OW):
                                    cf[np.uint64(dst + ow)] = 0.0
                            elif inner:
                                for ow in range(OW):
                                    cf[np.uint64(dst + ow)] = xf[np.uint64(src + ow)]
                            else:
                                for ow in range(lo):
                                    cf[np.uint64(dst + ow)] = 0.0
                                for ow in range(lo, hi):
                                    cf[np.uint64(dst + ow)] = xf[np.uint64(src + ow * SW)]
                                for ow in range(hi, OW):
                                    cf[np.uint64(dst + ow)] = 0.0
                            dst += OW


@cpu_kernel(parallel=False)
def _im2col_part(x, n, c0, nc, hp, p0, p1, col):
    """_im2col for a tile [p0, p1) that may start or end inside an output row: walked as row
    segments of constant (od, oh)."""
    D, H, W = x.shape[2], x.shape[3], x.shape[4]
    OH, OW = hp[1], hp[2]
    KD, KH, KW = hp[3], hp[4], hp[5]
    SD, SH, SW = hp[6], hp[7], hp[8]
    PD, PH, PW = hp[9], hp[10], hp[11]
    DD, DH, DW = hp[12], hp[13], hp[14]
    xf = x.reshape(-1)
    cf = col.reshape(-1)
    pt = p1 - p0
    row_0 = p0 // OW            # (od, oh, ow) of the tile's first position
    ow_0 = p0 - row_0 * OW
    od_0 = row_0 // OH
    oh_0 = row_0 - od_0 * OH
    r = 0
    for ci in range(nc):
        xc = (n * x.shape[1] + c0 + ci) * D
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off = kw * DW - PW          # iw = ow*SW + off
                    lo = (-off + SW - 1) // SW if off < 0 else 0
                    hi = min(OW, (W - 1 - off) // SW + 1)
                    q, od, oh, ow0 = p0, od_0, oh_0, ow_0
                    while q < p1:
                        ow1 = min(OW, ow0 + (p1 - q))
                        idd = od * SD - PD + kd * DD
                        ih = oh * SH - PH + kh * DH
                        dst = r * pt + q - ow0 - p0     # col index of ow = 0 in this segment
                        if idd < 0 or idd >= D or ih < 0 or ih >= H:
                            for ow in range(ow0, ow1):
                                cf[np.uint64(dst + ow)] = 0.0
                        else:
                            src = ((xc + idd) * H + ih) * W + off
                            a = min(max(ow0, lo), ow1)
                            b = max(min(ow1, hi), a)
                            for ow in range(ow0, a):
                                cf[np.uint64(dst + ow)] = 0.0
                            if SW == 1:
                                for ow in range(a, b):
                                    cf[np.uint64(dst + ow)] = xf[np.uint64(src + ow)]
                            else:
                                for ow in range(a, b):
                                    cf[np.uint64(dst + ow)] = xf[np.uint64(src + ow * SW)]
                            for ow in range(b, ow1):
                                cf[np.uint64(dst + ow)] = 0.0
                        q += ow1 - ow0
                        ow0 = 0         # the next segment is the start of the next row
                        oh += 1
                        if oh == OH:
                            oh = 0
                            od += 1
                    r += 1


@cpu_kernel(parallel=False)
def _col2im(col, gx, n, c0, nc, hp, p0, p1):
    """The adjoint of _im2col: gx[n, c0+ci, id, ih, iw] += col[row, p - p0] (padding dropped)."""
    OD, OH, OW = hp[0], hp[1], hp[2]
    if p0 != 0 or p1 != OD * OH * OW:
        _col2im_part(col, gx, n, c0, nc, hp, p0, p1)
        return
    D, H, W = gx.shape[2], gx.shape[3], gx.shape[4]
    KD, KH, KW = hp[3], hp[4], hp[5]
    SD, SH, SW = hp[6], hp[7], hp[8]
    PD, PH, PW = hp[9], hp[10], hp[11]
    DD, DH, DW = hp[12], hp[13], hp[14]
    gf = gx.reshape(-1)
    cf = col.reshape(-1)
    src = 0
    for ci in range(nc):
        xc = (n * gx.shape[1] + c0 + ci) * D
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off = kw * DW - PW
                    lo = min((-off + SW - 1) // SW if off < 0 else 0, OW)
                    hi = max(min(OW, (W - 1 - off) // SW + 1), lo)
                    for od in range(OD):
                        idd = od * SD - PD + kd * DD
                        for oh in range(OH):
                            ih = oh * SH - PH + kh * DH
                            if idd >= 0 and idd < D and ih >= 0 and ih < H:
                                dst = ((xc + idd) * H + ih) * W + off
                                if SW == 1:
                                    for ow in range(lo, hi):
                                        gf[np.uint64(dst + ow)] += cf[np.uint64(src + ow)]
                                else:
                                    for ow in range(lo, hi):
                                        gf[np.uint64(dst + ow * SW)] += cf[np.uint64(src + ow)]
                            src += OW


@cpu_kernel(parallel=False)
def _col2im_part(col, gx, n, c0, nc, hp, p0, p1):
    """_col2im for a tile that may start or end inside an output row (see _im2col_part)."""
    D, H, W = gx.shape[2], gx.shape[3], gx.shape[4]
    OH, OW = hp[1], hp[2]
    KD, KH, KW = hp[3], hp[4], hp[5]
    SD, SH, SW = hp[6], hp[7], hp[8]
    PD, PH, PW = hp[9], hp[10], hp[11]
    DD, DH, DW = hp[12], hp[13], hp[14]
    gf = gx.reshape(-1)
    cf = col.reshape(-1)
    pt = p1 - p0
    row_0 = p0 // OW            # (od, oh, ow) of the tile's first position
    ow_0 = p0 - row_0 * OW
    od_0 = row_0 // OH
    oh_0 = row_0 - od_0 * OH
    r = 0
    for ci in range(nc):
        xc = (n * gx.shape[1] + c0 + ci) * D
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off = kw * DW - PW
                    lo = (-off + SW - 1) // SW if off < 0 else 0
                    hi = min(OW, (W - 1 - off) // SW + 1)
                    q, od, oh, ow0 = p0, od_0, oh_0, ow_0
                    while q < p1:
                        ow1 = min(OW, ow0 + (p1 - q))
                        idd = od * SD - PD + kd * DD
                        ih = oh * SH - PH + kh * DH
                        if idd >= 0 and idd < D and ih >= 0 and ih < H:
                            src = r * pt + q - ow0 - p0
                            dst = ((xc + idd) * H + ih) * W + off
                            a = min(max(ow0, lo), ow1)
                            b = max(min(ow1, hi), a)
                            if SW == 1:
                                for ow in range(a, b):
                                    gf[np.uint64(dst + ow)] += cf[np.uint64(src + ow)]
                            else:
                                for ow in range(a, b):
                                    gf[np.uint64(dst + ow * SW)] += cf[np.uint64(src + ow)]
                        q += ow1 - ow0
                        ow0 = 0         # the next segment is the start of the next row
                        oh += 1
                        if oh == OH:
                            oh = 0
                            od += 1
                    r += 1


@cpu_kernel(parallel=False)
def _gather_tile(src, p0, p1, dst):
    """dst[o, p - p0] = src[o, p]: a contiguous copy of one tile of output positions."""
    for o in range(src.shape[0]):
        for p in range(p0, p1):
            dst[o, p - p0] = src[o, p]


@cpu_kernel
def conv_forward(x, w, b, y, col, tmp, hp):
    """y (N, G, Og, P) = conv(x (N, C, D, H, W), w (G, Og, Kg)) + b (O,) (b empty: no bias)."""
    N, C = x.shape[0], x.shape[1]
    G, Og, Kg = w.shape[0], w.shape[1], w.shape[2]
    P = y.shape[3]
    Cg = C // G
    ptile, ntiles, pointwise = hp[15], hp[16], hp[17]
    x4 = x.reshape((N, G, Cg, x.shape[2] * x.shape[3] * x.shape[4]))
    nchunks = col.shape[0]
    items = N * ntiles
    has_bias = b.size > 0
    for chunk in prange(nchunks):
        for it in range(chunk * items // nchunks, (chunk + 1) * items // nchunks):
            n = it // ntiles
            p0 = (it - n * ntiles) * ptile
            p1 = min(P, p0 + ptile)
            pt = p1 - p0
            for g in range(G):
                if ntiles == 1:
                    if pointwise:
                        np.dot(w[g], x4[n, g], y[n, g])
                    else:
                        cm = col[chunk, :Kg * pt].reshape((Kg, pt))
                        _im2col(x, n, g * Cg, Cg, hp, p0, p1, cm)
                        np.dot(w[g], cm, y[n, g])
                    if has_bias:
                        for o in range(Og):
                            bo = b[g * Og + o]
                            for p in range(P):
                                y[n, g, o, p] += bo
                else:
                    cm = col[chunk, :Kg * pt].reshape((Kg, pt))
                    tm = tmp[chunk, :Og * pt].reshape((Og, pt))
                    _im2col(x, n, g * Cg, Cg, hp, p0, p1, cm)
                    np.dot(w[g], cm, tm)
                    for o in range(Og):
                        bo = b[g * Og + o] if has_bias else 0.0
                        for p in range(pt):
                            y[n, g, o, p0 + p] = tm[o, p] + bo


@cpu_kernel
def conv_backward_weight(x, gy, gw, gb, col, tmp, gwt, gws, gbs, hp, need_w, need_b):
    """gw (G, Og, Kg) and/or gb (O,) from x (N, C, D, H, W) and gy (N, G, Og, P); gwt and gws
    (per-chunk product and partial sums) are only touched when need_w."""
    N, C = x.shape[0], x.shape[1]
    G, Og, P = gy.shape[1], gy.shape[2], gy.shape[3]
    Kg = gws.shape[3]
    Cg = C // G
    ptile, ntiles, pointwise = hp[15], hp[16], hp[17]
    x4 = x.reshape((N, G, Cg, x.shape[2] * x.shape[3] * x.shape[4]))
    nchunks = gbs.shape[0]
    items = N * ntiles
    for chunk in prange(nchunks):
        if need_w:
            gws[chunk] = 0.0
        gbs[chunk] = 0.0
        for it in range(chunk * items // nchunks, (chunk + 1) * items // nchunks):
            n = it // ntiles
            p0 = (it - n * ntiles) * ptile
            p1 = min(P, p0 + ptile)
            pt = p1 - p0
            for g in range(G):
                if ntiles == 1:
                    gym = gy[n, g]
                else:
                    gym = tmp[chunk, :Og * pt].reshape((Og, pt))
                    _gather_tile(gy[n, g], p0, p1, gym)
                if need_w:
                    tw = gwt[chunk]
                    if ntiles == 1 and pointwise:
                        np.dot(gym, x4[n, g].T, tw)
                    else:
                        cm = col[chunk, :Kg * pt].reshape((Kg, pt))
                        _im2col(x, n, g * Cg, Cg, hp, p0, p1, cm)
                        np.dot(gym, cm.T, tw)
                    acc = gws[chunk, g]
                    for o in range(Og):
                        for k in range(Kg):
                            acc[o, k] += tw[o, k]
                if need_b:
                    for o in range(Og):
                        s = 0.0
                        for p in range(pt):
                            s += gym[o, p]
                        gbs[chunk, g * Og + o] += s
    # fixed-order reduction over chunks: each element summed by one thread, chunk 0 first
    if need_w:
        gwf = gw.reshape(-1)
        gwsf = gws.reshape((nchunks, gwf.size))
        for i in prange(gwf.size):
            s = gwsf[0, i]
            for c in range(1, nchunks):
                s += gwsf[c, i]
            gwf[i] = s
    if need_b:
        for o in range(gb.size):
            s = gbs[0, o]
            for c in range(1, nchunks):
                s += gbs[c, o]
            gb[o] = s


@cpu_kernel
def conv_backward_data(gy, wt, gx, col, tmp, hp, cblocks):
    """gx (N, C, D, H, W) from gy (N, G, Og, P) and the transposed weight wt (G, Kg, Og).

    Work item (image n, group g, channel block cb) owns gx[n, its channels]: it zeroes them, then
    adds the col2im of every tile in order.
    """
    N, C = gx.shape[0], gx.shape[1]
    G, Kg, Og = wt.shape[0], wt.shape[1], wt.shape[2]
    P = gy.shape[3]
    Cg = C // G
    kk = Kg // Cg
    ptile, ntiles, pointwise = hp[15], hp[16], hp[17]
    gx4 = gx.reshape((N, G, Cg, gx.shape[2] * gx.shape[3] * gx.shape[4]))
    nchunks = col.shape[0]
    items = N * G * cblocks
    for chunk in prange(nchunks):
        for it in range(chunk * items // nchunks, (chunk + 1) * items // nchunks):
            n = it // (G * cblocks)
            g = (it // cblocks) % G
            cb = it % cblocks
            c0 = cb * Cg // cblocks
            c1 = (cb + 1) * Cg // cblocks
            nc = c1 - c0
            if nc == 0:
                continue
            if ntiles == 1 and pointwise:
                np.dot(wt[g, c0:c1], gy[n, g], gx4[n, g, c0:c1])
                continue
            gx4[n, g, c0:c1] = 0.0
            wblock = wt[g, c0 * kk:c1 * kk]
            for t in range(ntiles):
                p0 = t * ptile
                p1 = min(P, p0 + ptile)
                pt = p1 - p0
                if ntiles == 1:
                    gym = gy[n, g]
                else:
                    gym = tmp[chunk, :Og * pt].reshape((Og, pt))
                    _gather_tile(gy[n, g], p0, p1, gym)
                cm = col[chunk, :nc * kk * pt].reshape((nc * kk, pt))
                np.dot(wblock, gym, cm)
                _col2im(cm, gx, n, g * Cg + c0, nc, hp, p0, p1)


# -- Python side: geometry, scratch sizes, the Kernel classes --------------------------------------


def _as5d(shape, dims):
    """(N, C, *spatial) -> (N, C, D, H, W) with leading singleton spatial axes."""
    return tuple(shape[:2]) + (1,) * (3 - dims) + tuple(shape[2:])


def _pad3(values, dims, fill):
    return (fill,) * (3 - dims) + tuple(values)


class Geometry:
    """Everything the kernels need about one (layer, input shape, thread count)."""

    def __init__(self, layer, in_shape, nchunks):
        dims = layer.dims
        self.x5 = _as5d(in_shape, dims)
        n = self.x5[0]
        out_spatial = layer.out_spatial(in_shape[2:])
        self.y5 = (n, layer.out_channels) + _pad3(out_spatial, dims, 1)
        g = layer.groups
        self.groups = g
        self.og = layer.out_channels // g
        self.cg = layer.in_channels // g
        kernel = _pad3(layer.kernel_size, dims, 1)
        stride = _pad3(layer.stride, dims, 1)
        pad = _pad3(layer.padding_lo, dims, 0)
        dil = _pad3(layer.dilation, dims, 1)
        self.kg = self.cg * int(np.prod(kernel))
        od, oh, ow = self.y5[2:]
        p = od * oh * ow
        self.p = p
        pointwise = all(k == 1 for k in kernel) and all(s == 1 for s in stride) \
            and all(v == 0 for v in pad)
        ptile = max(1, min(p, COL_BUDGET // self.kg))
        if n < nchunks:   # fewer images than threads: split images into tiles too
            per_image = -(-nchunks // n)
            ptile = min(ptile, -(-p // per_image))
        ntiles = -(-p // ptile)
        ptile = -(-p // ntiles)   # balance the tiles
        self.ptile, self.ntiles = ptile, ntiles
        self.hp = (od, oh, ow) + kernel + stride + pad + dil + (ptile, ntiles, int(pointwise))
        self.pointwise = pointwise
        self.cblocks = 1 if n * g >= nchunks else min(self.cg, -(-nchunks // (n * g)))
        self.nchunks = nchunks
        self.col_size = 1 if (pointwise and ntiles == 1) else self.kg * ptile
        self.tmp_size = 1 if ntiles == 1 else self.og * ptile
        # Winograd F(2x2, 3x3) for forward and input gradient: 2-D 3x3, stride 1, no dilation, and
        # enough channels per group on both sides for its 16 GEMMs to run at BLAS speed
        self.winograd = WINOGRAD and kernel == (1, 3, 3) and self.x5[2] == 1 \
            and stride == (1, 1, 1) and dil == (1, 1, 1) \
            and min(self.cg, self.og) >= WINO_MIN_CHANNELS
        self.wino_size = 1
        if self.winograd:
            self.col_size = 1     # im2col is not used (the bias gradient needs only tmp)
            self.pad_hw = pad[1:]
            widest = max(layer.in_channels, layer.out_channels)
            tiles = max(-(-oh // 2) * -(-ow // 2), -(-self.x5[3] // 2) * -(-self.x5[4] // 2)) * n
            self.wino_mt = max(1, min(WINO_BUDGET // (16 * widest), -(-tiles // nchunks)))
            self.wino_size = 16 * (widest * self.wino_mt + WINO_PAD)


class _ConvCPU(Kernel):
    """Conv1d / Conv2d / Conv3d on the CPU (the subclasses only name the layer)."""

    device = "cpu"

    def __init__(self):
        self._cache = {}

    def geometry(self, layer, in_shape, nchunks):
        key = (layer.hyper_key(), tuple(in_shape), nchunks, COL_BUDGET, WINOGRAD,
               WINO_MIN_CHANNELS, WINO_BUDGET)
        geo = self._cache.get(key)
        if geo is None:
            if len(self._cache) > 256:
                self._cache.clear()
            geo = self._cache[key] = Geometry(layer, in_shape, nchunks)
        return geo

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        # one slice per chunk (= numba thread at build time): im2col tile, output/gradient tile,
        # weight-gradient product and partial sums, bias partial sums; Winograd's tile buffers and
        # its weight-gradient partial sums (size 1 where a path is not taken)
        nchunks = numba.get_num_threads()
        geo = self.geometry(layer, in_shapes[0], nchunks)
        return {
            "col": ((nchunks, geo.col_size), dtype),
            "tmp": ((nchunks, geo.tmp_size), dtype),
            "gwt": ((nchunks, geo.og, geo.cg if geo.winograd else geo.kg), dtype),
            "gws": ((1, 1, 1, 1) if geo.winograd else (nchunks, geo.groups, geo.og, geo.kg), dtype),
            "gbs": ((nchunks, layer.out_channels), dtype),
            "wv": ((nchunks, geo.wino_size), dtype),
            "wm": ((nchunks, geo.wino_size), dtype),
            "wu": ((nchunks, geo.groups, 16, geo.og, geo.cg) if geo.winograd else (1,), dtype),
            "wg": ((geo.groups, 16, geo.og, geo.cg) if geo.winograd else (1,), dtype),
        }

    def forward(self, layer, xs, ys, ws):
        limit_blas_threads()
        geo = self.geometry(layer, xs[0].shape, ws["col"].shape[0])
        w = _weight(layer)
        b = _bias(layer, w.dtype)
        if geo.winograd:
            n, c, _, h, wd = geo.x5
            y = ys[0].reshape(n, layer.out_channels, geo.y5[3], geo.y5[4])
            u = winograd_weights(w, geo.groups, flip=False)
            winograd_conv3x3(xs[0].reshape(n, c, h, wd), u, b, y, ws["wv"], ws["wm"],
                             geo.pad_hw[0], geo.pad_hw[1], geo.wino_mt)
            return
        x = xs[0].reshape(geo.x5)
        w = w.reshape(geo.groups, geo.og, geo.kg)
        y = ys[0].reshape(geo.x5[0], geo.groups, geo.og, geo.p)
        conv_forward(x, w, b, y, ws["col"], ws["tmp"], geo.hp)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        limit_blas_threads()
        geo = self.geometry(layer, xs[0].shape, ws["col"].shape[0])
        n = geo.x5[0]
        gy = gys[0].reshape(n, geo.groups, geo.og, geo.p)
        gw, gb = grads.get("weight"), grads.get("bias")
        if gw is not None and geo.winograd:
            n, c, _, h, wd = geo.x5
            gu = ws["wg"]
            winograd_grad_weight3x3(xs[0].reshape(n, c, h, wd),
                                    gys[0].reshape(n, layer.out_channels, geo.y5[3], geo.y5[4]),
                                    gu, ws["wu"], ws["gwt"], ws["wv"], ws["wm"], geo.pad_hw[0],
                                    geo.pad_hw[1], geo.wino_mt)
            winograd_weights_grad(gu, gw.reshape(geo.groups, geo.og, geo.cg, 3, 3))
            gw = None
        if gw is not None or gb is not None:
            dtype = gy.dtype
            gw_arr = gw.reshape(geo.groups, geo.og, geo.kg) if gw is not None \
                else np.empty((0, 0, 0), dtype)
            gb_arr = gb if gb is not None else np.empty(0, dtype)
            conv_backward_weight(xs[0].reshape(geo.x5), gy, gw_arr, gb_arr, ws["col"], ws["tmp"],
                                 ws["gwt"], ws["gws"], ws["gbs"], geo.hp, gw is not None,
                                 gb is not None)
        if gxs[0] is not None and geo.winograd:
            # gx = the 3x3 correlation of gy with the flipped, transposed weights, padded by 2 - P
            n, c, _, h, wd = geo.x5
            u = winograd_weights(_weight(layer), geo.groups, flip=True)
            winograd_conv3x3(gys[0].reshape(n, layer.out_channels, geo.y5[3], geo.y5[4]), u,
                             np.empty(0, u.dtype), gxs[0].reshape(n, c, h, wd), ws["wv"],
                             ws["wm"], 2 - geo.pad_hw[0], 2 - geo.pad_hw[1], geo.wino_mt)
        elif gxs[0] is not None:
            wt = np.ascontiguousarray(
                _weight(layer).reshape(geo.groups, geo.og, geo.kg).transpose(0, 2, 1))
            conv_backward_data(gy, wt, gxs[0].reshape(geo.x5), ws["col"], ws["tmp"], geo.hp,
                               geo.cblocks)


def _weight(layer):
    return np.ascontiguousarray(layer.weight.data)


def _bias(layer, dtype):
    if layer.bias is None:
        return np.empty(0, dtype)
    return np.ascontiguousarray(layer.bias.data, dtype=dtype)


class Conv1dCPU(_ConvCPU):
    layer = "Conv1d"


class Conv2dCPU(_ConvCPU):
    layer = "Conv2d"


class Conv3dCPU(_ConvCPU):
    layer = "Conv3d"


@hookimpl
def minicnn_kernels():
    return [Conv1dCPU, Conv2dCPU, Conv3dCPU]
