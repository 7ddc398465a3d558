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
check both).
"""

import numba
import numpy as np
from numba import prange

from ..jit import cpu_kernel, limit_blas_threads
from ..kernel import Kernel
from ..registry import hookimpl

COL_BUDGET = 1 << 20   # scratch elements per thread for one im2col tile (4 MiB in float32)
WINOGRAD = True        # use Winograd F(2x2, 3x3) where it applies (see Geometry)
WINO_MIN_CHANNELS = 16  # ... and only with at least this many channels per group on both sides
WINO_BUDGET = 1 << 19  # scratch elements per thread for each of Winograd's two tile buffers
WINO_PAD = 48          # elements between Winograd's 16 planes (keeps their addresses off 4 KiB)

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


# -- Winograd F(2x2, 3x3): 3x3 stride-1 convolutions with 2.25x fewer multiplications -----------
#
# A 4x4 input patch d and a 3x3 filter g give a 2x2 output tile  Y = A^T [(G g G^T) * (B^T d B)] A.
# The elementwise product summed over input channels is, for each of the 16 positions xi = 4*i + j,
# one GEMM  M[xi] (Og, tiles) = U[xi] (Og, Cg) @ V[xi] (Cg, tiles). The transform matrices hold only
# 0, +-1 and +-1/2, so float32 results stay within a few ulps of the direct sum. Work is split into
# contiguous ranges of output tiles (over all images), processed in batches of ``mt`` tiles.


@cpu_kernel(parallel=False)
def _wino_load(xf, base, h, w, H, W):
    """x at (h, w) of the plane starting at flat index ``base``; zero outside the plane."""
    if h < 0 or h >= H or w < 0 or w >= W:
        return 0.0
    return xf[np.uint64(base + h * W + w)]


@cpu_kernel(parallel=False)
def _wino_input(x, s, e, per_img, TW, ph, pw, vf, vs):
    """vf[xi*vs + c*m + t - s] = (B^T d B)[xi] for the tiles t in [s, e) (m = e - s); d is the 4x4
    patch of x[n, c] whose corner is (2*th - ph, 2*tw - pw), zero outside the input. The plane
    stride vs is kept off multiples of 4 KiB: 16 store streams 4 KiB apart would thrash L1 sets."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xf = x.reshape(-1)
    m = e - s
    cm = vs
    n0 = s // per_img
    th0 = (s - n0 * per_img) // TW
    tw0 = s - n0 * per_img - th0 * TW
    for c in range(C):
        n, th, tw = n0, th0, tw0
        for j in range(m):
            plane = (n * C + c) * H * W
            h0 = 2 * th - ph
            w0 = 2 * tw - pw
            if h0 >= 0 and h0 + 4 <= H and w0 >= 0 and w0 + 4 <= W:
                b0 = plane + h0 * W + w0
                r0 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
                b0 += W
                r1 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
                b0 += W
                r2 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
                b0 += W
                r3 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
            else:
                r0 = (_wino_load(xf, plane, h0, w0, H, W), _wino_load(xf, plane, h0, w0 + 1, H, W),
                      _wino_load(xf, plane, h0, w0 + 2, H, W),
                      _wino_load(xf, plane, h0, w0 + 3, H, W))
                r1 = (_wino_load(xf, plane, h0 + 1, w0, H, W),
                      _wino_load(xf, plane, h0 + 1, w0 + 1, H, W),
                      _wino_load(xf, plane, h0 + 1, w0 + 2, H, W),
                      _wino_load(xf, plane, h0 + 1, w0 + 3, H, W))
                r2 = (_wino_load(xf, plane, h0 + 2, w0, H, W),
                      _wino_load(xf, plane, h0 + 2, w0 + 1, H, W),
                      _wino_load(xf, plane, h0 + 2, w0 + 2, H, W),
                      _wino_load(xf, plane, h0 + 2, w0 + 3, H, W))
                r3 = (_wino_load(xf, plane, h0 + 3, w0, H, W),
                      _wino_load(xf, plane, h0 + 3, w0 + 1, H, W),
                      _wino_load(xf, plane, h0 + 3, w0 + 2, H, W),
                      _wino_load(xf, plane, h0 + 3, w0 + 3, H, W))
            d00, d01, d02, d03 = r0
            d10, d11, d12, d13 = r1
            d20, d21, d22, d23 = r2
            d30, d31, d32, d33 = r3
            # T = B^T d (rows of d combined), then V = T B (columns of T combined)
            t00, t01, t02, t03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
            t10, t11, t12, t13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
            t20, t21, t22, t23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
            t30, t31, t32, t33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
            k = c * m + j
            vf[np.uint64(k)] = t00 - t02
            vf[np.uint64(cm + k)] = t01 + t02
            vf[np.uint64(2 * cm + k)] = t02 - t01
            vf[np.uint64(3 * cm + k)] = t01 - t03
            vf[np.uint64(4 * cm + k)] = t10 - t12
            vf[np.uint64(5 * cm + k)] = t11 + t12
            vf[np.uint64(6 * cm + k)] = t12 - t11
            vf[np.uint64(7 * cm + k)] = t11 - t13
            vf[np.uint64(8 * cm + k)] = t20 - t22
            vf[np.uint64(9 * cm + k)] = t21 + t22
            vf[np.uint64(10 * cm + k)] = t22 - t21
            vf[np.uint64(11 * cm + k)] = t21 - t23
            vf[np.uint64(12 * cm + k)] = t30 - t32
            vf[np.uint64(13 * cm + k)] = t31 + t32
            vf[np.uint64(14 * cm + k)] = t32 - t31
            vf[np.uint64(15 * cm + k)] = t31 - t33
            tw += 1
            if tw == TW:
                tw = 0
                th += 1
                if th * TW == per_img:
                    th = 0
                    n += 1


