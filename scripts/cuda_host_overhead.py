"""minicnn's own host work per GPU training step, with the kernel launches themselves left out.

Small networks on a GPU are bound by host work: every launch costs numba tens of microseconds
and minicnn's executor, layers and optimiser add their own Python around it. This script counts
the launches of one training step (forward, cross-entropy, backward, SGD with momentum) and times
the step with every launch replaced by a no-op, so what remains is minicnn's share; with
``--compare-fusion`` it also shows what activation fusion saves in launches. It needs no GPU:
without one it runs on numba's CUDA simulator (whose arrays cost about what numba's do to wrap).

    python scripts/cuda_host_overhead.py                 # LeNet-5 and ResNet-20, batch 16
    python scripts/cuda_host_overhead.py --compare-fusion --steps 200
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "resnet20"],
                        choices=["lenet5", "resnet20"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100, help="timed steps (the minimum counts)")
    parser.add_argument("--compare-fusion", action="store_true",
                        help="also run with activation fusion off")
    return parser.parse_args()


class _NoLaunch(dict):
    """Stands in for a launcher cache: every configured kernel it hands out only counts."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def get(self, key, default=None):
        return self.counter


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1


def _gpu_present():
    """Whether numba finds a GPU, asked in a child process: numba reads the simulator switch
    once, when numba.cuda is first imported."""
    probe = "from numba import cuda; print(cuda.is_available())"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return result.stdout.strip() == "True"


def main():
    args = parse()
    if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _gpu_present():
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"   # read when numba.cuda is first imported
    sys.path.insert(0, str(ROOT))

    import minicnn
    from minicnn import fusion, zoo
    from minicnn.device import get_device
    dev = get_device("cuda")
    from minicnn import cuda_device
    minicnn.get_registry().enable_device("cuda")   # kernel modules imported before patching
    counter = Counter()
    cuda_device._launchers = _NoLaunch(counter)
    from minicnn import losses_cuda
    losses_cuda._flag_set = lambda ws: False   # no kernel runs: device flags hold garbage
    where = "numba's CUDA simulator" if cuda_device.SIMULATOR else "a real GPU (kernels not run)"
    print(f"minicnn host work per training step on {where}, batch {args.batch}, "
          f"minimum of {args.steps} steps")
    shapes = {"lenet5": (1, 28, 28), "resnet20": (3, 32, 32)}
    settings = [True, False] if args.compare_fusion else [fusion.enabled()]
    for name in args.models:
        for fused in settings:
            previous = fusion.set_enabled(fused)
            try:
                step = _training_step(getattr(zoo, name)(), dev, (args.batch,) + shapes[name])
                step()                                  # plans and buffers
                counter.calls = 0
                step()
                launches = counter.calls
                times = []
                for _ in range(args.steps):
                    start = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - start)
            finally:
                fusion.set_enabled(previous)
            best = min(times) * 1e6
            print(f"  {name:<9} fusion {'on ' if fused else 'off'}  {launches:4d} launches  "
                  f"{best:8.0f} us/step  {best / launches:5.1f} us/launch")


def _training_step(model, dev, shape):
    """A function running one training step of ``model`` on the GPU (data already there)."""
    import numpy as np

    from minicnn import nn, optim
    model = model.to("cuda")
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = dev.asarray(np.zeros(shape, np.float32))
    y = dev.asarray(np.arange(shape[0]) % 10)

    def step():
        loss.compute(model(x), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()
    return step


if __name__ == "__main__":
    main()
