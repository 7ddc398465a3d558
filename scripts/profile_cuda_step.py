"""Where a GPU training step's time goes, on a real GPU: numba's own cost per launch, allocation
and a device-to-host read, then cProfile of LeNet-5 and ResNet-20 training steps (host time by
function), and each step's time with and without a synchronisation.

    PYTHONPATH=. python3 scripts/profile_cuda_step.py [--steps 30] [--top 25]
"""

import argparse
import cProfile
import io
import pstats
import time

import numpy as np

from minicnn import cuda_device as cd
from minicnn.cuda_device import cuda


def per_call(fn, repeat, sync):
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeat * 1e6


def numba_costs():
    @cuda.jit
    def one(a):
        i = cuda.grid(1)
        if i < a.size:
            a[i] += 1.0

    @cuda.jit
    def eight(a, b, c, d, e, f, g, h):
        i = cuda.grid(1)
        if i < a.size:
            a[i] += b[i] + c[i] + d[i] + e[i] + f[i] + g[i] + h[i]

    arrays = [cuda.device_array(1024, np.float32) for _ in range(8)]
    for a in arrays:
        a[:] = 0
    sync = cuda.synchronize
    rows = {
        "numba launch, 1 array": per_call(lambda: one[8, 128](arrays[0]), 2000, sync),
        "numba launch, 8 arrays": per_call(lambda: eight[8, 128](*arrays), 2000, sync),
        "minicnn launch, 1 array": per_call(lambda: cd.launch(one, 1024, arrays[0]), 2000, sync),
        "minicnn launch, 8 arrays": per_call(lambda: cd.launch(eight, 1024, *arrays), 2000, sync),
        "device_array(1024) alloc+free": per_call(
            lambda: cuda.device_array(1024, np.float32), 2000, sync),
        "copy_to_host of 1 float (sync)": per_call(
            lambda: arrays[0][:1].copy_to_host(), 500, sync),
        "to_device of 64x784 floats": per_call(
            lambda: cuda.to_device(np.ones((64, 784), np.float32)), 500, sync),
    }
    for name, us in rows.items():
        print(f"  {name:<36} {us:8.1f} us")


def model_step(name, batch):
    import minicnn
    from minicnn import nn, optim, zoo
    minicnn.manual_seed(0)
    model = (zoo.lenet5() if name == "lenet5" else zoo.resnet20()).to("cuda")
    shape = (batch, 1, 28, 28) if name == "lenet5" else (batch, 3, 32, 32)
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    from minicnn.device import get_device
    dev = get_device("cuda")
    x = dev.asarray(rng.standard_normal(shape).astype(np.float32))
    y = rng.integers(0, 10, batch)

    def step():
        loss.compute(model(x), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()
    return step, dev


def profile(name, batch, steps, top):
    step, dev = model_step(name, batch)
    for _ in range(3):
        step()
    dev.synchronize()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        dev.synchronize()
        times.append(time.perf_counter() - t0)
    from minicnn import cuda_launch
    print(f"\n{name}, batch {batch}: median step {np.median(times) * 1e3:.2f} ms "
          f"(min {np.min(times) * 1e3:.2f}); launches so far {cuda_launch.launches}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    dev.synchronize()
    profiler.disable()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(top)
        text = out.getvalue()
        print(f"-- by {key}, {steps} steps")
        print(text[text.find("   ncalls"):])


def per_kernel(name, batch, steps, top):
    """GPU time per kernel: every launch synchronised before and after (so the step is slower
    than unprofiled, but each kernel's own time is its share)."""
    step, dev = model_step(name, batch)
    step()
    dev.synchronize()
    totals, counts = {}, {}
    original = cd._run

    def timed(kernel, key, args):
        cuda.synchronize()
        t0 = time.perf_counter()
        original(kernel, key, args)
        cuda.synchronize()
        fn = getattr(kernel, "py_func", None) or kernel
        label = f"{fn.__module__.rsplit('.', 1)[-1]}.{getattr(fn, '__qualname__', fn)} {key[1:]}"
        totals[label] = totals.get(label, 0.0) + time.perf_counter() - t0
        counts[label] = counts.get(label, 0) + 1
    cd._run = timed
    try:
        for _ in range(steps):
            step()
    finally:
        cd._run = original
    total = sum(totals.values())
    print(f"\n{name}, batch {batch}: per-kernel synchronised time, {total / steps * 1e3:.2f} ms "
          f"per step in {sum(counts.values()) // steps} launches")
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {seconds / steps * 1e3:8.3f} ms  x{counts[label] // steps:<3} {label}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--per-kernel", action="store_true",
                        help="GPU time per kernel (LeNet-5 batch 1024, ResNet-20 batch 256)")
    args = parser.parse_args()
    from minicnn import cuda_launch
    print(f"numba's own costs (minicnn's bare launches: {cuda_launch.available()}):")
    numba_costs()
    if args.per_kernel:
        per_kernel("lenet5", 1024, 5, args.top)
        per_kernel("resnet20", 256, 3, args.top)
        return
    profile("lenet5", 64, args.steps, args.top)
    profile("resnet20", 128, args.steps, args.top)


if __name__ == "__main__":
    main()
