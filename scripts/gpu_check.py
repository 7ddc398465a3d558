"""Check minicnn's CUDA backend on a real GPU: every layer's parity with the CPU kernels and a
float64 gradcheck on the device, determinism, a short LeNet-5 training against the CPU, and a
timing table (PyTorch beside it when importable with CUDA).

    python scripts/gpu_check.py                 # real GPU (needs numba-cuda and a driver)
    python scripts/gpu_check.py --sim           # numba's CUDA simulator, tiny shapes (slow)
    python scripts/gpu_check.py --record sigs.json   # also write the launched kernel signatures
                                                     # (then: python scripts/cuda_ptx.py sigs.json)
    python scripts/gpu_check.py --skip-layers --conv-only [--direct]   # only the conv table

The layer cases are the ones of ``tests/test_cuda_layers.py``. On a GPU it also checks the tiled
implicit-GEMM convolution kernels at their real tile sizes (parity with the CPU on odd shapes,
bit-identical reruns) and prints a convolution timing table: forward, input gradient and weight
gradient of ResNet/VGG-like layers, minicnn (the kernel it chooses; ``--direct`` adds the direct
kernels) against PyTorch/cuDNN with TF32 off, the ratio cuDNN time / minicnn time and its geometric
mean per direction (the target: at least 0.6), and the largest difference from cuDNN's result.
The same simulator tests run unsimulated with ``MINICNN_TEST_REAL_GPU=1 python -m pytest
tests/test_cuda_*.py``. Prints one summary table; exit status 1 when any check failed.
"""

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", action="store_true", help="run on numba's CUDA simulator")
    parser.add_argument("--record", help="write launched kernel signatures to this JSON file")
    parser.add_argument("--steps", type=int, default=None, help="LeNet-5 training steps")
    parser.add_argument("--batch", type=int, default=None, help="LeNet-5 batch size")
    parser.add_argument("--skip-layers", action="store_true", help="only training and timings")
    parser.add_argument("--conv-only", action="store_true",
                        help="only the tiled convolution checks and the convolution timing table")
    parser.add_argument("--direct", action="store_true",
                        help="also time the direct convolution kernels (slow on large layers)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per measurement")
    return parser.parse_args()


# (label, N, C, H, W, O, kernel, stride, padding): LeNet-5 (MNIST), ResNet-20 (CIFAR),
# ResNet-18/VGG (ImageNet)
CONV_SHAPES = [
    ("lenet conv1 b1024", 1024, 1, 28, 28, 6, 5, 1, 2),
    ("lenet conv2 b1024", 1024, 6, 14, 14, 16, 5, 1, 0),
    ("cifar 16ch 32x32", 128, 16, 32, 32, 16, 3, 1, 1),
    ("cifar 32ch 16x16", 128, 32, 16, 16, 32, 3, 1, 1),
    ("cifar 64ch 8x8", 128, 64, 8, 8, 64, 3, 1, 1),
    ("r18 conv1 7x7/2", 32, 3, 224, 224, 64, 7, 2, 3),
    ("r18 64ch 56x56", 32, 64, 56, 56, 64, 3, 1, 1),
    ("r18 64->128 /2", 32, 64, 56, 56, 128, 3, 2, 1),
    ("r18 128ch 28x28", 32, 128, 28, 28, 128, 3, 1, 1),
    ("r18 256ch 14x14", 32, 256, 14, 14, 256, 3, 1, 1),
    ("r18 512ch 7x7", 32, 512, 7, 7, 512, 3, 1, 1),
    ("r50 1x1 256->64", 32, 256, 56, 56, 64, 1, 1, 0),
    ("vgg 128ch 112x112", 16, 128, 112, 112, 128, 3, 1, 1),
]
DIRECTIONS = ("forward", "backward_data", "backward_weight")


