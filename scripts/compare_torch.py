"""Side by side with PyTorch on this machine: the same layers and models, timed in separate
processes (so neither framework's idle threads slow the other), outputs checked for agreement.

    python scripts/compare_torch.py                 # everything, CPU, 2 threads
    python scripts/compare_torch.py --only lenet    # cases whose name contains "lenet"

PyTorch is an optional dependency of this script only (``pip install torch``). Each row prints
minicnn's and PyTorch's best time, the speed ratio (PyTorch time / minicnn time: above 1 means
minicnn is faster), minicnn's GFLOP/s, its fraction of the machine's measured matrix-product peak
(``--peak``, 234 GFLOP/s on the 2-core machine where this was written), and the largest relative
difference between the two outputs.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

THREADS = 2


def cases():
    """(name, kind, spec); kinds: conv (fwd / fwd+bwd of one layer), pool, train (images/s)."""
    return [
        ("conv LeNet conv1 64x1x28x28 -> 20 5x5", "conv", dict(n=64, c=1, hw=28, o=20, k=5, p=0)),
        ("conv LeNet conv2 64x20x12x12 -> 50 5x5", "conv", dict(n=64, c=20, hw=12, o=50, k=5,
                                                                p=0)),
        ("conv 32x128x28x28 -> 128 3x3 pad 1", "conv", dict(n=32, c=128, hw=28, o=128, k=3, p=1)),
        ("conv 1x1 32x256x14x14 -> 64", "conv", dict(n=32, c=256, hw=14, o=64, k=1, p=0)),
        ("maxpool 2x2 32x64x56x56", "pool", dict(n=32, c=64, hw=56)),
        ("train LeNet-5 batch 64", "train", dict(model="lenet5", n=64, c=1, hw=28)),
        ("train ResNet-20 batch 128", "train", dict(model="resnet20", n=128, c=3, hw=32)),
    ]


def best(fn, repeat):
    fn()
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def conv_flops(spec):
    out = spec["hw"] + 2 * spec["p"] - spec["k"] + 1
    return 2.0 * spec["n"] * spec["o"] * out * out * spec["c"] * spec["k"] ** 2


def inputs(spec, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec["n"], spec["c"], spec["hw"], spec["hw"])).astype(np.float32)
    return x, rng


# -- minicnn side -------------------------------------------------------------------------------

def run_minicnn(name, kind, spec, repeat, out):
    import minicnn
    from minicnn import nn, optim
    x, rng = inputs(spec)
    if kind == "conv":
        layer = nn.Conv2d(spec["c"], spec["o"], spec["k"], padding=spec["p"])
        layer.weight.data[...] = rng.standard_normal(layer.weight.shape) * 0.05
        y = layer(x)
        gy = np.ones_like(y)
        fwd = best(lambda: layer(x), repeat)
        both = best(lambda: (layer(x), layer.backward(gy)), repeat)
        np.savez(out, y=y, w=layer.weight.data, b=layer.bias.data)
        return {"forward": fwd, "forward_backward": both}
    if kind == "pool":
        layer = nn.MaxPool2d(2)
        y = layer(x)
        gy = np.ones_like(y)
        fwd = best(lambda: layer(x), repeat)
        both = best(lambda: (layer(x), layer.backward(gy)), repeat)
        np.savez(out, y=y)
        return {"forward": fwd, "forward_backward": both}
    minicnn.manual_seed(0)
    model = minicnn.zoo.MODELS[spec["model"]](num_classes=10, in_channels=spec["c"])
    labels = rng.integers(0, 10, spec["n"])
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.eval()
    y = model(x)
    model.train()
    state = model.state_dict()

    def step():
        value = loss(model(x), labels)
        model.backward(loss.backward(), input_grad=False)
        opt.step()
        return value

    seconds = best(step, repeat)
    np.savez(out, y=y, **{f"state::{k}": v for k, v in state.items()})
    return {"step": seconds, "images_per_s": spec["n"] / seconds}


# -- PyTorch side -------------------------------------------------------------------------------

def torch_model(name, in_channels):
    import torch.nn as tnn
    if name == "lenet5":
        return tnn.Sequential(
            tnn.Conv2d(in_channels, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
            tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))
    if name == "resnet20":
        return TorchResNet20(in_channels)
    raise ValueError(name)


def TorchResNet20(in_channels):  # noqa: N802 - builds a torch module
    import torch.nn as tnn

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(cout))

        def forward(self, x):
            h = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            return (h + (x if self.downsample is None else self.downsample(x))).relu()

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            stages, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                blocks = [Block(cin, cout, stride)] + [Block(cout, cout, 1) for _ in range(2)]
                stages.append(tnn.Sequential(*blocks))
                cin = cout
            self.layer1, self.layer2, self.layer3 = stages
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            x = self.bn1(self.conv1(x)).relu()
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean((2, 3)))

    return Net()


def run_torch(name, kind, spec, repeat, out, reference):
    import torch
    torch.set_num_threads(THREADS)
    torch.backends.mkldnn.enabled = True
    ref = np.load(reference)
    x_np, rng = inputs(spec)
    x = torch.from_numpy(x_np)
    if kind == "conv":
        layer = torch.nn.Conv2d(spec["c"], spec["o"], spec["k"], padding=spec["p"])
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(ref["w"]))
            layer.bias.copy_(torch.from_numpy(ref["b"]))
        xg = x.clone().requires_grad_(True)
        with torch.no_grad():
            y = layer(x)
        gy = torch.ones_like(y)
        with torch.no_grad():
            fwd = best(lambda: layer(x), repeat)
        both = best(lambda: layer(xg).backward(gy), repeat)
        np.savez(out, y=y.numpy())
        return {"forward": fwd, "forward_backward": both}
    if kind == "pool":
        layer = torch.nn.MaxPool2d(2)
        xg = x.clone().requires_grad_(True)
        with torch.no_grad():
            y = layer(x)
            fwd = best(lambda: layer(x), repeat)
        gy = torch.ones_like(y)
        both = best(lambda: layer(xg).backward(gy), repeat)
        np.savez(out, y=y.numpy())
        return {"forward": fwd, "forward_backward": both}
    model = torch_model(spec["model"], spec["c"])
    state = {k[len("state::"):]: v for k, v in ref.items() if k.startswith("state::")}
    theirs = model.state_dict()
    mapped = dict(zip(theirs, state.values(), strict=True)) if spec["model"] == "lenet5" \
        else state
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in mapped.items()})
    model.eval()
    with torch.no_grad():
        y = model(x)
    model.train()
    labels = torch.from_numpy(rng.integers(0, 10, spec["n"]))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        value = loss(model(x), labels)
        value.backward()
        opt.step()

    seconds = best(step, repeat)
    np.savez(out, y=y.numpy())
    return {"step": seconds, "images_per_s": spec["n"] / seconds}


# -- driver -------------------------------------------------------------------------------------

def side_main(args):
    name, kind, spec = next(c for c in cases() if c[0] == args.case)
    if args.side == "minicnn":
        result = run_minicnn(name, kind, spec, args.repeat, args.out)
    else:
        result = run_torch(name, kind, spec, args.repeat, args.out, args.reference)
    print(json.dumps(result))


def run_side(side, case, repeat, workdir, reference=None):
    out = os.path.join(workdir, f"{side}.npz")
    cmd = [sys.executable, __file__, "--side", side, "--case", case, "--repeat", str(repeat),
           "--out", out] + (["--reference", reference] if reference else [])
    env = dict(os.environ, NUMBA_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed on {case}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--peak", type=float, default=234.0, help="machine GFLOP/s peak")
    parser.add_argument("--side", choices=("minicnn", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return side_main(args)
    print(f"{'case':<42} {'what':<17} {'minicnn':>10} {'PyTorch':>10} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'of peak':>7} {'max rel diff':>12}")
    for name, kind, spec in cases():
        if args.only not in name:
            continue
        with tempfile.TemporaryDirectory() as workdir:
            mine, mine_out = run_side("minicnn", name, args.repeat, workdir)
            theirs, theirs_out = run_side("torch", name, args.repeat, workdir, mine_out)
            a, b = np.load(mine_out)["y"], np.load(theirs_out)["y"]
            diff = float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))
        for what in ("forward", "forward_backward", "step"):
            if what not in mine:
                continue
            ratio = theirs[what] / mine[what]
            flops = conv_flops(spec) * (3 if what == "forward_backward" else 1) \
                if kind == "conv" else None
            gflops = f"{flops / mine[what] / 1e9:8.1f}" if flops else f"{'':>8}"
            peak = f"{flops / mine[what] / 1e9 / args.peak:7.0%}" if flops else f"{'':>7}"
            unit = 1e3
            label = what if what != "step" else (f"step ({mine['images_per_s']:,.0f} vs "
                                                 f"{theirs['images_per_s']:,.0f} img/s)")
            print(f"{name:<42} {label:<17} {mine[what] * unit:8.2f}ms {theirs[what] * unit:8.2f}ms"
                  f" {ratio:6.2f} {gflops} {peak} {diff:12.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
