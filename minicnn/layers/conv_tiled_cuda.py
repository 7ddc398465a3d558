"""Tiled implicit-GEMM CUDA convolutions (groups == 1, 1-D and 2-D) and a block-reduced
per-channel sum (bias gradients): the choice, the geometry tables and the launches. The kernels
themselves are built in ``conv_tiled_kernels``. Used by ``conv_cuda``, ``conv_transpose_cuda``
and ``linear_cuda`` where they pay.

Geometry. ``values`` is the 22-number table of ``conv_cuda._HP`` (N, C, D, H, W, O, OD, OH, OW,
KD, KH, KW, strides, paddings, dilations, G) of a convolution x (N, C, H, W) * w (O, C, KH, KW)
-> y (N, O, OH, OW); depth axes are 1 here. The three directions are GEMMs with the im2col matrix
never formed: a reduction index k = (c, kh, kw) (or (o, kh, kw) for the input gradient) is turned
into offsets by a small int64 table ``kt`` built once per geometry (``_table``), so no division
runs in the inner loops:

* forward       Y (O x N*OH*OW)    = W (O x C*KH*KW)        @ im2col(x)
* input grad    GX (C x N*H*W)     = W^T (C x O*KH*KW)      @ gather(gy): at stride 1 this is
                the forward convolution of gy with the flipped weight (``flipped_values``), run
                by the forward kernel; at larger strides a kernel built for the strides (zeros
                where the stride grid skips a position)
* weight grad   GW (O x C*KH*KW)   = GY (O x N*OH*OW)       @ im2col(x)^T, the long reduction
                split into ``splits`` contiguous chunks (partials ``(splits, O*C*KH*KW)``, then
                summed in split order by ``split_sum``).

Filling the GPU. The tile follows the GEMM's rows; where it would make fewer than MIN_GRID
blocks, its narrow twin (half the columns) runs instead; where even that makes fewer than
SPLIT_K_GRID, the forward and input gradient split their reduction as the weight gradient does
(partials ``(splits, output)``, added in split order with the bias and the epilogue by
``split_sum_rows``), when the caller gives the room (``split_workspace``).

Determinism. Each output element is one thread's register sum over k in increasing order (split
chunks in order, then summed in split order): bit-identical from run to run, independent of the
launch shape (and, unsplit, of the tile); ``splits`` depends only on the shape and the module
constants.

Epilogue. The forward kernel adds the bias as it stores, and can apply a fused activation
(``minicnn/fusion.py``): it then writes both the convolution's output and the activation's (a
split reduction leaves both to ``split_sum_rows``).

Tests shrink ``TILES`` (and the thresholds) so the simulator runs several blocks and partial tiles
at every edge on tiny shapes; kernels are built per (kind, dtype, tile) and cached.
"""

import numpy as np

from .. import cuda_device as cd
from ..cuda_device import cuda
from .activation_cuda import NO_EPILOGUE, epilogue_args
from .conv_tiled_kernels import (  # noqa: F401 - check_tile: callers use it from here
    FAR,
    build,
    build_channel_sum,
    check_tile,
    split_sum,
    split_sum_rows,
    table_multiple,
)

# BM (rows: channels), BN (columns: pixels), BK (reduction), TM x TN registers per thread; a
# GEMM takes the first tile with at least as many rows as it has (``tile_for``): BM = 64 on a
# 16-channel layer (ResNet-20's first stage) would multiply 48 rows of zeros
TILES = ((16, 128, 8, 2, 8), (32, 128, 8, 4, 8), (64, 128, 8, 8, 8))
# ... and the same rows with half the columns, for GEMMs whose grid of TILES would leave the GPU
# short of blocks (ResNet-20's 64-channel stage at batch 256: 128 blocks of 4 warps for 132 SMs,
# one block an SM where two or three fit): more, smaller blocks hide latency better
NARROW_TILES = ((16, 64, 8, 2, 4), (32, 64, 8, 4, 4), (64, 64, 8, 8, 4))
MIN_GRID = 264              # blocks under which a GEMM takes the narrow tile: 2 per SM of an
                            # H100 (a constant, not the device's SM count, so that a model runs
                            # the same kernels on every GPU); `gpu_session.sh tune` times it
SPLIT_K_GRID = 132          # a forward or input-gradient GEMM with fewer blocks than this even
                            # on the narrow tile also splits its reduction (VGG-19's conv4 layers
                            # on one 32x32 image: 128 blocks of 288 to 576 slices each), when
                            # the caller has the workspace for the partial sums