@cpu_kernel(parallel=False)
def _wino_output(mf, ms, b, s, e, per_img, TW, y):
    """y[n, o, 2*th + i, 2*tw + j] = (A^T M A)[i, j] + b[o] for the tiles t in [s, e) (clipped at
    the output's edge); mf[xi*ms + o*m + t - s] holds the 4x4 transformed products of tile t."""
    O, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    yf = y.reshape(-1)
    m = e - s
    om = ms
    n0 = s // per_img
    th0 = (s - n0 * per_img) // TW
    tw0 = s - n0 * per_img - th0 * TW
    has_bias = b.size > 0
    for o in range(O):
        bo = b[o] if has_bias else 0.0
        n, th, tw = n0, th0, tw0
        for j in range(m):
            k = o * m + j
            m00, m01 = mf[np.uint64(k)], mf[np.uint64(om + k)]
            m02, m03 = mf[np.uint64(2 * om + k)], mf[np.uint64(3 * om + k)]
            m10, m11 = mf[np.uint64(4 * om + k)], mf[np.uint64(5 * om + k)]
            m12, m13 = mf[np.uint64(6 * om + k)], mf[np.uint64(7 * om + k)]
            m20, m21 = mf[np.uint64(8 * om + k)], mf[np.uint64(9 * om + k)]
            m22, m23 = mf[np.uint64(10 * om + k)], mf[np.uint64(11 * om + k)]
            m30, m31 = mf[np.uint64(12 * om + k)], mf[np.uint64(13 * om + k)]
            m32, m33 = mf[np.uint64(14 * om + k)], mf[np.uint64(15 * om + k)]
            # R = A^T M (two rows), then Y = R A
            r00, r01, r02, r03 = m00 + m10 + m20, m01 + m11 + m21, m02 + m12 + m22, m03 + m13 + m23
            r10, r11, r12, r13 = m10 - m20 - m30, m11 - m21 - m31, m12 - m22 - m32, m13 - m23 - m33
            h = 2 * th
            w = 2 * tw
            base = ((n * O + o) * OH + h) * OW + w
            yf[np.uint64(base)] = r00 + r01 + r02 + bo
            if w + 1 < OW:
                yf[np.uint64(base + 1)] = r01 - r02 - r03 + bo
            if h + 1 < OH:
                yf[np.uint64(base + OW)] = r10 + r11 + r12 + bo
                if w + 1 < OW:
                    yf[np.uint64(base + OW + 1)] = r11 - r12 - r13 + bo
            tw += 1
            if tw == TW:
                tw = 0
                th += 1
                if th * TW == per_img:
                    th = 0
                    n += 1


