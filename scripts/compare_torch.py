"""Side by side with PyTorch on this machine: the same layers and models, timed in separate
processes (so neither framework's idle threads slow the other), outputs checked for agreement.

    python scripts/compare_torch.py                 # everything, CPU, 2 threads
    python scripts/compare_torch.py --only lenet    # cases whose name contains "lenet"
    python scripts/compare_torch.py --device cuda [--cpu-baseline]   # the GPU against cuDNN
    NUMBA_ENABLE_CUDASIM=1 python scripts/compare_torch.py --device cuda --tiny   # smoke test

PyTorch is an optional dependency of this script only (``pip install torch``). Each row prints
minicnn's and PyTorch's best time, the speed ratio (PyTorch time / minicnn time: above 1 means
minicnn is faster), minicnn's GFLOP/s, its fraction of the machine's measured matrix-product peak
(``--peak``, 234 GFLOP/s on the 2-core machine where this was written), and the largest relative
difference between the two outputs.

``--device cuda`` runs the same layer cases, the GPU shapes of the performance issue (3x3
convolutions of ResNet stages at batch 256, a 1x1 bottleneck, LeNet's conv1 at batch 1024) and
whole training steps (LeNet-5 at batch 256 and 1024, ResNet-20 on CIFAR at batch 256) on
minicnn's cuda device (``model.to("cuda")``, inputs copied to the device once, before the timed
loop) against PyTorch on CUDA with TF32 off (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32`` False; cuDNN in benchmark mode, the fastest algorithm it
finds). Every timed call is followed by a device synchronisation and preceded by two untimed ones
(compilation, cuDNN's algorithm search); the best of ``--repeat`` is kept. The two frameworks run
one after the other, each in its own process (all cases in one process, so each CUDA kernel is
compiled once). Below the table: the geometric mean of the convolution ratios on the issue's
shapes (forward and forward+backward; target >= 0.6) and their minimum (target >= 0.33), the
training-step ratios (targets: ResNet-20 >= 0.5, LeNet-5 >= 1.0), the largest output difference
and, with ``--cpu-baseline``, minicnn's ResNet-20 training speed-up on the GPU over its own CPU
kernels (``--cpu-threads``, 2 by default as on the reference machine; target: 60x).

``--tiny`` shrinks every case to a few elements and times one run after one warm-up: a smoke test
of the cuda path that also runs on numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), with
PyTorch on the CPU as the reference when it has no CUDA. Its timings mean nothing.
"""

import argparse
import json
import os
import re
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


# -- the GPU (--device cuda) ----------------------------------------------------------------------

# target values of the performance issue (ratio = PyTorch time / minicnn time)
CONV_GEOMEAN_TARGET, CONV_MIN_TARGET = 0.6, 0.33
TRAIN_TARGETS = {"lenet5": 1.0, "resnet20": 0.5}
SPEEDUP_TARGET = 60.0


