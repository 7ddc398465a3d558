"""Tiled implicit-GEMM CUDA kernels of convolution (groups == 1, 1-D and 2-D), and a block-reduced
per-channel sum (bias gradients). Used by ``conv_cuda`` and ``conv_transpose_cuda`` where they pay.

Geometry. ``values`` is the 22-number table of ``conv_cuda._HP`` (N, C, D, H, W, O, OD, OH, OW,
KD, KH, KW, strides, paddings, dilations, G) of a convolution x (N, C, H, W) * w (O, C, KH, KW)
-> y (N, O, OH, OW); depth axes are 1 here. The three directions are GEMMs with the im2col matrix
never formed: a reduction index k = (c, kh, kw) (or (o, kh, kw) for the input gradient) is turned
into offsets by a small int64 table ``kt`` built once per geometry, so no division runs in the
inner loops:

* forward       Y (O x N*OH*OW)    = W (O x C*KH*KW)        @ im2col(x)
* input grad    GX (C x N*H*W)     = W^T (C x O*KH*KW)      @ gather(gy) (zeros where the
                                                               stride skips a position)
* weight grad   GW (O x C*KH*KW)   = GY (O x N*OH*OW)       @ im2col(x)^T, the long reduction
                split into ``splits`` contiguous chunks (partials ``(splits, O*C*KH*KW)``, then
                summed in split order by ``split_sum``).

Tiles. A block computes a BM x BN tile of the output with T = (BM/TM) * (BN/TN) threads, each
holding a TM x TN register block (``cuda.local.array``, fully unrolled: the sizes are compile-time
constants of the kernel factory). Every K step stages a BK-deep slice of both operands in shared
memory (A transposed, ``As[k, m]``, rows padded so the A stores hit distinct banks; ``Bs[k, n]``)
and each thread owns one B column (one output pixel: its decode happens once per tile). Register
rows/columns are strided by the thread grid (``ty + i * BM/TM``) so stores and shared reads are
coalesced. Shared-memory indices are unsigned: numba otherwise emits a negative-index wrap-around
per access, which the design notes measured as the difference between slow and 24-27 TFLOP/s on
the H100. The inner product indexes with uint64 sums of a per-thread base and a constant, so each
register's shared load is one address plus an immediate offset (checked in the PTX); no kernel
may use local memory (``tests/test_cuda_ptx.py`` compiles them with ``--forbid-local``). Blocks
walk the tiles grid-stride (``MAX_BLOCKS`` of ``cuda_device``).

Determinism. Each output element is one thread's register sum over k in increasing order (split
chunks in order, then summed in split order): bit-identical from run to run, independent of the
launch shape; ``splits`` depends only on the shape and the module constants.

Epilogue. The forward kernel adds the bias as it stores, and can apply a fused activation
(``minicnn/fusion.py``): it then writes both the convolution's output and the activation's.

Tests shrink ``TILE`` (and the thresholds) so the simulator runs several blocks and partial tiles
at every edge on tiny shapes; kernels are built per (direction, dtype, tile) and cached.
"""

import numpy as np
from numba import from_dtype

from .. import cuda_device as cd
from .. import cuda_reduce  # noqa: F401 - importing it makes simulated shared arrays safe
from ..cuda_device import cuda
from .activation_cuda import NO_EPILOGUE, activate, epilogue_args

TILE = (64, 128, 8, 8, 8)   # BM (rows: channels), BN (columns: pixels), BK (reduction), TM, TN
MIN_CHANNELS = 8            # GEMM rows below this: the direct kernel
MIN_PIXELS = 1024           # GEMM columns (forward, input grad) / reduction (weight grad) below
TARGET_BLOCKS = 528         # weight grad splits its reduction to reach about this many blocks
MIN_SPLIT = 2048            # ... but every split reduces at least this many positions
MAX_SPLITS = 64
SUM_THREADS = 128           # block size of channel_sum (a power of two)

u32 = np.uint32
u64 = np.uint64