@cpu_kernel
def winograd_conv3x3(x, u, b, y, vbuf, mbuf, ph, pw, mt):
    """y (N, O, OH, OW) = the stride-1 3x3 cross-correlation of x (N, C, H, W), padded by (ph, pw)
    at the top/left (any integer; zeros wherever the patch leaves x), with u (G, 16, Og, Cg) =
    G w G^T, plus b (O,) (empty: no bias). Each chunk owns a contiguous range of output tiles."""
    N, C = x.shape[0], x.shape[1]
    O, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    G, Og, Cg = u.shape[0], u.shape[2], u.shape[3]
    TW = (OW + 1) // 2
    per_img = ((OH + 1) // 2) * TW
    total = N * per_img
    nchunks = vbuf.shape[0]
    for chunk in prange(nchunks):
        t0 = chunk * total // nchunks
        t1 = (chunk + 1) * total // nchunks
        for s in range(t0, t1, mt):
            e = min(t1, s + mt)
            m = e - s
            vs = C * m + WINO_PAD
            ms = O * m + WINO_PAD
            vf = vbuf[chunk]
            mf = mbuf[chunk]
            _wino_input(x, s, e, per_img, TW, ph, pw, vf, vs)
            for g in range(G):
                for xi in range(16):
                    v0 = xi * vs + g * Cg * m
                    m0 = xi * ms + g * Og * m
                    np.dot(u[g, xi], vf[v0:v0 + Cg * m].reshape((Cg, m)),
                           mf[m0:m0 + Og * m].reshape((Og, m)))
            _wino_output(mf, ms, b, s, e, per_img, TW, y)


@cpu_kernel(parallel=False)
def _wino_gy(gy, s, e, per_img, TW, mf, ms):
    """mf[xi*ms + o*m + t - s] = (A gY A^T)[xi] for the tiles t in [s, e): gY the 2x2
    output-gradient tile of gy[n, o] at (2*th, 2*tw), zero past the output's edge (the adjoint of
    _wino_output)."""
    O, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    gf = gy.reshape(-1)
    m = e - s
    n0 = s // per_img
    th0 = (s - n0 * per_img) // TW
    tw0 = s - n0 * per_img - th0 * TW
    for o in range(O):
        n, th, tw = n0, th0, tw0
        for j in range(m):
            h = 2 * th
            w = 2 * tw
            base = ((n * O + o) * OH + h) * OW + w
            y00 = gf[np.uint64(base)]
            y01 = gf[np.uint64(base + 1)] if w + 1 < OW else 0.0
            y10 = gf[np.uint64(base + OW)] if h + 1 < OH else 0.0
            y11 = gf[np.uint64(base + OW + 1)] if w + 1 < OW and h + 1 < OH else 0.0
            # rows of A gY: (y0, y0 + y1, y0 - y1, -y1); row (p, q) times A^T: (p, p+q, p-q, -q)
            k = o * m + j
            for i in range(4):
                if i == 0:
                    p, q = y00, y01
                elif i == 1:
                    p, q = y00 + y10, y01 + y11
                elif i == 2:
                    p, q = y00 - y10, y01 - y11
                else:
                    p, q = -y10, -y11
                row = 4 * i * ms + k
                mf[np.uint64(row)] = p
                mf[np.uint64(row + ms)] = p + q
                mf[np.uint64(row + 2 * ms)] = p - q
                mf[np.uint64(row + 3 * ms)] = -q
            tw += 1
            if tw == TW:
                tw = 0
                th += 1
                if th * TW == per_img:
                    th = 0
                    n += 1


@cpu_kernel
def winograd_grad_weight3x3(x, gy, gu, gus, gwt, vbuf, mbuf, ph, pw, mt):
    """gu (G, 16, Og, Cg) = sum over tiles of (A gY A^T) * (B^T d B), the gradient of U = G w G^T;
    the weight gradient is then G^T gu G (``_wino_weights_grad``). Partial sums per chunk in gus
    (nchunks, G, 16, Og, Cg), added in chunk order at the end (bit-reproducible)."""
    N, C = x.shape[0], x.shape[1]
    O, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    G, Og, Cg = gu.shape[0], gu.shape[2], gu.shape[3]
    TW = (OW + 1) // 2
    per_img = ((OH + 1) // 2) * TW
    total = N * per_img
    nchunks = vbuf.shape[0]
    for chunk in prange(nchunks):
        gus[chunk] = 0.0
        tw_ = gwt[chunk].reshape(-1)[:Og * Cg].reshape((Og, Cg))
        t0 = chunk * total // nchunks
        t1 = (chunk + 1) * total // nchunks
        for s in range(t0, t1, mt):
            e = min(t1, s + mt)
            m = e - s
            vs = C * m + WINO_PAD
            ms = O * m + WINO_PAD
            vf = vbuf[chunk]
            mf = mbuf[chunk]
            _wino_input(x, s, e, per_img, TW, ph, pw, vf, vs)
            _wino_gy(gy, s, e, per_img, TW, mf, ms)
            for g in range(G):
                for xi in range(16):
                    v0 = xi * vs + g * Cg * m
                    m0 = xi * ms + g * Og * m
                    np.dot(mf[m0:m0 + Og * m].reshape((Og, m)),
                           vf[v0:v0 + Cg * m].reshape((Cg, m)).T, tw_)
                    acc = gus[chunk, g, xi]
                    for a in range(Og):
                        for b in range(Cg):
                            acc[a, b] += tw_[a, b]
    guf = gu.reshape(-1)
    gusf = gus.reshape((nchunks, guf.size))
    for i in prange(guf.size):
        t = gusf[0, i]
        for c in range(1, nchunks):
            t += gusf[c, i]
        guf[i] = t


@cpu_kernel(parallel=False)
def _wino_weights_grad(gu, gw):
    """gw[g, a, b] = G^T gu[g, :, a, b] G (adjoint of _wino_weights); gw (groups, A, B, 3, 3)."""
    for g in range(gu.shape[0]):
        for a in range(gu.shape[2]):
            for b in range(gu.shape[3]):
                for j in range(4):       # Z = G^T X, column j
                    x0, x1 = gu[g, j, a, b], gu[g, 4 + j, a, b]
                    x2, x3 = gu[g, 8 + j, a, b], gu[g, 12 + j, a, b]
                    z0, z1, z2 = x0 + 0.5 * (x1 + x2), 0.5 * (x1 - x2), 0.5 * (x1 + x2) + x3
                    if j == 0:
                        z00, z10, z20 = z0, z1, z2
                    elif j == 1:
                        z01, z11, z21 = z0, z1, z2
                    elif j == 2:
                        z02, z12, z22 = z0, z1, z2
                    else:
                        z03, z13, z23 = z0, z1, z2
                gw[g, a, b, 0, 0] = z00 + 0.5 * (z01 + z02)     # gw = Z G
                gw[g, a, b, 0, 1] = 0.5 * (z01 - z02)
                gw[g, a, b, 0, 2] = 0.5 * (z01 + z02) + z03
                gw[g, a, b, 1, 0] = z10 + 0.5 * (z11 + z12)
                gw[g, a, b, 1, 1] = 0.5 * (z11 - z12)
                gw[g, a, b, 1, 2] = 0.5 * (z11 + z12) + z13
                gw[g, a, b, 2, 0] = z20 + 0.5 * (z21 + z22)
                gw[g, a, b, 2, 1] = 0.5 * (z21 - z22)
                gw[g, a, b, 2, 2] = 0.5 * (z21 + z22) + z23


@cpu_kernel(parallel=False)
def _wino_weights(w, u):
    """u[g, 4*i + j, a, b] = (G w[g, a, b] G^T)[i, j] for 3x3 filters w (groups, A, B, 3, 3)."""
    for g in range(w.shape[0]):
        for a in range(w.shape[1]):
            for b in range(w.shape[2]):
                for i in range(4):
                    # row i of T = G f (f the 3x3 filter): T[i, k] = sum_r G[i, r] f[r, k]
                    if i == 0:
                        t0, t1, t2 = w[g, a, b, 0, 0], w[g, a, b, 0, 1], w[g, a, b, 0, 2]
                    elif i == 3:
                        t0, t1, t2 = w[g, a, b, 2, 0], w[g, a, b, 2, 1], w[g, a, b, 2, 2]
                    else:
                        sign = 1.0 if i == 1 else -1.0
                        t0 = 0.5 * (w[g, a, b, 0, 0] + sign * w[g, a, b, 1, 0] + w[g, a, b, 2, 0])
                        t1 = 0.5 * (w[g, a, b, 0, 1] + sign * w[g, a, b, 1, 1] + w[g, a, b, 2, 1])
                        t2 = 0.5 * (w[g, a, b, 0, 2] + sign * w[g, a, b, 1, 2] + w[g, a, b, 2, 2])
                    # U[i, :] = T[i, :] G^T
                    u[g, 4 * i, a, b] = t0
                    u[g, 4 * i + 1, a, b] = 0.5 * (t0 + t1 + t2)
                    u[g, 4 * i + 2, a, b] = 0.5 * (t0 - t1 + t2)
                    u[g, 4 * i + 3, a, b] = t2


def winograd_weights(w, groups, flip):
    """U = G g G^T for every 3x3 filter g of w (O, Cg, 3, 3), laid out (groups, 16, Og, Cg).

    With ``flip`` the filters of the input gradient: rotated by 180 degrees and with the two channel
    axes swapped within each group, laid out (groups, 16, Cg, Og). (Computed in a small jitted loop,
    not with numpy's BLAS, whose spinning threads would slow the numba kernels that follow.)
    """
    o, cg = w.shape[:2]
    w5 = w.reshape(groups, o // groups, cg, 3, 3)
    if flip:
        w5 = w5.transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    w5 = np.ascontiguousarray(w5)
    u = np.empty((groups, 16) + w5.shape[1:3], w.dtype)
    _wino_weights(w5, u)
    return u


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
            _wino_weights_grad(gu, gw.reshape(geo.groups, geo.og, geo.cg, 3, 3))
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