def cuda_cases(tiny=False):
    """The layer cases of ``cases()`` plus the issue's GPU shapes and training steps; the issue's
    convolutions carry ``target=True`` (their ratios are the ones held against the targets).
    ``tiny``: every case shrunk to a few elements (names say so), duplicates dropped."""
    full = [c for c in cases() if c[1] != "train"] + [
        ("conv 3x3 256x64x56x56 -> 64", "conv", dict(n=256, c=64, hw=56, o=64, k=3, p=1,
                                                       target=True)),
        ("conv 3x3 256x128x28x28 -> 128", "conv", dict(n=256, c=128, hw=28, o=128, k=3, p=1,
                                                         target=True)),
        ("conv 3x3 256x256x14x14 -> 256", "conv", dict(n=256, c=256, hw=14, o=256, k=3, p=1,
                                                         target=True)),
        ("conv 1x1 256x256x14x14 -> 64", "conv", dict(n=256, c=256, hw=14, o=64, k=1, p=0,
                                                        target=True)),
        ("conv LeNet conv1 1024x1x28x28 -> 20 5x5", "conv", dict(n=1024, c=1, hw=28, o=20, k=5,
                                                                   p=0, target=True)),
        ("train LeNet-5 batch 256", "train", dict(model="lenet5", n=256, c=1, hw=28)),
        ("train LeNet-5 batch 1024", "train", dict(model="lenet5", n=1024, c=1, hw=28)),
        ("train ResNet-20 batch 256", "train", dict(model="resnet20", n=256, c=3, hw=32)),
    ]
    if not tiny:
        return full
    small = {}
    for name, kind, spec in full:
        spec = dict(spec, n=2)
        if kind == "conv":
            spec.update(c=min(spec["c"], 4), o=min(spec["o"], 4), hw=max(spec["k"], 8))
            name = (f"tiny conv {spec['k']}x{spec['k']} 2x{spec['c']}x{spec['hw']}x{spec['hw']}"
                    f" -> {spec['o']}")
        elif kind == "pool":
            spec.update(c=4, hw=8)
            name = "tiny maxpool 2x2 2x4x8x8"
        else:
            spec.update(hw=spec["hw"] if spec["model"] == "lenet5" else 8)
            name = f"tiny {name.split(' batch')[0]} batch 2 ({spec['hw']}x{spec['hw']})"
        if name in small:
            spec["target"] = spec.get("target") or small[name][2].get("target", False)
        small[name] = (name, kind, spec)
    return list(small.values())


def grad_output(shape):
    """The output gradient of the conv/pool cases on the GPU (random: never time on ones)."""
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def timed(fn, sync, repeat, warmup):
    """Best time of ``repeat`` synchronised calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def minicnn_cuda_case(kind, spec, repeat, warmup, out):
    """One case on minicnn's cuda device; writes the outputs (and weights) to ``out``."""
    import minicnn
    from minicnn import nn, optim, to_numpy
    from minicnn.device import get_device
    dev = get_device("cuda")
    sync = dev.synchronize
    x, rng = inputs(spec)
    xd = dev.asarray(x)                       # on the device once, outside every timing
    if kind in ("conv", "pool"):
        if kind == "conv":
            layer = nn.Conv2d(spec["c"], spec["o"], spec["k"], padding=spec["p"])
            layer.weight.data[...] = rng.standard_normal(layer.weight.shape) * 0.05
            saved = dict(w=layer.weight.data.copy(), b=layer.bias.data.copy())
        else:
            layer, saved = nn.MaxPool2d(2), {}
        layer.to("cuda")
        y = to_numpy(layer(xd))
        gyd = dev.asarray(grad_output(y.shape))
        fwd = timed(lambda: layer(xd), sync, repeat, warmup)
        both = timed(lambda: (layer(xd), layer.backward(gyd)), sync, repeat, warmup)
        np.savez(out, y=y, **saved)
        return {"forward": fwd, "forward_backward": both}
    minicnn.manual_seed(0)
    model = minicnn.zoo.MODELS[spec["model"]](num_classes=10, in_channels=spec["c"])
    labels = rng.integers(0, 10, spec["n"])
    model.to("cuda")
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    labels_d = dev.asarray(labels)
    model.eval()
    y = to_numpy(model(xd))
    model.train()
    state = model.state_dict()

    def step():
        loss.compute(model(xd), labels_d)   # no read back: the PyTorch step has no .item()
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    seconds = timed(step, sync, repeat, warmup)
    np.savez(out, y=y, **{f"state::{k}": v for k, v in state.items()})
    return {"step": seconds, "images_per_s": spec["n"] / seconds}


