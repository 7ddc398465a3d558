"""Check minicnn's CUDA backend on a real GPU: every layer's parity with the CPU kernels and a
float64 gradcheck on the device, determinism, a short LeNet-5 training against the CPU, and a
timing table (PyTorch beside it when importable with CUDA).

    python scripts/gpu_check.py                 # real GPU (needs numba-cuda and a driver)
    python scripts/gpu_check.py --sim           # numba's CUDA simulator, tiny shapes (slow)
    python scripts/gpu_check.py --record sigs.json   # also write the launched kernel signatures
                                                     # (then: python scripts/cuda_ptx.py sigs.json)

The layer cases are the ones of ``tests/test_cuda_layers.py``. Prints one summary table; exit
status 1 when any check failed.
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
    return parser.parse_args()


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
    from minicnn import nn, optim, testing, to_numpy, zoo
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
        timings["lenet5 step, minicnn cpu"] = np.median(cpu_times[1:] or cpu_times)
        timings["lenet5 step, minicnn cuda"] = np.median(gpu_times[1:] or gpu_times)
        return (f"{steps} steps, batch {batch}: loss {gpu_values[0]:.4f} -> {gpu_values[-1]:.4f}, "
                f"max relative difference to CPU {worst:.1e}")
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

    if args.record:
        records = sorted(cd.RECORD)
        cd.RECORD = None
        Path(args.record).write_text(json.dumps([list(r) for r in records]))
        print(f"wrote {len(records)} kernel signatures to {args.record}")

    width = max(len(r[0]) for r in rows)
    print(f"\n{'check':<{width}}  status  seconds  detail")
    for name, status, seconds, detail in rows:
        print(f"{name:<{width}}  {status:<6}  {seconds:7.2f}  {detail}")
    if timings:
        print("\ntimings (median step, ms):")
        for name, seconds in timings.items():
            print(f"  {name:<32} {seconds * 1e3:9.2f}")
    failed = sum(r[1] != "ok" for r in rows)
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
