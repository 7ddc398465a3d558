"""The kernel factories of the tiled implicit-GEMM convolutions (``conv_tiled_cuda`` chooses,
prepares the tables and launches; this module only builds kernels for a direction, dtype and tile).

Kinds.

* ``forward``           y = W @ im2col(x): A[m, k] = w[m * K + k], B the im2col gather of x.
* ``backward_data``     the input gradient at stride 1, which is a forward convolution of gy with
                        the weight flipped and transposed (padding D*(K-1) - P): the forward kernel
                        with A read through the table row 3, ``w[kt[3, k] + m * KH * KW]``.
* ``backward_data_sHxW`` the input gradient at stride (H, W) > 1: B[k, p] gathers gy where the
                        stride grid is hit (the strides are compile-time constants, so the
                        divisions by them are cheap).
* ``backward_weight``   GW = GY @ im2col(x)^T over a chunk of the positions (split reduction).

The first three are one kernel, ``conv_tiled_gemm``, specialised at build time (which A
loader, which B loader); the weight gradient is ``conv_tiled_backward_weight``.

Pipeline. A block computes a BM x BN tile with a TM x TN register block per thread (``mma``) over
BK-deep slices staged in shared memory. Every thread first loads its share of the next slice from
global memory into registers (``sa``, ``sb``), then the block stores the registers to shared
memory, synchronises, issues the loads of the slice after, and multiplies: those loads are in
flight while the multiply runs (a load followed at once by its shared-memory store, as before,
stalled the thread on every one).

Loaders are branch-free: an element outside the image (or past the end) loads element 0 and a
bit mask remembers it, zeroed when the registers are staged; so a thread issues all of a slice's
loads back to back. The geometry tables are padded (to a multiple of the tile) with offsets FAR
outside any image, and a column or row past the end gets a base coordinate further outside
still, so one bounds test per element covers every edge. The weight gradient's loaders give each
thread one reduction position and several columns, so a warp reads BK consecutive positions of
a channel (coalesced) and each thread decodes one position per slice.

Shared memory. The tiles are flat, 16-byte aligned, rows padded so a warp's staging stores hit
distinct banks. A thread's register rows come in groups of four adjacent ones (likewise its
columns), so the multiply reads each group with one 128-bit shared load (``ld.shared.v4``: a
quarter of the shared-memory instructions of scalar loads, which at 16 loads per 64 FMAs were as
many as the shared memory can serve). Shared indices are unsigned (numba's signed indices carry a
wrap-around test per access); ``tests/test_cuda_ptx.py`` compiles every kernel with no local
memory allowed.
"""

import math

import numpy as np
from numba import complex128, from_dtype

from .. import cuda_reduce  # noqa: F401 - importing it makes simulated shared arrays safe
from ..cuda_device import cuda
from .activation_cuda import NO_EPILOGUE, activate

FAR = 1 << 40        # table padding: a tap offset outside any image
u32 = np.uint32
u64 = np.uint64