def check_tile(tile):
    """The tile constraints the loaders rely on (ValueError otherwise)."""
    bm, bn, bk, tm, tn = tile
    rm, rn = bm // tm, bn // tn
    t = rm * rn
    ok = (bm % tm == 0 and bn % tn == 0 and t % bn == 0 and bk % (t // bn) == 0
          and (bm * bk) % t == 0 and bk <= t)
    if not ok:
        raise ValueError(f"tile {tile} breaks the loader constraints (see check_tile)")
    return rm, rn, t


# -- kernel factories -----------------------------------------------------------------------------

def _build(kind, dtype, tile):
    bm, bn, bk, tm, tn = tile
    rm, rn, nthreads = check_tile(tile)
    a_loads = bm * bk // nthreads        # A elements each thread stages per K step
    b_loads = bk * bn // nthreads        # B elements each thread stages per K step
    b_step = nthreads // bn              # rows between one thread's B elements
    acc_size = tm * tn
    apad = (32 // bk - bm) % 32 if 32 % bk == 0 else 1
    a_shape = (bk, bm + apad)            # As rows padded: the staging stores hit distinct banks
    b_shape = (bk, bn)
    nb = from_dtype(np.dtype(dtype))
    zero = np.dtype(dtype).type(0)

    @cuda.jit(device=True, inline=True)
    def mma(As, Bs, acc, ra, rb, ty, tx):
        """acc += As[:, rows]^T Bs[:, cols] over one BK slice (rows ty + i*rm, cols tx + j*rn).
        Unsigned 64-bit index arithmetic: no wrap-around code, and each register's shared
        address is the row's plus a constant (folded into the load)."""
        uy = u64(ty)
        ux = u64(tx)
        for kk in range(bk):
            uk = u64(kk)
            for i in range(tm):
                ra[i] = As[uk, uy + u64(i * rm)]
            for j in range(tn):
                rb[j] = Bs[uk, ux + u64(j * rn)]
            for i in range(tm):
                for j in range(tn):
                    acc[i * tn + j] += ra[i] * rb[j]

    def conv_tiled_forward(x, w, b, y, hp, kt, has_bias, op, alpha, act_out):
        # A = w (O x K) row-major; B[k, p] = x[n, c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
        N, C, H, W, O = hp[0], hp[1], hp[3], hp[4], hp[5]
        OH, OW, SH, SW, PH, PW = hp[7], hp[8], hp[13], hp[14], hp[16], hp[17]
        K = kt.shape[1]
        OHW = OH * OW
        NP = N * OHW
        As = cuda.shared.array(a_shape, nb)
        Bs = cuda.shared.array(b_shape, nb)
        acc = cuda.local.array(acc_size, nb)
        ra = cuda.local.array(tm, nb)
        rb = cuda.local.array(tn, nb)
        pix = cuda.local.array(tn, np.int64)
        tid = cuda.threadIdx.x
        ty = tid // rn
        tx = tid - ty * rn
        bj = tid % bn
        brow = tid // bn
        tiles_p = (NP + bn - 1) // bn
        tiles = tiles_p * ((O + bm - 1) // bm)
        for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
            m0 = (tile // tiles_p) * bm
            p0 = (tile % tiles_p) * bn
            p = p0 + bj                          # this thread's B column: one output pixel
            pvalid = p < NP
            n = p // OHW
            r = p - n * OHW
            oh = r // OW
            ih0 = oh * SH - PH
            iw0 = (r - oh * OW) * SW - PW
            xb = (n * C * H + ih0) * W + iw0
            for i in range(acc_size):
                acc[i] = zero
            for k0 in range(0, K, bk):
                for s in range(a_loads):
                    e = tid + s * nthreads
                    kk = e % bk
                    m = e // bk
                    v = zero
                    if m0 + m < O and k0 + kk < K:
                        v = w[u32((m0 + m) * K + k0 + kk)]
                    As[u32(kk), u32(m)] = v
                for s in range(b_loads):
                    kk = brow + s * b_step
                    k = k0 + kk
                    v = zero
                    if pvalid and k < K:
                        ih = ih0 + kt[1, k]
                        iw = iw0 + kt[2, k]
                        if ih >= 0 and ih < H and iw >= 0 and iw < W:
                            v = x[np.uint64(xb + kt[0, k])]
                    Bs[u32(kk), u32(bj)] = v
                cuda.syncthreads()
                mma(As, Bs, acc, ra, rb, ty, tx)
                cuda.syncthreads()
            # epilogue: column offsets first, so the store loop (which indexes the register
            # block) stays small enough to be fully unrolled and acc stays in registers
            for j in range(tn):
                p = p0 + tx + j * rn
                n = p // OHW
                pix[j] = n * O * OHW + p - n * OHW if p < NP else -1
            for i in range(tm):
                o = m0 + ty + i * rm
                if o < O:
                    bias = b[o] if has_bias else zero
                    for j in range(tn):
                        if pix[j] >= 0:
                            v = acc[i * tn + j] + bias
                            y[np.uint64(pix[j] + o * OHW)] = v
            if op != NO_EPILOGUE:
                # a fused activation reads back what this thread just stored (cache-hot): in
                # the loop above its code would stop the unrolling and push acc to local memory
                for i in range(tm):
                    o = m0 + ty + i * rm
                    if o < O:
                        for j in range(tn):
                            if pix[j] >= 0:
                                at = np.uint64(pix[j] + o * OHW)
                                act_out[at] = activate(y[at], op, alpha)

    def conv_tiled_backward_data(gy, w, b, gx, hp, kt, has_bias):
        # A[c, k] = w[o, c, kh, kw] with k = (o, kh, kw); B[k, p] = gy[n, o, th/SH, tw/SW] where
        # th = ih + PH - kh*DH lands on the stride grid (else 0). ``b`` is added per row (the
        # transposed convolution's bias: its forward is this kernel).
        N, C, H, W, O = hp[0], hp[1], hp[3], hp[4], hp[5]
        OH, OW, SH, SW = hp[7], hp[8], hp[13], hp[14]
        KHW = hp[10] * hp[11]
        K = kt.shape[1]
        HW = H * W
        NP = N * HW
        As = cuda.shared.array(a_shape, nb)
        Bs = cuda.shared.array(b_shape, nb)
        acc = cuda.local.array(acc_size, nb)
        ra = cuda.local.array(tm, nb)
        rb = cuda.local.array(tn, nb)
        pix = cuda.local.array(tn, np.int64)
        tid = cuda.threadIdx.x
        ty = tid // rn
        tx = tid - ty * rn
        bj = tid % bn
        brow = tid // bn
        tiles_p = (NP + bn - 1) // bn
        tiles = tiles_p * ((C + bm - 1) // bm)
        for tile in range(cuda.blockIdx.x, tiles, cuda.gridDim.x):
            m0 = (tile // tiles_p) * bm
            p0 = (tile % tiles_p) * bn
            p = p0 + bj
            pvalid = p < NP
            n = p // HW
            r = p - n * HW
            ih = r // W
            iw = r - ih * W
            gb = n * O * OH * OW
            for i in range(acc_size):
                acc[i] = zero
            for k0 in range(0, K, bk):
                for s in range(a_loads):
                    e = tid + s * nthreads
                    kk = e % bk
                    m = e // bk
                    v = zero
                    if m0 + m < C and k0 + kk < K:
                        v = w[np.uint64(kt[0, k0 + kk] + (m0 + m) * KHW)]
                    As[u32(kk), u32(m)] = v
                for s in range(b_loads):
                    kk = brow + s * b_step
                    k = k0 + kk
                    v = zero
                    if pvalid and k < K:
                        th = ih - kt[2, k]
                        tw = iw - kt[3, k]
                        if th >= 0 and tw >= 0:
                            oh = th // SH
                            ow = tw // SW
                            if oh * SH == th and ow * SW == tw and oh < OH and ow < OW:
                                v = gy[np.uint64(gb + kt[1, k] + oh * OW + ow)]
                    Bs[u32(kk), u32(bj)] = v
                cuda.syncthreads()
                mma(As, Bs, acc, ra, rb, ty, tx)
                cuda.syncthreads()
            for j in range(tn):
                p = p0 + tx + j * rn
                n = p // HW
                pix[j] = n * C * HW + p - n * HW if p < NP else -1
            for i in range(tm):
                c = m0 + ty + i * rm
                if c < C:
                    bias = b[c] if has_bias else zero
                    for j in range(tn):
                        if pix[j] >= 0:
                            gx[np.uint64(pix[j] + c * HW)] = acc[i * tn + j] + bias

    def conv_tiled_backward_weight(x, gy, part, hp, kt, splits):
        # A[o, q] = gy[n, o, oh, ow] with q = (n, oh, ow); B[q, k] = x[n, c, oh*SH - PH + kh*DH, ..]
        # with k = (c, kh, kw): the forward's table. Split s reduces q in [s*chunk, (s+1)*chunk)
        # and writes part[s, o, k]. The K-step's q decode is shared (qg < 0: past the end).
        N, C, H, W, O = hp[0], hp[1], hp[3], hp[4], hp[5]
        OH, OW, SH, SW, PH, PW = hp[7], hp[8], hp[13], hp[14], hp[16], hp[17]
        CK = kt.shape[1]
        OHW = OH * OW
        R = N * OHW
        chunk = ((R + splits - 1) // splits + bk - 1) // bk * bk
        As = cuda.shared.array(a_shape, nb)
        Bs = cuda.shared.array(b_shape, nb)
        qg = cuda.shared.array(bk, np.int64)     # gy offset of (n, oh, ow) without the channel
        qx = cuda.shared.array(bk, np.int64)     # x offset of the tap (0, 0) of (n, oh, ow)
        qh = cuda.shared.array(bk, np.int64)     # oh*SH - PH
        qw = cuda.shared.array(bk, np.int64)     # ow*SW - PW
        acc = cuda.local.array(acc_size, nb)
        ra = cuda.local.array(tm, nb)
        rb = cuda.local.array(tn, nb)
        tid = cuda.threadIdx.x
        ty = tid // rn
        tx = tid - ty * rn
        bj = tid % bn
        brow = tid // bn
        tiles_k = (CK + bn - 1) // bn
        tiles = tiles_k * ((O + bm - 1) // bm)
        for t in range(cuda.blockIdx.x, tiles * splits, cuda.gridDim.x):
            split = t // tiles
            tile = t - split * tiles
            m0 = (tile // tiles_k) * bm
            c0 = (tile % tiles_k) * bn
            col = c0 + bj                         # this thread's B column: one weight tap
            cvalid = col < CK
            xoff, kdh, kdw = 0, 0, 0
            if cvalid:
                xoff, kdh, kdw = kt[0, col], kt[1, col], kt[2, col]
            q_end = (split + 1) * chunk
            if q_end > R:
                q_end = R
            for i in range(acc_size):
                acc[i] = zero
            for q0 in range(split * chunk, q_end, bk):
                if tid < bk:
                    q = q0 + tid
                    if q < q_end:
                        n = q // OHW
                        r = q - n * OHW
                        oh = r // OW
                        ih0 = oh * SH - PH
                        iw0 = (r - oh * OW) * SW - PW
                        qg[tid] = n * O * OHW + r
                        qh[tid] = ih0
                        qw[tid] = iw0
                        qx[tid] = (n * C * H + ih0) * W + iw0
                    else:
                        qg[tid] = -1
                cuda.syncthreads()
                for s in range(a_loads):
                    e = tid + s * nthreads
                    kk = e % bk
                    m = e // bk
                    v = zero
                    g = qg[u32(kk)]
                    if m0 + m < O and g >= 0:
                        v = gy[np.uint64(g + (m0 + m) * OHW)]
                    As[u32(kk), u32(m)] = v
                for s in range(b_loads):
                    kk = brow + s * b_step
                    v = zero
                    if cvalid and qg[u32(kk)] >= 0:
                        ih = qh[u32(kk)] + kdh
                        iw = qw[u32(kk)] + kdw
                        if ih >= 0 and ih < H and iw >= 0 and iw < W:
                            v = x[np.uint64(qx[u32(kk)] + xoff)]
                    Bs[u32(kk), u32(bj)] = v
                cuda.syncthreads()
                mma(As, Bs, acc, ra, rb, ty, tx)
                cuda.syncthreads()
            base = split * O * CK
            for j in range(tn):
                col = c0 + tx + j * rn
                if col < CK:
                    for i in range(tm):
                        o = m0 + ty + i * rm
                        if o < O:
                            part[np.uint64(base + o * CK + col)] = acc[i * tn + j]

    fns = {"forward": conv_tiled_forward, "backward_data": conv_tiled_backward_data,
           "backward_weight": conv_tiled_backward_weight}
    return cuda.jit(fns[kind])


def _build_channel_sum(dtype, threads):
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


_kernels = {}


def get_kernel(kind, dtype, tile=None):
    """The compiled kernel of a direction ("forward", "backward_data", "backward_weight") or
    "channel_sum" (tile = block size) for a dtype and tile (``TILE`` / ``SUM_THREADS`` when
    None), built once."""
    if tile is None:
        tile = SUM_THREADS if kind == "channel_sum" else TILE
    key = (kind, np.dtype(dtype).str, tile)
    kernel = _kernels.get(key)
    if kernel is None:
        if kind == "channel_sum":
            kernel = _build_channel_sum(dtype, tile)
        else:
            kernel = _build(kind, dtype, tuple(tile))
        _kernels[key] = kernel
    return kernel


def kernel_name(kind, dtype, tile):
    tile = tile if isinstance(tile, int) else ",".join(str(v) for v in tile)
    return f"{kind}[{np.dtype(dtype).name};{tile}]"


def kernel_by_name(name):
    """The kernel a ``kernel_name`` names (``scripts/cuda_ptx.py`` resolves recorded names)."""
    kind, rest = name.rstrip("]").split("[")
    dtype, tile = rest.split(";")
    tile = tuple(int(v) for v in tile.split(","))
    return get_kernel(kind, dtype, tile[0] if kind == "channel_sum" else tile)


def _launch(kind, dtype, tile, threads, blocks, *args):
    """Through minicnn's one launch path (its cache, the simulator's grid handling, bare
    launches on a GPU), recorded under the name ``kernel_by_name`` resolves for PTX checks."""
    kernel = get_kernel(kind, dtype, tile)
    if cd.RECORD is not None:
        cd.RECORD.add((__name__, kernel_name(kind, dtype, tile), cd._signature(kernel, args)[2]))
    if blocks > 0:
        cd._run(kernel, (kernel, blocks, threads), args, record=False)


# -- geometry tables and the choice of kernel -----------------------------------------------------

_tables = {}


def _table(kind, values):
    """kt of a geometry, a cached device int64 array: forward / weight grad (3, C*KH*KW) rows
    (x offset, kh*DH, kw*DW); input grad (4, O*KH*KW) rows (w offset without c, gy offset,
    kh*DH - PH, kw*DW - PW)."""
    key = (kind, values)
    table = _tables.get(key)
    if table is None:
        _, C, _, H, W, O, _, OH, OW, _, KH, KW, _, _, _, _, PH, PW, _, DH, DW, _ = values
        kh = np.arange(KH).repeat(KW)
        kw = np.tile(np.arange(KW), KH)
        if kind == "data":
            o = np.arange(O).repeat(KH * KW)
            khw = np.tile(kh * KW + kw, O)
            rows = [o * C * KH * KW + khw, o * OH * OW, np.tile(kh * DH - PH, O),
                    np.tile(kw * DW - PW, O)]
        else:
            c = np.arange(C).repeat(KH * KW)
            dh, dw = np.tile(kh * DH, C), np.tile(kw * DW, C)
            rows = [c * H * W + dh * W + dw, dh, dw]
        if len(_tables) > 256:
            _tables.clear()
        table = _tables[key] = cuda.to_device(np.ascontiguousarray(rows, dtype=np.int64))
    return table


def _plain_2d(values):
    """groups == 1 and no depth axis (Conv1d, Conv2d, ConvTranspose2d's equivalent)."""
    return values[21] == 1 and values[2] == 1 and values[6] == 1 and values[9] == 1


def use_forward(values):
    n, o, oh, ow = values[0], values[5], values[7], values[8]
    return _plain_2d(values) and o >= MIN_CHANNELS and n * oh * ow >= MIN_PIXELS


def use_backward_data(values):
    n, c, h, w = values[0], values[1], values[3], values[4]
    return _plain_2d(values) and c >= MIN_CHANNELS and n * h * w >= MIN_PIXELS


def weight_splits(values):
    """How many chunks the tiled weight gradient splits its reduction into; 0: not tiled."""
    n, c, o, oh, ow, kh, kw = (values[0], values[1], values[5], values[7], values[8],
                               values[10], values[11])
    reduction = n * oh * ow
    if not (_plain_2d(values) and o >= MIN_CHANNELS and reduction >= MIN_PIXELS):
        return 0
    return split_count(o, c * kh * kw, reduction)


def split_count(rows, cols, reduction):
    """Chunks for a (rows x cols) weight gradient reduced over ``reduction`` positions: enough to
    reach about TARGET_BLOCKS blocks, each chunk at least MIN_SPLIT long, at most MAX_SPLITS."""
    tiles = -(-rows // TILE[0]) * -(-cols // TILE[1])
    want = -(-TARGET_BLOCKS // tiles)
    return int(max(1, min(want, MAX_SPLITS, reduction // MIN_SPLIT)))


def gemm_values(n, k, m):
    """The geometry numbers of Linear as a 1x1 convolution: x (n, k) -> y (n, m) = x w^T."""
    return (n, k, 1, 1, 1, m, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1)


def _blocks(tiles):
    return max(1, min(cd.MAX_BLOCKS, tiles))


def _threads(tile):
    return (tile[0] // tile[3]) * (tile[1] // tile[4])


def forward(x, w, b, y, values, has_bias, act=None, r=None):
    """y = conv(x, w) (+ b): flat device arrays, geometry values. With ``act`` (an activation
    kernel's ``epilogue``: op code and parameter) also r = act(y), in the same pass."""
    tile = TILE
    tiles = -(-values[5] // tile[0]) * -(-(values[0] * values[7] * values[8]) // tile[1])
    op, alpha = epilogue_args(act)
    _launch("forward", y.dtype, tile, _threads(tile), _blocks(tiles), x, w, b, y,
            cd.const_array(values), _table("x", values), bool(has_bias), op, alpha,
            r if r is not None else y)


def backward_data(gy, w, gx, values, b=None):
    """gx = the input gradient of conv (+ b[c] per channel: the transposed convolution)."""
    tile = TILE
    tiles = -(-values[1] // tile[0]) * -(-(values[0] * values[3] * values[4]) // tile[1])
    _launch("backward_data", gx.dtype, tile, _threads(tile), _blocks(tiles), gy, w,
            w if b is None else b, gx, cd.const_array(values), _table("data", values),
            b is not None)


def backward_weight(x, gy, gw, part, values, splits):
    """gw = the weight gradient of conv; ``part`` (splits * gw.size elements) when splits > 1."""
    tile = TILE
    ck = values[1] * values[10] * values[11]
    tiles = -(-values[5] // tile[0]) * -(-ck // tile[1])
    target = gw if splits == 1 else part
    _launch("backward_weight", gw.dtype, tile, _threads(tile), _blocks(tiles * splits), x, gy,
            target, cd.const_array(values), _table("x", values), int(splits))
    if splits > 1:
        cd.launch(split_sum, gw.size, part, gw, int(splits))


def channel_sums(g, out, n, c, p):
    """out[c] = sum of g[n, c, :] over n (g flat (N, C, P)); deterministic block reduction."""
    threads = SUM_THREADS
    _launch("channel_sum", out.dtype, threads, threads, max(1, min(cd.MAX_BLOCKS, c)), g, out,
            cd.const_array((n, c, p)))


def describe():
    """The settings, for reports (gpu_check)."""
    bm, bn, bk, tm, tn = TILE
    return (f"tile BMxBNxBK {bm}x{bn}x{bk}, registers {tm}x{tn}, {_threads(TILE)} threads; "
            f"tiled when >= {MIN_CHANNELS} channels and >= {MIN_PIXELS} pixels; weight-grad "
            f"splits up to {MAX_SPLITS} (>= {MIN_SPLIT} each, ~{TARGET_BLOCKS} blocks)")