def torch_cuda_case(kind, spec, repeat, warmup, out, reference, device):
    """The same case in PyTorch on ``device`` ("cuda"; "cpu" only with --tiny)."""
    import torch
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ref = np.load(reference)
    x_np, rng = inputs(spec)
    x = torch.from_numpy(x_np).to(device)
    if kind in ("conv", "pool"):
        if kind == "conv":
            layer = torch.nn.Conv2d(spec["c"], spec["o"], spec["k"], padding=spec["p"])
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(ref["w"]))
                layer.bias.copy_(torch.from_numpy(ref["b"]))
        else:
            layer = torch.nn.MaxPool2d(2)
        layer.to(device)
        with torch.no_grad():
            y = layer(x)
            fwd = timed(lambda: layer(x), sync, repeat, warmup)
        xg = x.clone().requires_grad_(True)
        gy = torch.from_numpy(grad_output(tuple(y.shape))).to(device)

        def both():
            layer.zero_grad(set_to_none=True)
            xg.grad = None
            layer(xg).backward(gy)

        seconds = timed(both, sync, repeat, warmup)
        np.savez(out, y=y.cpu().numpy())
        return {"forward": fwd, "forward_backward": seconds}
    model = torch_model(spec["model"], spec["c"])
    state = {k[len("state::"):]: v for k, v in ref.items() if k.startswith("state::")}
    theirs = model.state_dict()
    mapped = dict(zip(theirs, state.values(), strict=True)) if spec["model"] == "lenet5" \
        else state
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in mapped.items()})
    model.to(device).eval()
    with torch.no_grad():
        y = model(x)
    model.train()
    labels = torch.from_numpy(rng.integers(0, 10, spec["n"])).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model(x), labels).backward()
        opt.step()

    seconds = timed(step, sync, repeat, warmup)
    np.savez(out, y=y.cpu().numpy())
    return {"step": seconds, "images_per_s": spec["n"] / seconds}


def case_file(workdir, side, name):
    """Where one side writes one case's outputs."""
    return os.path.join(workdir, f"{side}-{re.sub(r'[^A-Za-z0-9]+', '_', name)}.npz")


def cuda_side_main(args):
    """One framework, every requested case in this process: a JSON line per case on stdout
    (``RESULT {...}``), progress on stderr; a failing case is reported and the rest go on."""
    import gc
    import traceback
    known = {c[0]: c for c in cuda_cases(args.tiny)}
    warmup = 1 if args.tiny else 2
    if args.side == "minicnn":
        from minicnn import cuda_device
        from minicnn.device import get_device
        get_device("cuda")                   # a clear error now when there is no CUDA at all
        if cuda_device.SIMULATOR:
            sys.setswitchinterval(5e-5)
            cuda_device.set_launch(threads_per_block=8, max_blocks=4)
        where = "numba CUDA simulator" if cuda_device.SIMULATOR else "GPU"
    else:
        import torch
        if torch.cuda.is_available():
            device = "cuda"
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
            where = f"{torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}"
        elif args.tiny:
            device = "cpu"
            torch.set_num_threads(THREADS)
            where = f"CPU ({THREADS} threads): PyTorch has no CUDA here"
        else:
            raise SystemExit("compare_torch: PyTorch has no CUDA on this machine (a CPU-only "
                             "build?); --device cuda needs it, except with --tiny")
        where = f"PyTorch {torch.__version__} on {where}"
    print(f"RESULT {json.dumps({'where': where})}", flush=True)
    for name in args.case:
        _, kind, spec = known[name]
        out = case_file(args.out, args.side, name)
        start = time.perf_counter()
        try:
            if args.side == "minicnn":
                result = minicnn_cuda_case(kind, spec, args.repeat, warmup, out)
            else:
                reference = case_file(args.out, "minicnn", name)
                result = torch_cuda_case(kind, spec, args.repeat, warmup, out, reference, device)
        except Exception as exc:   # noqa: BLE001 - report it in the table, go on with the rest
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:120]}
        gc.collect()
        print(f"  {args.side}: {name} ({time.perf_counter() - start:.1f} s)", file=sys.stderr,
              flush=True)
        print(f"RESULT {json.dumps(dict(result, case=name))}", flush=True)
    return 0


def run_cuda_side(side, names, args, workdir):
    """Run one framework's process over ``names``; {case: result} and where it ran."""
    cmd = [sys.executable, __file__, "--device", "cuda", "--side", side, "--repeat",
           str(args.repeat), "--out", workdir] + (["--tiny"] if args.tiny else [])
    for name in names:
        cmd += ["--case", name]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    env.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")   # built-in layers only
    print(f"running the {side} side ...", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)
    lines = [json.loads(line[len("RESULT "):]) for line in done.stdout.splitlines()
             if line.startswith("RESULT ")]
    where = lines[0]["where"] if lines and "where" in lines[0] else "?"
    results = {r["case"]: r for r in lines if "case" in r}
    for name in names:
        results.setdefault(name, {"error": f"{side} process exited with {done.returncode} "
                                           f"(its messages are above)"})
    return results, where


