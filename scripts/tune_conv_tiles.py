"""Time every candidate tile of the tiled convolution kernels on the shapes that matter, to choose
``conv_tiled_cuda``'s settings (TILES, NARROW_TILES, MIN_GRID, MIN_SPLIT) from measurements.

For each convolution (the issue's cuDNN shapes, ResNet-20 and LeNet-5 at batch 256, and
``scripts/gpu_check.py``'s table) and each direction (forward, input gradient, weight gradient),
it runs the tile minicnn chooses and every candidate tile (each with the split reduction minicnn
would give it; the chosen one also unsplit, and the weight gradient's with other split counts),
checks each against the chosen one (the same reduction order gives the same bits; other split
counts must agree to 1e-5), and prints a table: the chosen kernel's time, the fastest
candidate, the gain were it chosen, and cuDNN's time (PyTorch with TF32 off, when importable).
The summary gives the geometric means over the shapes against cuDNN, as chosen and as it would
be with the best candidate everywhere, and how often each candidate wins.

    python scripts/tune_conv_tiles.py              # a GPU: the issue's shapes, ResNet-20, LeNet-5
    python scripts/tune_conv_tiles.py --shapes resnet20 lenet5 --json tune.json
    python scripts/tune_conv_tiles.py --sim        # numba's simulator, tiny shapes (a smoke test)

Times are CUDA-event times of ``--repeat`` back-to-back runs (launch overhead amortised), after
one warm-up run that also compiles.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (BM, BN, BK, TM, TN) beyond TILES and NARROW_TILES: a deeper slice, a 256-thread tile, a tall one
EXTRA_TILES = ((64, 128, 16, 8, 8), (128, 128, 8, 8, 8), (128, 64, 8, 8, 8))
SPLIT_FACTORS = (0.25, 0.5, 2.0, 4.0)     # weight gradient: split counts around the chosen one

# (label, N, C, H, W, O, kernel, stride, padding)
SHAPES = {
    "issue": [
        ("issue 64ch 56x56", 256, 64, 56, 56, 64, 3, 1, 1),
        ("issue 128ch 28x28", 256, 128, 28, 28, 128, 3, 1, 1),
        ("issue 256ch 14x14", 256, 256, 14, 14, 256, 3, 1, 1),
        ("issue 1x1 256->64", 256, 256, 14, 14, 64, 1, 1, 0),
        ("issue lenet conv1", 1024, 1, 28, 28, 20, 5, 1, 0),
    ],
    "resnet20": [
        ("r20 3->16", 256, 3, 32, 32, 16, 3, 1, 1),
        ("r20 16ch 32x32", 256, 16, 32, 32, 16, 3, 1, 1),
        ("r20 16->32 /2", 256, 16, 32, 32, 32, 3, 2, 1),
        ("r20 proj 16->32", 256, 16, 32, 32, 32, 1, 2, 0),
        ("r20 32ch 16x16", 256, 32, 16, 16, 32, 3, 1, 1),
        ("r20 32->64 /2", 256, 32, 16, 16, 64, 3, 2, 1),
        ("r20 proj 32->64", 256, 32, 16, 16, 64, 1, 2, 0),
        ("r20 64ch 8x8", 256, 64, 8, 8, 64, 3, 1, 1),
    ],
    "vgg19": [                       # style transfer: one 256x256 image (issue 6)
        ("vgg19 conv1_2", 1, 64, 256, 256, 64, 3, 1, 1),
        ("vgg19 conv2_2", 1, 128, 128, 128, 128, 3, 1, 1),
        ("vgg19 conv3_2", 1, 256, 64, 64, 256, 3, 1, 1),
        ("vgg19 conv4_1", 1, 256, 32, 32, 512, 3, 1, 1),
        ("vgg19 conv4_2", 1, 512, 32, 32, 512, 3, 1, 1),
        ("vgg19 conv5_1", 1, 512, 16, 16, 512, 3, 1, 1),   # direct (< MIN_PIXELS): no rows
    ],
    "lenet5": [
        ("lenet5 conv1", 256, 1, 28, 28, 6, 5, 1, 2),
        ("lenet5 conv2", 256, 6, 14, 14, 16, 5, 1, 0),
        ("lenet5 conv3", 256, 16, 5, 5, 120, 5, 1, 0),
    ],
    "sim": [
        ("tiny 3->5", 1, 3, 3, 4, 5, 3, 1, 1),
        ("tiny 4->6 /2", 1, 4, 4, 3, 6, 3, 2, 1),
    ],
}
# the simulator's candidates: tiny tiles of the shapes the real ones have
SIM_TILES = ((4, 8, 4, 2, 2), (4, 4, 4, 2, 2), (8, 8, 4, 2, 2))
DIRECTIONS = ("forward", "backward_data", "backward_weight")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["issue", "resnet20", "lenet5", "vgg19"],
                        choices=sorted(SHAPES) + ["gpu_check"],
                        help="shape groups (gpu_check: scripts/gpu_check.py's table)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", help="also write every timing to this file")
    parser.add_argument("--sim", action="store_true", help="numba's CUDA simulator, tiny shapes")
    args = parser.parse_args(argv)
    if args.sim:
        args.shapes, args.repeat = ["sim"], 1
    return args


def shape_list(names):
    shapes = []
    for name in names:
        if name == "gpu_check":
            from gpu_check import CONV_SHAPES
            shapes += CONV_SHAPES
        else:
            shapes += SHAPES[name]
    return shapes


def candidate_tiles(rows, tiled, extra):
    """The tiles worth trying for a GEMM with ``rows`` output rows: every known tile no more
    than twice the rows (a taller one mostly multiplies zeros), each at most once."""
    tiles = []
    for tile in tiled.all_tiles() + tuple(extra):
        if tile not in tiles and tile[0] <= 2 * max(rows, tiled.TILES[0][0]):
            try:
                tiled.check_tile(tile)
            except ValueError:
                continue
            tiles.append(tile)
    return tiles


class Timer:
    """ms per run of ``fn``: CUDA events around ``repeat`` runs (the simulator has none: wall
    clock)."""

    def __init__(self, cuda, simulator, repeat):
        self.cuda, self.simulator, self.repeat = cuda, simulator, repeat

    def __call__(self, fn):
        if self.simulator:                     # nothing to compile or warm up
            start = time.perf_counter()
            for _ in range(self.repeat):
                fn()
            return (time.perf_counter() - start) * 1e3 / self.repeat
        fn()                                   # compile, warm up
        self.cuda.synchronize()
        begin, end = self.cuda.event(), self.cuda.event()
        begin.record()
        for _ in range(self.repeat):
            fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / self.repeat


def tune_shape(shape, timer, extra, dev, rng, torch=None):
    """Rows of one convolution: (label, direction, candidate, ms, chosen?, max |diff| relative to
    the chosen kernel's result, cuDNN ms or None)."""
    import numpy as np

    from minicnn import nn, to_numpy
    from minicnn.layers import conv_cuda
    from minicnn.layers import conv_tiled_cuda as tiled
    label, n, c, h, w, o, k, s, p = shape
    layer = nn.Conv2d(c, o, k, stride=s, padding=p)
    values = conv_cuda.geometry_values(layer, (n, c, h, w))
    oh, ow = layer.out_spatial((h, w))
    host = {"x": rng.standard_normal((n, c, h, w), np.float32), "w": layer.weight.data,
            "b": layer.bias.data, "gy": rng.standard_normal((n, o, oh, ow), np.float32)}
    d = {key: dev.asarray(v).reshape(v.size) for key, v in host.items()}
    outs = {"forward": n * o * oh * ow, "backward_data": n * c * h * w,
            "backward_weight": layer.weight.size}
    ref_ms = _cudnn_times(torch, host, s, p, timer) if torch is not None else {}
    rows = []
    for direction in DIRECTIONS:
        runs = _candidates(direction, values, tiled, extra)
        if not runs:
            continue
        results = []
        for name, tile, splits, chosen in runs:
            out = dev.empty((outs[direction],), np.float32)
            part = dev.empty((max(splits, 1) * outs[direction],), np.float32)
            gemm_part = part if splits > 1 else None     # forward, input gradient: split or not

            def run(tile=tile, splits=splits, out=out, part=part, direction=direction,
                    gemm_part=gemm_part):
                if direction == "forward":
                    tiled.forward(d["x"], d["w"], d["b"], out, values, True, tile=tile,
                                  part=gemm_part)
                elif direction == "backward_data":
                    tiled.backward_data(d["gy"], d["w"], out, values, tile=tile, part=gemm_part)
                else:
                    tiled.backward_weight(d["x"], d["gy"], out, part, values, splits, tile=tile)
            try:
                ms = timer(run)
            except Exception as error:   # a candidate that does not build is reported, not fatal
                rows.append((label, direction, name, None, chosen, f"failed: {error}"[:60],
                             ref_ms.get(direction)))
                continue
            results.append((name, ms, chosen, to_numpy(out)))
        reference = next(r[3] for r in results if r[2])
        scale = max(float(np.abs(reference).max()), 1e-30)
        for name, ms, chosen, got in results:
            diff = float(np.abs(got - reference).max()) / scale
            rows.append((label, direction, name, ms, chosen, diff, ref_ms.get(direction)))
    return rows


def _candidates(direction, values, tiled, extra):
    """[(name, tile, splits, chosen?)] of a direction; [] when minicnn does not tile it. The
    forward and input gradient split their reduction as ``reduction_splits`` says for each
    tile; where the chosen tile splits, it also runs unsplit."""
    if direction == "forward":
        if not tiled.use_forward(values):
            return []
        rows, cols, reduction = tiled.forward_gemm(values)
    elif direction == "backward_data":
        if not tiled.use_backward_data(values):
            return []
        rows, cols, reduction = tiled.backward_data_gemm(values)
    else:
        splits = tiled.weight_splits(values)
        if not splits:
            return []
        o = values[5]
        chosen = tiled.tile_for(o)
        reduction = values[0] * values[7] * values[8]
        most = min(tiled.MAX_SPLITS, reduction // 64)
        counts = sorted({splits} | {max(1, min(most, round(splits * f))) for f in SPLIT_FACTORS})
        # every tile at the chosen split count, and the chosen tile at other counts
        runs = [(f"{_name(tile)} s{splits}", tile, splits, tile == chosen)
                for tile in candidate_tiles(o, tiled, extra)]
        runs += [(f"{_name(chosen)} s{count}", chosen, count, False)
                 for count in counts if count != splits]
        return runs
    chosen = tiled.tile_for(rows, cols)
    runs = []
    for tile in candidate_tiles(rows, tiled, extra):
        splits = tiled.reduction_splits(rows, cols, reduction, tile)[0]
        runs.append((f"{_name(tile)} s{splits}", tile, splits, tile == chosen))
        if tile == chosen and splits > 1:
            runs.append((f"{_name(tile)} s1", tile, 1, False))
    return runs


def _name(tile):
    return "x".join(map(str, tile))


def _cudnn_times(torch, host, stride, padding, timer):
    """cuDNN's ms per direction, on gpu_check's PyTorch runs of the same arrays."""
    from gpu_check import _cudnn_runs
    return {key: timer(fn) for key, fn in _cudnn_runs(torch, host, stride, padding).items()}


def report(rows):
    """The table (one line per shape and direction) and the summary; returns the summary dict."""
    print(f"{'shape':<20} {'direction':<16} {'chosen':<22} {'ms':>8} {'best':<22} {'ms':>8} "
          f"{'gain':>5} {'cuDNN':>8} {'ratio':>5} {'best':>5} {'diff':>7}")
    groups = {}
    for row in rows:
        groups.setdefault((row[0], row[1]), []).append(row)
    ratios, best_ratios, wins = {}, {}, {}
    for (label, direction), group in groups.items():
        timed = [r for r in group if r[3] is not None]
        chosen = next((r for r in timed if r[4]), None)
        if chosen is None or not timed:
            print(f"{label:<20} {direction:<16} the chosen kernel failed: {group}")
            continue
        best = min(timed, key=lambda r: r[3])
        wins[best[2]] = wins.get(best[2], 0) + 1
        worst_diff = max(r[5] for r in timed)
        line = (f"{label:<20} {direction:<16} {chosen[2]:<22} {chosen[3]:8.3f} {best[2]:<22} "
                f"{best[3]:8.3f} {chosen[3] / best[3]:5.2f}")
        cudnn = chosen[6]
        if cudnn:
            line += f" {cudnn:8.3f} {cudnn / chosen[3]:5.2f} {cudnn / best[3]:5.2f}"
            ratios.setdefault(direction, []).append(cudnn / chosen[3])
            best_ratios.setdefault(direction, []).append(cudnn / best[3])
        else:
            line += " " * 21
        line += f" {worst_diff:7.1e}"
        failed = [r for r in group if r[3] is None]
        if failed:
            line += f"  ({len(failed)} failed: {failed[0][5]})"
        print(line)
    summary = {"wins": wins}
    for direction, values in ratios.items():
        mean = _geomean(values)
        best = _geomean(best_ratios[direction])
        summary[direction] = {"chosen": mean, "best": best, "min": min(values)}
        print(f"cuDNN ms / minicnn ms, {direction:<16} geometric mean {mean:.2f} as chosen, "
              f"{best:.2f} with the best candidates (lowest {min(values):.2f})")
    print("fastest candidate, times: " + ", ".join(f"{k} {v}" for k, v in
                                                   sorted(wins.items(), key=lambda kv: -kv[1])))
    return summary


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv=None):
    args = parse(argv)
    if args.sim:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"   # read when numba.cuda is first imported
    sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]   # minicnn; gpu_check's shapes, cuDNN runs
    import numpy as np

    from minicnn import cuda_device
    from minicnn.device import get_device
    from minicnn.layers import conv_tiled_cuda as tiled
    dev = get_device("cuda")
    extra = EXTRA_TILES
    if args.sim:        # tiny tiles and thresholds, as tests/test_cuda_tiled.py sets them
        tiled.TILES, tiled.NARROW_TILES = SIM_TILES[:1], SIM_TILES[1:2]
        tiled.MIN_CHANNELS, tiled.MIN_PIXELS, tiled.MIN_SPLIT, tiled.MIN_K_CHUNK = 1, 1, 4, 4
        tiled.TARGET_BLOCKS, extra = 16, SIM_TILES[2:]
    torch = None
    if not args.sim:
        try:
            import torch
            if not torch.cuda.is_available():
                torch = None
            else:
                torch.backends.cudnn.allow_tf32 = False
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.benchmark = True
        except ImportError:
            torch = None
    print(f"tiled convolutions: {tiled.describe()}")
    timer = Timer(cuda_device.cuda, cuda_device.SIMULATOR, args.repeat)
    rng = np.random.default_rng(0)
    rows = []
    for shape in shape_list(args.shapes):
        rows += tune_shape(shape, timer, extra, dev, rng, torch)
    summary = report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return rows, summary


if __name__ == "__main__":
    main()