def _median_ms(fn, sync, repeat):
    import time

    import numpy as np
    fn()                      # compile / warm up
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def _conv_runs(dev, layer, shape, rng):
    """Device buffers and the three directions of one convolution: (runs, outputs, host arrays,
    the path each direction takes, GFLOP of one direction)."""
    import numpy as np

    from minicnn.layers import conv_cuda
    from minicnn.layers import conv_tiled_cuda as tiled
    n, c, h, w = shape
    o, (k1, k2) = layer.out_channels, layer.kernel_size
    oh, ow = layer.out_spatial((h, w))
    values = conv_cuda.geometry_values(layer, shape)
    host = {"x": rng.standard_normal(shape, np.float32), "w": layer.weight.data,
            "b": layer.bias.data, "gy": rng.standard_normal((n, o, oh, ow), np.float32)}
    d = {key: dev.asarray(v).reshape(v.size) for key, v in host.items()}
    out = {"forward": dev.empty((n, o, oh, ow), np.float32),
           "backward_data": dev.empty(shape, np.float32),
           "backward_weight": dev.empty(layer.weight.shape, np.float32)}
    flat = {key: v.reshape(v.size) for key, v in out.items()}
    ws = {key: dev.empty(s, t) for key, (s, t) in
          conv_cuda.conv_workspace(values, layer.weight.size, np.float32).items()}
    runs = {
        "forward": lambda: conv_cuda.run_forward(d["x"], d["w"], d["b"], flat["forward"],
                                                 values, ws=ws),
        "backward_data": lambda: conv_cuda.run_backward_data(d["gy"], d["w"],
                                                             flat["backward_data"], values,
                                                             ws=ws),
        "backward_weight": lambda: conv_cuda.run_backward_weight(
            d["x"], d["gy"], flat["backward_weight"], values, ws),
    }
    paths = {"forward": tiled.use_forward(values),
             "backward_data": tiled.use_backward_data(values),
             "backward_weight": tiled.weight_splits(values) > 0}
    paths = {key: "tiled" if v else "direct" for key, v in paths.items()}
    return runs, out, host, paths, 2.0 * n * o * oh * ow * c * k1 * k2 / 1e9


def _cudnn_runs(torch, host, stride, padding):
    """The same three directions in PyTorch (cuDNN)."""
    tx, tw, tb, tgy = (torch.from_numpy(host[key]).cuda() for key in ("x", "w", "b", "gy"))

    def back(mask):
        return torch.ops.aten.convolution_backward(
            tgy, tx, tw, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1, mask)
    return {"forward": lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, padding),
            "backward_data": lambda: back([True, False, False])[0],
            "backward_weight": lambda: back([False, True, False])[1]}