def check_tile(tile):
    """The tile constraints the loaders rely on (ValueError otherwise)."""
    bm, bn, bk, tm, tn = tile
    rm, rn = bm // tm, bn // tn
    t = rm * rn
    ok = (bm % tm == 0 and bn % tn == 0 and t % bn == 0 and bk % (t // bn) == 0
          and (bm * bk) % t == 0 and bk <= t and t % bk == 0 and bn % (t // bk) == 0)
    if not ok:
        raise ValueError(f"tile {tile} breaks the loader constraints (see check_tile)")
    return rm, rn, t


def table_multiple(tile):
    """Geometry tables are padded to a multiple of this many columns."""
    return math.lcm(tile[1], tile[2])


def _pad(bk):
    """Shared rows padded so that a warp's staging stores (8 rows x 4 columns when BK = 8) hit
    distinct banks."""
    return 32 // bk if 32 % bk == 0 else 1


def _vector(n):
    return 4 if n % 4 == 0 else 2 if n % 2 == 0 else 1


def build(kind, dtype, tile):
    """The CUDA kernel of ``kind`` (see the module docstring) for a dtype and tile."""
    bm, bn, bk, tm, tn = tile
    rm, rn, nthreads = check_tile(tile)
    a_loads = bm * bk // nthreads        # A elements each thread stages per K step
    b_loads = bk * bn // nthreads        # B elements each thread stages per K step
    b_step = nthreads // bn              # rows between one thread's B elements (forward, data)
    w_step = nthreads // bk              # columns between one thread's elements (weight grad)
    acc_size = tm * tn
    vm, vn = _vector(tm), _vector(tn)    # register rows / columns read as one vector load
    gm, gn = rm * vm, rn * vn            # ... and the distance between such groups
    apad = (_pad(bk) - bm) % 32 if 32 % bk == 0 else 1
    a_row = bm + apad                    # As[k * a_row + m]: A transposed, flat
    b_row = bn + _pad(bk)                # Bs[k * b_row + n]
    nb = from_dtype(np.dtype(dtype))
    scalar = np.dtype(dtype).type
    zero = scalar(0)
    # the tiles are allocated as 16-byte words, then viewed: aligned so that a thread's four
    # adjacent registers can load as one 128-bit access (numba aligns to the element size)
    a_words = -(-bk * a_row * np.dtype(dtype).itemsize // 16)
    b_words = -(-bk * b_row * np.dtype(dtype).itemsize // 16)
    a_table = kind.startswith("backward_data")
    strided = kind.startswith("backward_data_s")
    sh, sw = (int(v) for v in kind[len("backward_data_s"):].split("x")) if strided else (1, 1)

    @cuda.jit(device=True, inline=True)
    def mma(As, Bs, acc, ra, rb, ty, tx):
        """acc += As[:, rows]^T Bs[:, cols] over one BK slice. A thread's rows come in groups
        of ``vm`` adjacent ones, so that each group can be one 128-bit shared load; likewise its
        columns. Unsigned 64-bit index arithmetic: no wrap-around code, and each register's
        shared address is the group's plus a constant (folded into the load)."""
        uy = u64(ty * vm)
        ux = u64(tx * vn)
        for kk in range(bk):
            ua = u64(kk * a_row) + uy
            ub = u64(kk * b_row) + ux
            for i in range(tm):
                ra[i] = As[ua + u64((i // vm) * gm + i % vm)]
            for j in range(tn):
                rb[j] = Bs[ub + u64((j // vn) * gn + j % vn)]
            for i in range(tm):
                for j in range(tn):
                    acc[i * tn + j] += ra[i] * rb[j]

    @cuda.jit(device=True, inline=True)
    def stage_a(As, sa, tid, mask):
        """The registered A slice to shared memory (element e is k = e % BK, m = e // BK), zero
        where ``mask`` says the load was outside."""
        for s in range(a_loads):
            e = tid + s * nthreads
            As[u32((e % bk) * a_row + e // bk)] = sa[s] if (mask >> s) & 1 else zero

    @cuda.jit(device=True, inline=True)
    def stage_columns(Bs, sb, brow, bj, mask):
        for s in range(b_loads):
            Bs[u32((brow + s * b_step) * b_row + bj)] = sb[s] if (mask >> s) & 1 else zero

    # Loaders: every load is issued (element 0 when outside), its validity goes to a bit mask,
    # and the zeroing waits for the staging: nothing here uses a loaded value, so none stalls.

    @cuda.jit(device=True, inline=True)
    def load_weights(w, kt, sa, tid, m0, k0, rows, K, khw):
        """sa = this thread's A elements of the slice at k0: w[m * K + k], or through the table
        (``a_table``: w[kt[3, k] + m * KH*KW], the flipped and transposed weight); the mask."""
        mask = 0
        for s in range(a_loads):
            e = tid + s * nthreads
            m = m0 + e // bk
            k = k0 + e % bk
            ok = (m < rows) & (k < K)
            if a_table:
                at = kt[3, u64(k)] + m * khw
            else:
                at = m * K + k
            sa[s] = w[u64(at if ok else 0)]
            mask |= np.int64(ok) << s
        return mask

    @cuda.jit(device=True, inline=True)
    def load_im2col(x, kt, sb, k, step, ih0, iw0, xb, H, W):
        """sb = im2col(x) at the table's columns k, k + step, ... for the pixel whose tap (0, 0)
        is at (ih0, iw0), offset xb (this thread's B column in the forward; its row, over
        several taps, in the weight gradient); the mask."""
        mask = 0
        for s in range(b_loads):
            uk = u64(k + s * step)
            ih = ih0 + kt[1, uk]
            iw = iw0 + kt[2, uk]
            at = xb + kt[0, uk]
            ok = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            sb[s] = x[u64(at if ok else 0)]
            mask |= np.int64(ok) << s
        return mask

    @cuda.jit(device=True, inline=True)
    def load_strided_gy(gy, kt, sb, k, step, ih, iw, gb, OH, OW):
        """sb = this thread's column (one input pixel) of the strided input gradient's B: gy at
        (ih - kt[1, k]) / SH, (iw - kt[2, k]) / SW where that lands on the stride grid (table
        columns k, k + step, ...); the mask."""
        mask = 0
        for s in range(b_loads):
            uk = u64(k + s * step)
            th = ih - kt[1, uk]
            tw = iw - kt[2, uk]
            oh = th // sh
            ow = tw // sw
            at = gb + kt[0, uk] + oh * OW + ow
            ok = ((th >= 0) & (tw >= 0) & (oh * sh == th) & (ow * sw == tw) & (oh < OH)
                  & (ow < OW))
            sb[s] = gy[u64(at if ok else 0)]
            mask |= np.int64(ok) << s
        return mask

    @cuda.jit(device=True, inline=True)
    def store_tile(out, b, acc, pix, m0, p0, ty, tx, rows, NP, plane, has_bias, offset):
        """out[offset + (n, m, pixel)] = acc (+ b[m]) for the tile's valid rows and columns;
        returns with ``pix`` holding the columns' offsets (-1 past the end) for an epilogue."""
        for j in range(tn):
            p = p0 + tx * vn + (j // vn) * gn + j % vn
            n = p // plane
            pix[j] = offset + n * rows * plane + p - n * plane if p < NP else -1
        for i in range(tm):
            m = m0 + ty * vm + (i // vm) * gm + i % vm
            if m < rows:
                bias = b[m] if has_bias else zero
                for j in range(tn):
                    if pix[j] >= 0:
                        out[np.uint64(pix[j] + m * plane)] = acc[i * tn + j] + bias

    load_columns = load_strided_gy if strided else load_im2col

    def conv_tiled_gemm(x, w, b, y, hp, kt, has_bias, op, alpha, act_out, chunk):
        # forward (and the stride-1 input gradient, on the flipped geometry): rows m = output
        # channels, columns p = (n, oh, ow), reduction k = (c, kh, kw). Strided input gradient
        # (x is gy, y is gx): rows m = input channels c, columns p = (n, ih, iw), reduction
        # k = (o, kh, kw), and ``b`` per row is the transposed convolution's bias.
        # Split reduction (chunk < K, a multiple of BK): split s sums k in [s*chunk, (s+1)*chunk)
        # and writes y[s, n, m, pixel] (y is then the partials; no bias, no epilogue).
        N, C, H, W, O = hp[0], hp[1], hp[3], hp[4], hp[5]
        OH, OW, SH, SW, PH, PW = hp[7], hp[8], hp[13], hp[14], hp[16], hp[17]
        khw = hp[10] * hp[11]
        if strided:
            rows, K, plane, lim_h, lim_w = C, O * khw, H * W, OH, OW
        else:
            rows, K, plane, lim_h, lim_w = O, C * khw, OH * OW, H, W
        NP = N * plane
        As = cuda.shared.array(a_words, complex128).view(scalar)
        Bs = cuda.shared.array(b_words, complex128).view(scalar)
        acc = cuda.local.array(acc_size, nb)
        ra = cuda.local.array(tm, nb)
        rb = cuda.local.array(tn, nb)
        sa = cuda.local.array(a_loads, nb)
        sb = cuda.local.array(b_loads, nb)
        pix = cuda.local.array(tn, np.int64)
        tid = cuda.threadIdx.x
        ty = tid // rn
        tx = tid - ty * rn
        bj = tid % bn
        brow = tid // bn
        tiles_p = (NP + bn - 1) // bn
        tiles = tiles_p * ((rows + bm - 1) // bm)
        splits = (K + chunk - 1) // chunk
        for t in range(cuda.blockIdx.x, tiles * splits, cuda.gridDim.x):
            split = t // tiles
            tile = t - split * tiles
            k_first = split * chunk
            k_stop = k_first + chunk
            if k_stop > K:
                k_stop = K
            m0 = (tile // tiles_p) * bm
            p0 = (tile % tiles_p) * bn
            p = p0 + bj                          # this thread's B column: one output pixel
            n = p // plane
            r = p - n * plane
            if strided:                          # (ih, iw) and gy's sample offset
                c0 = r // W
                c1 = r - c0 * W
                base = n * O * OH * OW
                if p >= NP:
                    c0 = 4 * FAR                 # past the last pixel: no output row reaches
            else:                                # the tap (0, 0)'s (ih, iw) and x offset
                oh = r // OW
                c0 = oh * SH - PH
                c1 = (r - oh * OW) * SW - PW
                base = (n * C * H + c0) * W + c1
                if p >= NP:
                    c0 = -4 * FAR                # past the last pixel: every tap is outside
            for i in range(acc_size):
                acc[i] = zero
            # a split's slices never reach into the next split's (chunk is a multiple of BK),
            # and past K the table's padding reads as outside
            amask = load_weights(w, kt, sa, tid, m0, k_first, rows, K, khw)
            bmask = load_columns(x, kt, sb, k_first + brow, b_step, c0, c1, base, lim_h, lim_w)
            for k0 in range(k_first, k_stop, bk):
                stage_a(As, sa, tid, amask)
                stage_columns(Bs, sb, brow, bj, bmask)
                cuda.syncthreads()
                if k0 + bk < k_stop:             # the next slice, in flight during the multiply
                    amask = load_weights(w, kt, sa, tid, m0, k0 + bk, rows, K, khw)
                    bmask = load_columns(x, kt, sb, k0 + bk + brow, b_step, c0, c1, base,
                                         lim_h, lim_w)
                mma(As, Bs, acc, ra, rb, ty, tx)
                cuda.syncthreads()
            store_tile(y, b, acc, pix, m0, p0, ty, tx, rows, NP, plane, has_bias,
                       split * rows * NP)
            if op != NO_EPILOGUE:
                # a fused activation reads back what this thread just stored (cache-hot): in
                # the store loop its code would stop the unrolling and push acc to local memory
                for i in range(tm):
                    o = m0 + ty * vm + (i // vm) * gm + i % vm
                    if o < rows:
                        for j in range(tn):
                            if pix[j] >= 0:
                                at = np.uint64(pix[j] + o * plane)
                                act_out[at] = activate(y[at], op, alpha)

    @cuda.jit(device=True, inline=True)
    def load_weight_grad(x, gy, taps, sa, sb, q, q_end, m0, col, geo):
        """sa, sb = this thread's A (gy) and B (im2col(x)^T) elements at position q: every
        element of a thread is at the same position, so it is decoded once per slice, and a
        warp reads BK consecutive positions of each channel (coalesced)."""
        C, H, W, O, OW, SH, SW, PH, PW, OHW = geo
        valid = q < q_end
        n = q // OHW
        r = q - n * OHW
        oh = r // OW
        ih0 = oh * SH - PH
        iw0 = (r - oh * OW) * SW - PW
        xq = (n * C * H + ih0) * W + iw0
        g = n * O * OHW + r
        if not valid:
            ih0 = -4 * FAR
        amask = 0
        for s in range(a_loads):
            m = m0 + col + s * w_step
            ok = valid & (m < O)
            at = g + m * OHW
            sa[s] = gy[u64(at if ok else 0)]
            amask |= np.int64(ok) << s
        return amask, load_im2col(x, taps, sb, col, w_step, ih0, iw0, xq, H, W)

    def conv_tiled_backward_weight(x, gy, part, hp, kt, splits):
        # rows m = output channels, columns = taps (c, kh, kw) (the forward's table), reduction
        # q = (n, oh, ow). Split s reduces q in [s*chunk, (s+1)*chunk) and writes part[s, o, k].
        N, C, H, W, O = hp[0], hp[1], hp[3], hp[4], hp[5]
        OH, OW, SH, SW, PH, PW = hp[7], hp[8], hp[13], hp[14], hp[16], hp[17]
        CK = C * hp[10] * hp[11]
        R = N * OH * OW
        geo = (C, H, W, O, OW, SH, SW, PH, PW, OH * OW)   # read once, not in every slice
        chunk = ((R + splits - 1) // splits + bk - 1) // bk * bk
        As = cuda.shared.array(a_words, complex128).view(scalar)
        Bs = cuda.shared.array(b_words, complex128).view(scalar)
        taps = cuda.shared.array((3, bn), np.int64)    # the tile's columns of the table
        acc = cuda.local.array(acc_size, nb)
        ra = cuda.local.array(tm, nb)
        rb = cuda.local.array(tn, nb)
        sa = cuda.local.array(a_loads, nb)
        sb = cuda.local.array(b_loads, nb)
        tid = cuda.threadIdx.x
        ty = tid // rn
        tx = tid - ty * rn
        kq = tid % bk                        # this thread's position in every slice
        col = tid // bk                      # ... and its first column (then every w_step)
        tiles_k = (CK + bn - 1) // bn
        tiles = tiles_k * ((O + bm - 1) // bm)
        for t in range(cuda.blockIdx.x, tiles * splits, cuda.gridDim.x):
            split = t // tiles
            tile = t - split * tiles
            m0 = (tile // tiles_k) * bm
            c0 = (tile % tiles_k) * bn
            cuda.syncthreads()               # the previous tile's reads of ``taps`` are done
            if tid < bn:
                for row in range(3):
                    taps[row, u32(tid)] = kt[row, u64(c0 + tid)]
            cuda.syncthreads()
            q_end = (split + 1) * chunk
            if q_end > R:
                q_end = R
            for i in range(acc_size):
                acc[i] = zero
            q0 = split * chunk
            amask, bmask = load_weight_grad(x, gy, taps, sa, sb, q0 + kq, q_end, m0, col, geo)
            for q0 in range(split * chunk, q_end, bk):
                stage_a(As, sa, tid, amask)
                for s in range(b_loads):
                    at = u32(kq * b_row + col + s * w_step)
                    Bs[at] = sb[s] if (bmask >> s) & 1 else zero
                cuda.syncthreads()
                if q0 + bk < q_end:
                    amask, bmask = load_weight_grad(x, gy, taps, sa, sb, q0 + bk + kq, q_end,
                                                    m0, col, geo)
                mma(As, Bs, acc, ra, rb, ty, tx)
                cuda.syncthreads()
            base = split * O * CK
            for j in range(tn):
                c = c0 + tx * vn + (j // vn) * gn + j % vn
                if c < CK:
                    for i in range(tm):
                        o = m0 + ty * vm + (i // vm) * gm + i % vm
                        if o < O:
                            part[np.uint64(base + o * CK + c)] = acc[i * tn + j]

    if kind == "backward_weight":
        return cuda.jit(conv_tiled_backward_weight)
    if kind in ("forward", "backward_data") or strided:
        return cuda.jit(conv_tiled_gemm)
    raise ValueError(f"no tiled convolution kernel {kind!r}")


def build_channel_sum(dtype, threads):
    nb = from_dtype(np.dtype(dtype))
    zero = np.dtype(dtype).type(0)

    def channel_sum(g, out, shape):
        """out[c] = sum over n, i of g[n, c, i] (g flat (N, C, P)): one block per channel, a
        strided per-thread sum then a fixed-order tree in shared memory (no atomics)."""
        N, C, P = shape[0], shape[1], shape[2]
        s = cuda.shared.array(threads, nb)
        t = cuda.threadIdx.x
        for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
            acc = zero
            for n in range(N):
                base = (n * C + c) * P
                for i in range(t, P, threads):
                    acc += g[np.uint64(base + i)]
            s[u32(t)] = acc
            cuda.syncthreads()
            step = threads // 2
            while step > 0:
                if t < step:
                    s[u32(t)] += s[u32(t + step)]
                cuda.syncthreads()
                step //= 2
            if t == 0:
                out[c] = s[0]
            cuda.syncthreads()

    return cuda.jit(channel_sum)


@cuda.jit
def split_sum(part, out, splits):
    """out[i] = part[0, i] + part[1, i] + ... in split order (part flat (splits, out.size))."""
    size = out.size
    for i in range(cuda.grid(1), size, cuda.gridsize(1)):
        acc = part[i]
        for s in range(1, splits):
            acc += part[s * size + i]
        out[i] = acc


@cuda.jit
def split_sum_rows(part, out, splits, b, has_bias, rows, plane, op, alpha, act_out):
    """out = part[0] + part[1] + ... in split order (part flat (splits, out.size), out (N, rows,
    plane)) plus b[row] when ``has_bias``; with an epilogue ``op`` also act_out = act(out):
    what ``conv_tiled_gemm`` leaves to this kernel when it splits its reduction."""
    size = out.size
    for i in range(cuda.grid(1), size, cuda.gridsize(1)):
        acc = part[i]
        for s in range(1, splits):
            acc += part[s * size + i]
        if has_bias:
            acc += b[(i // plane) % rows]
        out[i] = acc
        if op != NO_EPILOGUE:
            act_out[i] = activate(acc, op, alpha)