MIN_K_CHUNK = 512           # ... in chunks of at least this many (64 slices): the split costs
                            # a launch, worth it for long sums only (not ResNet-20's 576)
MIN_CHANNELS = 4            # GEMM rows below this: the direct kernel. At 4 to 7 rows the
                            # 16-row tile does 2-4x the multiply-adds needed, but the direct
                            # kernels decode indices (int64 divisions) per multiply-add;
                            # `gpu_session.sh convs` times both
MIN_PIXELS = 1024           # GEMM columns (forward, input grad) / reduction (weight grad) below
TARGET_BLOCKS = 528         # weight grad splits its reduction to reach about this many blocks
MIN_SPLIT = 256             # ... but every split reduces at least this many positions (32
                            # slices): ResNet-20's 1x1 projection to 64 channels at batch 256
                            # had 8 blocks with the 2048 this was before
MAX_SPLITS = 256            # small weights with long sums (LeNet's first layer: one tile,
                            # 800k positions) need many splits to fill the GPU
SUM_THREADS = 128           # block size of channel_sum (a power of two)

_kernels = {}


def get_kernel(kind, dtype, tile=None):
    """The compiled kernel of a kind ("forward", "backward_data", "backward_data_s2x2", ...,
    "backward_weight": see ``conv_tiled_kernels``) or "channel_sum" (tile = block size) for a
    dtype and tile (the largest of ``TILES`` / ``SUM_THREADS`` when None), built once."""
    if tile is None:
        tile = SUM_THREADS if kind == "channel_sum" else TILES[-1]
    if not isinstance(dtype, np.dtype):   # arrays' dtypes already are: no conversion per launch
        dtype = np.dtype(dtype)
    key = (kind, dtype, tile)
    kernel = _kernels.get(key)
    if kernel is None:
        if kind == "channel_sum":
            kernel = build_channel_sum(dtype, tile)
        else:
            kernel = build(kind, dtype, tuple(tile))
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


def flipped_values(values):
    """The geometry of the forward convolution that computes a stride-1 input gradient: input
    gy (N, O, OH, OW), output gx (N, C, H, W), the same kernel size and dilation, padding
    D*(K-1) - P (negative when P is larger: the bounds tests handle it), weight
    w'[c, o, kh, kw] = w[o, c, KH-1-kh, KW-1-kw] (read through the table's row 3)."""
    n, c, _, h, w, o, _, oh, ow, _, kh, kw, _, _, _, _, ph, pw, _, dh, dw, _ = values
    return (n, o, 1, oh, ow, c, 1, h, w, 1, kh, kw, 1, 1, 1, 0, dh * (kh - 1) - ph,
            dw * (kw - 1) - pw, 1, dh, dw, 1)