def output_difference(workdir, name):
    """(max |a - b| / max |b|, max |a - b|) of one case's outputs, or None."""
    try:
        a = np.load(case_file(workdir, "minicnn", name))["y"]
        b = np.load(case_file(workdir, "torch", name))["y"]
    except (OSError, KeyError):
        return None
    err = float(np.max(np.abs(a.astype(np.float64) - b)))
    return err / (float(np.max(np.abs(b))) + 1e-30), err


def geometric_mean(values):
    return float(np.exp(np.mean(np.log(values))))


def verdict(value, target):
    return "met" if value >= target else "NOT met"


def cuda_main(args):
    """--device cuda: both sides over every selected case, then the table and the targets."""
    if args.tiny:
        args.repeat = 1
    selected = [c for c in cuda_cases(args.tiny) if args.only in c[0]]
    if not selected:
        print(f"no case name contains {args.only!r}")
        return 1
    names = [c[0] for c in selected]
    rows, conv_ratios, train_rows, diffs, failed = [], [], [], [], 0
    with tempfile.TemporaryDirectory() as workdir:
        mine, mine_where = run_cuda_side("minicnn", names, args, workdir)
        ran = [name for name in names if "error" not in mine[name]]   # torch needs the weights
        theirs, theirs_where = run_cuda_side("torch", ran, args, workdir) if ran else ({}, "?")
        for name, kind, spec in selected:
            theirs.setdefault(name, {"error": "not run (the minicnn side failed)"})
            a, b = mine[name], theirs[name]
            if "error" in a or "error" in b:
                failed += 1
                rows.append(f"{name:<42} ERROR minicnn: {a.get('error', 'ok')}; "
                            f"PyTorch: {b.get('error', 'ok')}")
                continue
            diff = output_difference(workdir, name)
            if diff is not None:
                diffs.append((diff, name))
            for what in ("forward", "forward_backward", "step"):
                if what not in a:
                    continue
                ratio = b[what] / a[what]
                tflops = ""
                if kind == "conv":
                    flops = conv_flops(spec) * (3 if what == "forward_backward" else 1)
                    tflops = f"{flops / a[what] / 1e12:8.2f} {flops / b[what] / 1e12:8.2f}"
                    if spec.get("target"):
                        conv_ratios.append((ratio, f"{name}, {what}"))
                label = what
                if what == "step":
                    label = (f"step ({a['images_per_s']:,.0f} vs {b['images_per_s']:,.0f} "
                             f"img/s)")
                    train_rows.append((name, spec["model"], ratio, a["images_per_s"]))
                rows.append(f"{name:<42} {label:<31} {a[what] * 1e3:9.3f}ms "
                            f"{b[what] * 1e3:9.3f}ms {ratio:6.2f} {tflops or '':>17} "
                            f"{'' if diff is None else f'{diff[0]:12.2e}':>12}")
    print(f"minicnn: {mine_where}; {theirs_where}; TF32 off; best of {args.repeat} after "
          f"{1 if args.tiny else 2} warm-up calls, synchronised" + (
              "\n--tiny: toy shapes, one run: the times and targets below mean nothing"
              if args.tiny else ""))
    print(f"{'case':<42} {'what':<31} {'minicnn':>11} {'PyTorch':>11} {'ratio':>6} "
          f"{'TFLOP/s':>8} {'(torch)':>8} {'max rel diff':>12}")
    for row in rows:
        print(row)
    print("\nratio = PyTorch time / minicnn time (above 1: minicnn is faster)")
    if conv_ratios:
        mean = geometric_mean([r for r, _ in conv_ratios])
        low, where = min(conv_ratios)
        print(f"convolutions (the issue's shapes, forward and forward+backward, "
              f"{len(conv_ratios)} ratios): geometric mean {mean:.2f} (target >= "
              f"{CONV_GEOMEAN_TARGET}: {verdict(mean, CONV_GEOMEAN_TARGET)}); minimum {low:.2f} "
              f"at {where} (target >= {CONV_MIN_TARGET}: {verdict(low, CONV_MIN_TARGET)})")
    for name, model, ratio, _ in train_rows:
        target = TRAIN_TARGETS[model]
        print(f"{name}: ratio {ratio:.2f} (target >= {target}: {verdict(ratio, target)})")
    if diffs:
        (rel, err), name = max(diffs)
        print(f"largest output difference: {err:.2e} absolute, {rel:.2e} relative to max "
              f"|PyTorch| ({name})")
    if args.cpu_baseline and not cpu_baseline(args, mine):
        failed += 1
    if failed:
        print(f"{failed} case(s) failed")
    return 1 if failed else 0