def conv_timing_rows(dev, repeat, direct):
    """[(shape label, direction, path, chosen, ms, GFLOP, cuDNN ms or None, max |diff| / max
    |cuDNN|)]: the kernel minicnn chooses (chosen=True) and, with ``direct``, the direct one."""
    import numpy as np

    from minicnn import nn, to_numpy
    from minicnn.layers import conv_tiled_cuda as tiled
    try:
        import torch
        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    if has_torch:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    rows = []
    rng = np.random.default_rng(0)
    for label, n, c, h, w, o, k, s, p in CONV_SHAPES:
        layer = nn.Conv2d(c, o, k, stride=s, padding=p)
        runs, out, host, paths, gflop = _conv_runs(dev, layer, (n, c, h, w), rng)
        cudnn = _cudnn_runs(torch, host, s, p) if has_torch else {}
        for direction in DIRECTIONS:
            ms = _median_ms(runs[direction], dev.synchronize, repeat)
            ref_ms = err = None
            if cudnn:
                ref = cudnn[direction]().cpu().numpy()
                got = to_numpy(out[direction])
                err = float(np.abs(got - ref).max() / np.abs(ref).max())
                ref_ms = _median_ms(cudnn[direction], torch.cuda.synchronize, repeat)
            rows.append((label, direction, paths[direction], True, ms, gflop, ref_ms, err))
            if direct and paths[direction] == "tiled":
                saved = tiled.MIN_CHANNELS
                tiled.MIN_CHANNELS = 1 << 40          # force the direct kernels
                try:
                    ms = _median_ms(runs[direction], dev.synchronize, max(2, repeat // 4))
                finally:
                    tiled.MIN_CHANNELS = saved
                rows.append((label, direction, "direct", False, ms, gflop, ref_ms, None))
    return rows


def print_conv_table(rows):
    """The timing table and the geometric mean of cuDNN ms / minicnn ms per direction (over the
    kernels minicnn chooses)."""
    import math
    print("\nconvolutions, float32 (cuDNN: TF32 off, benchmark mode); ratio = cuDNN ms / minicnn "
          "ms (target: geometric mean >= 0.6)")
    print(f"{'shape':<20} {'direction':<16} {'path':<7} {'ms':>9} {'TFLOP/s':>8} "
          f"{'cuDNN ms':>9} {'TFLOP/s':>8} {'ratio':>6} {'rel.err':>8}")
    ratios = {}
    for label, direction, path, chosen, ms, gflop, ref_ms, err in rows:
        line = f"{label:<20} {direction:<16} {path:<7} {ms:9.3f} {gflop / ms:8.2f}"
        if ref_ms:
            line += f" {ref_ms:9.3f} {gflop / ref_ms:8.2f} {ref_ms / ms:6.2f}"
            if chosen:
                ratios.setdefault(direction, []).append(ref_ms / ms)
        if err is not None:
            line += f" {err:8.1e}"
        print(line)
    for direction, values in ratios.items():
        mean = math.exp(sum(math.log(v) for v in values) / len(values))
        print(f"geometric mean ratio, {direction:<16} {mean:.2f} over {len(values)} shapes")
    return ratios


def tiled_cases():
    """Layers and input shapes that take the tiled kernels at the real settings, with partial
    tiles: the tiled parity check's cases (Linear: a GEMM on the same kernels)."""
    from minicnn import nn
    return [(nn.Conv2d(16, 32, 3, padding=1), (4, 16, 20, 20)),
            (nn.Conv2d(32, 72, 3, stride=2, padding=1), (16, 32, 17, 15)),
            (nn.Conv2d(24, 40, 1), (4, 24, 17, 19)),
            (nn.Conv2d(8, 136, (3, 5), padding="same", dilation=2), (3, 8, 21, 23)),
            (nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), (4, 32, 12, 12)),
            (nn.Conv1d(16, 32, 5, padding=2), (8, 16, 200)),
            (nn.Linear(300, 200), (130, 300))]


def tiled_parity(cases=None):
    """The tiled convolution kernels: parity with the CPU, bit-identical reruns, and the tiled
    kernels really launched (every direction and the bias sums)."""
    import numpy as np

    from minicnn import cuda_device as cd
    from minicnn import testing, to_numpy
    from minicnn.layers import conv_tiled_cuda as tiled
    cases = tiled_cases() if cases is None else cases
    previous, cd.RECORD = cd.RECORD, set()
    try:
        for layer, shape in cases:
            x = testing.tie_free(shape)
            testing.check_parity(layer, [x], device="cuda", atol=1e-4, rtol=1e-3)
            gpu = layer.to("cuda")
            gy = testing.tie_free(tuple(to_numpy(gpu(x)).shape), seed=1)
            runs = []
            for _ in range(2):
                y = to_numpy(gpu(x))
                runs.append([y, to_numpy(gpu.backward(gy))]
                            + [to_numpy(p.grad) for p in gpu.parameters()])
            for a, b in zip(*runs, strict=True):
                if not np.array_equal(a, b):
                    raise AssertionError(f"{layer!r}: reruns differ")
        names = {name.split("[")[0] for _, name, _ in cd.RECORD if "[" in name}
    finally:
        if previous is not None:
            previous |= cd.RECORD
        cd.RECORD = previous
    if not {"forward", "backward_data", "backward_weight", "channel_sum"} <= names:
        raise AssertionError(f"tiled kernels not all launched: {sorted(names)}")
    return f"{len(cases)} layers; {tiled.describe()}"


def main():
    args = parse()
    if args.sim:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        os.environ["MINICNN_TEST_REAL_GPU"] = "1"   # tests.cuda_sim: do not select the simulator
    os.environ.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import minicnn
    from minicnn import cuda_device as cd
    from minicnn import fusion, nn, optim, testing, to_numpy, zoo
    from minicnn.device import get_device
    dev = get_device("cuda")
    if args.sim:
        sys.setswitchinterval(5e-5)
        cd.set_launch(threads_per_block=32, max_blocks=8)
    steps = args.steps or (2 if args.sim else 50)
    batch = args.batch or (2 if args.sim else 64)
    rows = []   # (check, status, seconds, detail)
    if args.record:
        cd.RECORD = set()

    def check(name, fn):
        t0 = time.perf_counter()
        try:
            detail = fn() or ""
            status = "ok"
        except Exception as exc:   # report and go on: one table of every result
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}".splitlines()[0][:150]
            traceback.print_exc()
        rows.append((name, status, time.perf_counter() - t0, detail))

    print(f"device: {'numba CUDA simulator' if cd.SIMULATOR else 'GPU'}; numpy {np.__version__}; "
          f"row_stack shim {'installed' if cd.ROW_STACK_SHIM else 'not needed'}", flush=True)
    conv_rows = []

    def conv_table():
        conv_rows.extend(conv_timing_rows(dev, args.repeat, args.direct))
        worst = max((r[7] for r in conv_rows if r[7] is not None), default=None)
        if worst is not None and worst > 1e-3:
            raise AssertionError(f"a convolution differs from cuDNN by {worst:.1e} (relative)")
        return f"{len(conv_rows)} timings" + (f", largest difference from cuDNN {worst:.1e}"
                                               if worst is not None else "")

    if args.conv_only:
        if not args.sim:
            check("tiled conv parity and determinism (real tiles)", tiled_parity)
            check("conv timings", conv_table)
        if conv_rows:
            print_conv_table(conv_rows)
        width = max((len(r[0]) for r in rows), default=5)
        for name, status, seconds, detail in rows:
            print(f"{name:<{width}}  {status:<6}  {seconds:7.2f}  {detail}")
        return 1 if any(r[1] != "ok" for r in rows) else 0

    if not args.skip_layers:
        from tests.test_cuda_layers import CASES, GRAD, build
        for case_id, _, _ in CASES:
            def parity(case_id=case_id):
                module, inputs = build(case_id)
                testing.check_parity(module, inputs, device="cuda", atol=1e-5, rtol=1e-4)
            check(f"parity {case_id}", parity)
            if case_id in GRAD:
                def grad(case_id=case_id):
                    module, inputs = build(case_id)
                    testing.gradcheck(module.to("cuda"), inputs)
                check(f"gradcheck {case_id}", grad)

    def determinism():
        minicnn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(8 * 4 * 4, 5)).to("cuda")
        x = testing.tie_free((4, 3, 8, 8))
        gy = testing.tie_free((4, 5), seed=1)
        runs = []
        for _ in range(3):
            model(x)
            runs.append([to_numpy(model.backward(gy))] + [to_numpy(p.grad)
                                                          for p in model.parameters()])
        for other in runs[1:]:
            for a, b in zip(runs[0], other, strict=True):
                if not np.array_equal(a, b):
                    raise AssertionError("backward differs between identical runs")
        return "3 identical runs"
    check("determinism conv/pool/linear backward", determinism)

    timings = {}

    def lenet(device):
        minicnn.manual_seed(0)
        model = zoo.lenet5().to(device)
        loss = nn.CrossEntropyLoss()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        xd = dev.asarray(x) if device == "cuda" else x    # data moved once, as a user would
        values, times = [], []
        for _ in range(steps):
            t0 = time.perf_counter()
            values.append(loss(model(xd), y))
            model.backward(loss.backward(), input_grad=False)
            opt.step()
            if device == "cuda":
                dev.synchronize()
            times.append(time.perf_counter() - t0)
        return values, times

    def training():
        cpu_values, cpu_times = lenet("cpu")
        gpu_values, gpu_times = lenet("cuda")
        worst = max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(gpu_values, cpu_values,
                                                                   strict=True))
        if worst > 1e-3:
            raise AssertionError(f"losses differ from the CPU by {worst:.2e} (relative)")
        previous = fusion.set_enabled(False)     # what activation fusion saves
        try:
            plain_values, plain_times = lenet("cuda")
        finally:
            fusion.set_enabled(previous)
        if plain_values != gpu_values:
            raise AssertionError("fused and unfused GPU losses differ: fusion must not change "
                                 "a bit")
        timings["lenet5 step, minicnn cpu"] = np.median(cpu_times[1:] or cpu_times)
        timings["lenet5 step, minicnn cuda"] = np.median(gpu_times[1:] or gpu_times)
        timings["lenet5 step, minicnn cuda unfused"] = np.median(plain_times[1:] or plain_times)
        return (f"{steps} steps, batch {batch}: loss {gpu_values[0]:.4f} -> {gpu_values[-1]:.4f}, "
                f"max relative difference to CPU {worst:.1e}; unfused run identical")
    check("lenet5 training vs cpu", training)

    def torch_timing():
        import torch
        if not torch.cuda.is_available():
            return "torch has no CUDA here: skipped"
        torch.backends.cudnn.benchmark = True
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
            torch.nn.Linear(84, 10)).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = torch.randn(batch, 1, 28, 28, device="cuda")
        y = torch.randint(0, 10, (batch,), device="cuda")
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        timings["lenet5 step, torch cuda"] = np.median(times[1:] or times)
        return ""
    if not args.sim:
        check("torch reference timing", torch_timing)
        check("tiled conv parity and determinism (real tiles)", tiled_parity)
        check("conv timings", conv_table)

    if args.record:
        records = sorted(cd.RECORD)
        cd.RECORD = None
        Path(args.record).write_text(json.dumps([list(r) for r in records]))
        print(f"wrote {len(records)} kernel signatures to {args.record}")

    width = max(len(r[0]) for r in rows)
    print(f"\n{'check':<{width}}  status  seconds  detail")
    for name, status, seconds, detail in rows:
        print(f"{name:<{width}}  {status:<6}  {seconds:7.2f}  {detail}")
    if conv_rows:
        print_conv_table(conv_rows)
    if timings:
        print("\ntimings (median step, ms):")
        for name, seconds in timings.items():
            print(f"  {name:<32} {seconds * 1e3:9.2f}")
    failed = sum(r[1] != "ok" for r in rows)
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