def _table(kind, values, tile):
    """kt of a geometry, a cached device int64 array with one column per reduction index (per
    weight tap for the weight gradient), padded to ``table_multiple(tile)`` columns that read
    as outside the image:

    * "x" (forward, weight grad; k = (c, kh, kw)): rows x offset, kh*DH, kw*DW;
    * "flipped" (stride-1 input grad; the forward of ``flipped_values``, k = (o, kh, kw)): the
      "x" rows of that geometry and row 3, w offset of (o, 0, KH-1-kh, KW-1-kw);
    * "strided" (input grad, k = (o, kh, kw)): rows gy offset, kh*DH - PH, kw*DW - PW, and
      row 3, w offset of (o, 0, kh, kw)."""
    key = (kind, values, tile)
    table = _tables.get(key)
    if table is None:
        geo = flipped_values(values) if kind == "flipped" else values
        _, C, _, H, W, O, _, OH, OW, _, KH, KW, _, _, _, _, PH, PW, _, DH, DW, _ = geo
        kh = np.arange(KH).repeat(KW)
        kw = np.tile(np.arange(KW), KH)
        if kind == "strided":
            o = np.arange(O).repeat(KH * KW)
            rows = [o * OH * OW, np.tile(kh * DH - PH, O), np.tile(kw * DW - PW, O),
                    o * C * KH * KW + np.tile(kh * KW + kw, O)]
            pad = [0, -FAR, 0, 0]
        else:
            c = np.arange(C).repeat(KH * KW)
            dh, dw = np.tile(kh * DH, C), np.tile(kw * DW, C)
            rows = [c * H * W + dh * W + dw, dh, dw]
            pad = [0, FAR, 0]
            if kind == "flipped":    # geo's C is the original O, its O the original C
                flip = (KH - 1 - kh) * KW + (KW - 1 - kw)
                rows.append(c * O * KH * KW + np.tile(flip, C))
                pad.append(0)
        width = -(-len(rows[0]) // table_multiple(tile)) * table_multiple(tile)
        full = np.repeat(np.array(pad, dtype=np.int64)[:, None], width, axis=1)
        full[:, :len(rows[0])] = rows
        if len(_tables) > 256:
            _tables.clear()
        table = _tables[key] = cuda.to_device(full)
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
    tile = tile_for(rows)
    tiles = -(-rows // tile[0]) * -(-cols // tile[1])
    want = -(-TARGET_BLOCKS // tiles)
    return int(max(1, min(want, MAX_SPLITS, reduction // MIN_SPLIT)))


def gemm_values(n, k, m):
    """The geometry numbers of Linear as a 1x1 convolution: x (n, k) -> y (n, m) = x w^T."""
    return (n, k, 1, 1, 1, m, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1)


def tile_for(rows, cols=None):
    """The tile of a GEMM with ``rows`` output rows: the first of ``TILES`` with as many; with
    ``cols``, its ``NARROW_TILES`` twin when the wide tile would make fewer than MIN_GRID
    blocks (the narrow one makes up to twice as many, and wastes less on few columns)."""
    index = len(TILES) - 1
    for i, tile in enumerate(TILES):
        if rows <= tile[0]:
            index = i
            break
    tile = TILES[index]
    if (cols is not None and index < len(NARROW_TILES)
            and -(-rows // tile[0]) * -(-cols // tile[1]) < MIN_GRID):
        return NARROW_TILES[index]
    return tile


def all_tiles():
    """Every tile a GEMM may take (PTX checks, reports)."""
    return tuple(dict.fromkeys(TILES + NARROW_TILES))


def _blocks(tiles):
    return max(1, min(cd.MAX_BLOCKS, tiles))


def _threads(tile):
    return (tile[0] // tile[3]) * (tile[1] // tile[4])


def forward_gemm(values):
    """(rows, columns, reduction) of the forward GEMM."""
    return values[5], values[0] * values[7] * values[8], values[1] * values[10] * values[11]


def backward_data_gemm(values):
    """(rows, columns, reduction) of the input-gradient GEMM."""
    return values[1], values[0] * values[3] * values[4], values[5] * values[10] * values[11]


def reduction_splits(rows, cols, reduction, tile=None):
    """(splits, chunk) of a forward or input-gradient GEMM: (1, reduction) unless its grid is
    short of SPLIT_K_GRID blocks; then chunks of at least MIN_K_CHUNK (a multiple of BK) to reach
    about TARGET_BLOCKS blocks, at most MAX_SPLITS. Depends on the shape and the constants only,
    so the sums' order (and the bits) do too."""
    tile = tile or tile_for(rows, cols)
    tiles = -(-rows // tile[0]) * -(-cols // tile[1])
    splits = 1
    if tiles < SPLIT_K_GRID:
        splits = max(1, min(-(-TARGET_BLOCKS // tiles), MAX_SPLITS, reduction // MIN_K_CHUNK))
    if splits == 1:
        return 1, reduction
    per_split = -(-reduction // splits)
    chunk = -(-per_split // tile[2]) * tile[2]            # whole slices
    return -(-reduction // chunk), chunk


def split_workspace(values):
    """Elements of the partial sums the forward and the input gradient need when they split
    their reduction (one buffer serves both: they never run at once); 0 when neither does."""
    size = 0
    for takes, gemm in ((use_forward, forward_gemm), (use_backward_data, backward_data_gemm)):
        if takes(values):
            rows, cols, reduction = gemm(values)
            splits = reduction_splits(rows, cols, reduction)[0]
            if splits > 1:
                size = max(size, splits * rows * cols)
    return size


def forward(x, w, b, y, values, has_bias, act=None, r=None, tile=None, part=None):
    """y = conv(x, w) (+ b): flat device arrays, geometry values. With ``act`` (an activation
    kernel's ``epilogue``: op code and parameter) also r = act(y), in the same pass. ``tile``:
    this one rather than ``tile_for``'s (scripts/tune_conv_tiles.py); ``part``: room for the
    partial sums (``split_workspace``), without which the reduction is never split."""
    _gemm("forward", forward_gemm(values), x, w, b, y, values, "x", values, has_bias, act, r,
          tile, part)


def backward_data(gy, w, gx, values, b=None, tile=None, part=None):
    """gx = the input gradient of conv (+ b[c] per channel: the transposed convolution). At
    stride 1 that is the forward kernel on ``flipped_values``; otherwise a kernel built for the
    strides."""
    bias = w if b is None else b
    sh, sw = values[13], values[14]
    gemm = backward_data_gemm(values)
    if sh == 1 and sw == 1:
        _gemm("backward_data", gemm, gy, w, bias, gx, flipped_values(values), "flipped",
              values, b is not None, tile=tile, part=part)
    else:
        _gemm(f"backward_data_s{sh}x{sw}", gemm, gy, w, bias, gx, values, "strided", values,
              b is not None, tile=tile, part=part)


def _gemm(kind, gemm, x, w, b, y, geometry, table, values, has_bias, act=None, r=None,
          tile=None, part=None):
    """Launch a ``conv_tiled_gemm`` kernel: ``geometry`` goes to the kernel, ``_table(table,
    values)`` with it; a rows x cols output (``gemm``: rows, cols, reduction). A split
    reduction writes its partial sums to ``part`` and ``split_sum_rows`` adds them in order,
    with the bias and the epilogue."""
    rows, cols, reduction = gemm
    if tile is None:
        tile = tile_for(rows, cols)
    tiles = -(-rows // tile[0]) * -(-cols // tile[1])
    op, alpha = epilogue_args(act)
    r = r if r is not None else y
    splits, chunk = (1, reduction) if part is None else reduction_splits(rows, cols, reduction,
                                                                         tile)
    if splits > 1 and part.size >= splits * y.size:
        _launch(kind, y.dtype, tile, _threads(tile), _blocks(tiles * splits), x, w, b, part,
                cd.const_array(geometry), _table(table, values, tile), False, NO_EPILOGUE,
                alpha, part, int(chunk))
        cd.launch(split_sum_rows, y.size, part, y, int(splits), b, bool(has_bias), int(rows),
                  int(y.size // rows // values[0]), op, alpha, r)
        return
    _launch(kind, y.dtype, tile, _threads(tile), _blocks(tiles), x, w, b, y,
            cd.const_array(geometry), _table(table, values, tile), bool(has_bias), op, alpha,
            r, int(reduction))


def backward_weight(x, gy, gw, part, values, splits, tile=None):
    """gw = the weight gradient of conv; ``part`` (splits * gw.size elements) when splits > 1.
    The tile is ``tile_for`` the output channels (the splits fill the GPU) unless given."""
    if tile is None:
        tile = tile_for(values[5])
    ck = values[1] * values[10] * values[11]
    tiles = -(-values[5] // tile[0]) * -(-ck // tile[1])
    target = gw if splits == 1 else part
    _launch("backward_weight", gw.dtype, tile, _threads(tile), _blocks(tiles * splits), x, gy,
            target, cd.const_array(values), _table("x", values, tile), int(splits))
    if splits > 1:
        cd.launch(split_sum, gw.size, part, gw, int(splits))


def channel_sums(g, out, n, c, p):
    """out[c] = sum of g[n, c, :] over n (g flat (N, C, P)); deterministic block reduction."""
    threads = SUM_THREADS
    _launch("channel_sum", out.dtype, threads, threads, max(1, min(cd.MAX_BLOCKS, c)), g, out,
            cd.const_array((n, c, p)))


def describe():
    """The settings, for reports (gpu_check)."""
    def named(tiles):
        return ", ".join(f"{bm}x{bn}x{bk} ({tm}x{tn} registers, "
                         f"{_threads((bm, bn, bk, tm, tn))} threads)"
                         for bm, bn, bk, tm, tn in tiles)
    return (f"tiles BMxBNxBK {named(TILES)} by output rows, {named(NARROW_TILES)} under "
            f"{MIN_GRID} blocks, split reductions under {SPLIT_K_GRID}; "
            f"tiled when >= {MIN_CHANNELS} channels and >= {MIN_PIXELS} pixels; weight-grad "
            f"splits up to {MAX_SPLITS} (>= {MIN_SPLIT} each, ~{TARGET_BLOCKS} blocks)")