def cpu_baseline(args, mine):
    """minicnn's ResNet-20 training step on its CPU kernels (a process of its own, the CPU
    mode's code) against the GPU side's: prints the speed-up; False when it could not."""
    name, _, spec = next(c for c in cuda_cases(args.tiny)
                         if c[1] == "train" and c[2]["model"] == "resnet20")
    gpu = mine.get(name, {}).get("images_per_s")
    if gpu is None:
        print(f"--cpu-baseline: the GPU side did not time {name!r} (see --only)")
        return False
    print(f"running the CPU baseline ({args.cpu_threads} threads) ...", file=sys.stderr,
          flush=True)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            cpu, _ = run_side("minicnn", name, 1 if args.tiny else min(args.repeat, 3),
                              workdir, threads=args.cpu_threads, tiny=args.tiny)
    except RuntimeError as exc:
        print(f"--cpu-baseline failed: {exc}")
        return False
    cpu = cpu["images_per_s"]
    print(f"minicnn ResNet-20 training (batch {spec['n']}), GPU vs CPU ({args.cpu_threads} "
          f"threads): {gpu:,.1f} vs {cpu:,.1f} img/s = {gpu / cpu:.1f}x (target >= "
          f"{SPEEDUP_TARGET:.0f}x: {verdict(gpu / cpu, SPEEDUP_TARGET)})")
    return True


# -- driver -------------------------------------------------------------------------------------

def side_main(args):
    if args.device == "cuda":
        return cuda_side_main(args)
    name, kind, spec = next(c for c in cases() + cuda_cases(args.tiny) if c[0] == args.case[0])
    if args.side == "minicnn":
        result = run_minicnn(name, kind, spec, args.repeat, args.out)
    else:
        result = run_torch(name, kind, spec, args.repeat, args.out, args.reference)
    print(json.dumps(result))


def run_side(side, case, repeat, workdir, reference=None, threads=THREADS, tiny=False):
    out = os.path.join(workdir, f"{side}.npz")
    cmd = [sys.executable, __file__, "--side", side, "--case", case, "--repeat", str(repeat),
           "--out", out] + (["--reference", reference] if reference else []) \
        + (["--tiny"] if tiny else [])
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed on {case}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--peak", type=float, default=234.0, help="machine GFLOP/s peak")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: minicnn's GPU kernels against PyTorch/cuDNN (TF32 off)")
    parser.add_argument("--tiny", action="store_true",
                        help="with --device cuda: toy shapes, one run (a smoke test that also "
                             "runs on NUMBA_ENABLE_CUDASIM=1)")
    parser.add_argument("--cpu-baseline", action="store_true",
                        help="with --device cuda: also time minicnn's ResNet-20 training step "
                             "on the CPU and print the GPU speed-up")
    parser.add_argument("--cpu-threads", type=int, default=THREADS,
                        help="threads of the --cpu-baseline run (default: %(default)s)")
    parser.add_argument("--side", choices=("minicnn", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--case", action="append", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return side_main(args)
    if args.device == "cuda":
        return cuda_main(args)
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
