"""Differential testing against PyTorch: random layer configurations and inputs, run by minicnn on
the CPU in float64 and by PyTorch; the same errors, outputs and input (and parameter) gradients;
also optimiser steps and learning-rate schedules.

    python scripts/differential_torch.py [--families conv pool loss layer batchnorm optim
        schedule graph] [--seconds 60] [--seed 0]

PyTorch is an optional dependency of this script only. Each family draws configurations the way a
user might write them (strides, dilations, paddings, groups, ceil_mode, ignore_index, label
smoothing, running statistics over several steps, momentum and Nesterov, AMSGrad, warm-up then
cosine, plateaus...), including ones both sides must refuse.
The ``graph`` family (``differential_graph.py``) draws whole random DAGs for the graph executor:
fan-out, shared weights, Add and Concat of one value with itself, several outputs, frozen modules,
taps. Prints every mismatch and a count per family; exit status 1 on a mismatch.

Known, deliberate differences (not drawn):

* a max-pool window of padding only (dilation can skip over a thin input): both give -inf, but
  minicnn passes it no gradient, while PyTorch 2.13's CPU backward sends it to an element
  outside the window, and can write outside the input (it corrupted the heap here);
* Linear on a 1-D input: minicnn wants a batch axis, (N, *, in_features);
* ConstantPad2d cropping a whole axis away (PyTorch returns an empty tensor or raises, minicnn
  raises).

Found with it so far: Linear refused (N, *, in_features) inputs (fixed), and the max-pool case
above.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from differential_common import Mismatch, _close  # noqa: E402 - after the path is set
from differential_graph import graph_check  # noqa: E402


def _sizes(rng, low, high, count):
    return tuple(int(v) for v in rng.integers(low, high, count))


# -- the families: each returns (minicnn module, torch module, inputs, targets or None) -----------

def conv_case(rng, nn, tnn, torch):
    dims = int(rng.choice([1, 2, 3]))
    transposed = dims == 2 and rng.random() < 0.3
    groups = int(rng.choice([1, 1, 2, 3]))
    cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    k, s, d = _sizes(rng, 1, 4, dims), _sizes(rng, 1, 4, dims), _sizes(rng, 1, 3, dims)
    p = tuple(int(rng.integers(0, d[i] * (k[i] - 1) // 2 + 2)) for i in range(dims))
    bias = bool(rng.random() < 0.7)
    spec = dict(stride=s, padding=p, dilation=d, groups=groups, bias=bias)
    if transposed:
        spec["output_padding"] = tuple(int(rng.integers(0, max(s[i], d[i]))) for i in range(2))
        mine = nn.ConvTranspose2d(cin, cout, k, **spec)
        theirs = tnn.ConvTranspose2d(cin, cout, k, **spec)
    else:
        name = f"Conv{dims}d"
        mine, theirs = getattr(nn, name)(cin, cout, k, **spec), getattr(tnn, name)(cin, cout, k,
                                                                                  **spec)
    mine = mine.double()
    with torch.no_grad():
        theirs.double().weight.copy_(torch.tensor(mine.weight.data))
        if bias:
            theirs.bias.copy_(torch.tensor(mine.bias.data))
    x = rng.standard_normal((int(rng.integers(1, 4)), cin) + _sizes(rng, 1, 8, dims))
    return mine, theirs, x, None


def pool_case(rng, nn, tnn, torch):
    kind = str(rng.choice(["max", "avg", "lp", "adaptive"]))
    k = _sizes(rng, 1, 5, 2)
    s = _sizes(rng, 1, 4, 2) if rng.random() < 0.8 else None
    p = tuple(int(rng.integers(0, k[i] // 2 + 1)) for i in range(2))
    ceil = bool(rng.random() < 0.5)
    x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 4)))
                            + _sizes(rng, 1, 9, 2))
    if kind == "max":
        d = _sizes(rng, 1, 3, 2)
        pair = (nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), tnn.MaxPool2d(k, s, p, d,
                                                                         ceil_mode=ceil))
    elif kind == "avg":
        options = dict(ceil_mode=ceil, count_include_pad=bool(rng.random() < 0.5),
                       divisor_override=int(rng.integers(1, 5)) if rng.random() < 0.2 else None)
        pair = nn.AvgPool2d(k, s, p, **options), tnn.AvgPool2d(k, s, p, **options)
    elif kind == "lp":
        norm = float(rng.choice([1.0, 2.0, 3.0]))
        x = np.abs(x) + 0.1
        pair = nn.LPPool2d(norm, k, s, ceil_mode=ceil), tnn.LPPool2d(norm, k, s, ceil_mode=ceil)
    else:
        size = _sizes(rng, 1, 7, 2)
        pair = nn.AdaptiveAvgPool2d(size), tnn.AdaptiveAvgPool2d(size)
    return pair[0], pair[1], x, None


def loss_case(rng, nn, tnn, torch):
    kind = str(rng.choice(["ce", "nll", "mse", "l1", "smoothl1", "bcelogits", "bce"]))
    options = dict(reduction=str(rng.choice(["mean", "sum"])))
    n, classes = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    x = rng.standard_normal((n, classes) + _sizes(rng, 1, 4, int(rng.choice([0, 0, 1, 2]))))
    if kind in ("ce", "nll"):
        target = rng.integers(0, classes, (n,) + x.shape[2:])
        if rng.random() < 0.4:
            options["ignore_index"] = int(rng.integers(0, classes))
        weight = rng.uniform(0.1, 2.0, classes) if rng.random() < 0.4 else None
        if kind == "ce" and rng.random() < 0.4:
            options["label_smoothing"] = float(rng.choice([0.1, 0.5, 1.0]))
        if kind == "nll":
            x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        name = "CrossEntropyLoss" if kind == "ce" else "NLLLoss"
        mine = getattr(nn, name)(weight=weight, **options)
        theirs = getattr(tnn, name)(weight=None if weight is None else torch.tensor(weight),
                                    **options)
        return mine, theirs, x, target
    target = rng.standard_normal(x.shape)
    if kind in ("bcelogits", "bce"):
        target = rng.uniform(0, 1, x.shape)
        weight = rng.uniform(0.1, 2.0, x.shape[-1:]) if rng.random() < 0.4 else None
        tweight = None if weight is None else torch.tensor(weight)
        if kind == "bce":
            x = 1 / (1 + np.exp(-x))
            return (nn.BCELoss(weight=weight, **options),
                    tnn.BCELoss(weight=tweight, **options), x, target)
        pos = rng.uniform(0.1, 3.0, x.shape[-1:]) if rng.random() < 0.4 else None
        return (nn.BCEWithLogitsLoss(weight=weight, pos_weight=pos, **options),
                tnn.BCEWithLogitsLoss(weight=tweight, pos_weight=None if pos is None
                                      else torch.tensor(pos), **options), x, target)
    if kind == "smoothl1":
        options["beta"] = float(rng.choice([0.0, 0.5, 1.0, 2.0]))
    name = {"mse": "MSELoss", "l1": "L1Loss", "smoothl1": "SmoothL1Loss"}[kind]
    return getattr(nn, name)(**options), getattr(tnn, name)(**options), x, target


def layer_case(rng, nn, tnn, torch):
    kind = str(rng.choice(["softmax", "activation", "pad", "linear", "flatten"]))
    shape = (int(rng.integers(1, 4)),) + _sizes(rng, 1, 4, int(rng.integers(0, 4)))
    if kind == "softmax":
        dim = int(rng.integers(-len(shape), len(shape)))
        name = str(rng.choice(["Softmax", "LogSoftmax"]))
        return getattr(nn, name)(dim=dim), getattr(tnn, name)(dim=dim), rng.standard_normal(
            shape), None
    if kind == "activation":
        alpha = float(rng.choice([0.01, 0.2, 1.0, 1.5]))
        name = str(rng.choice(["ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh"]))
        args = (alpha,) if name in ("LeakyReLU", "ELU") else ()
        return getattr(nn, name)(*args), getattr(tnn, name)(*args), rng.standard_normal(
            shape), None
    if kind == "pad":
        size = _sizes(rng, 1, 5, 2)
        pads = list(_sizes(rng, -2, 3, 4))
        for axis, (a, b) in enumerate(((0, 1), (2, 3))):    # crop at most size - 1
            while max(0, -pads[a]) + max(0, -pads[b]) >= size[1 - axis]:
                pads[a if pads[a] < 0 else b] += 1
        value = float(rng.choice([0.0, 1.5, -np.inf]))
        x = rng.standard_normal(shape[:2] + size if rng.random() < 0.8 else shape[:1] + size)
        return nn.ConstantPad2d(tuple(pads), value), tnn.ConstantPad2d(tuple(pads), value), x, None
    if kind == "linear":
        features, out = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        bias = bool(rng.random() < 0.7)
        mine, theirs = nn.Linear(features, out, bias=bias).double(), tnn.Linear(features, out,
                                                                               bias=bias)
        with torch.no_grad():
            theirs.double().weight.copy_(torch.tensor(mine.weight.data))
            if bias:
                theirs.bias.copy_(torch.tensor(mine.bias.data))
        return mine, theirs, rng.standard_normal(shape + (features,)), None
    start, end = int(rng.integers(-len(shape), len(shape))), int(rng.integers(-len(shape),
                                                                               len(shape)))
    return nn.Flatten(start, end), tnn.Flatten(start, end), rng.standard_normal(shape), None


def batchnorm_case(rng, nn, tnn, torch):
    """Three steps (the last sometimes in eval mode): outputs, gradients, running statistics."""
    dims = int(rng.choice([1, 2, 3]))
    channels = int(rng.integers(1, 4))
    extra = {1: int(rng.choice([0, 1])), 2: 2, 3: 3}[dims]
    shape = (int(rng.integers(2, 5)), channels) + _sizes(rng, 1, 4, extra)
    options = dict(eps=float(rng.choice([1e-5, 1e-3])), affine=bool(rng.random() < 0.8),
                   momentum=float(rng.choice([0.1, 0.5])) if rng.random() < 0.8 else None,
                   track_running_stats=bool(rng.random() < 0.8))
    name = f"BatchNorm{dims}d"
    mine = getattr(nn, name)(channels, **options).double()
    theirs = getattr(tnn, name)(channels, **options).double()
    if options["affine"]:
        weight, bias = rng.uniform(0.5, 2, channels), rng.standard_normal(channels)
        mine.weight.data[...], mine.bias.data[...] = weight, bias
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(weight))
            theirs.bias.copy_(torch.tensor(bias))
    return mine, theirs, [rng.standard_normal(shape) * 3 + 1 for _ in range(3)], None


# -- optimisers and schedules: their own comparisons -------------------------------------------

def optimizer_check(rng, minicnn, torch):
    """A few steps of SGD, Adam or AdamW with random options on random gradients: the same
    parameters after every step."""
    kind = str(rng.choice(["SGD", "Adam", "AdamW"]))
    shapes = [_sizes(rng, 1, 4, int(rng.integers(1, 3))) for _ in range(int(rng.integers(1, 4)))]
    options = dict(lr=float(rng.choice([0.001, 0.01, 0.1, 0.5])),
                   weight_decay=float(rng.choice([0.0, 0.0, 1e-4, 0.1])),
                   maximize=bool(rng.random() < 0.2))
    if kind == "SGD":
        options.update(momentum=float(rng.choice([0.0, 0.5, 0.9])),
                       dampening=float(rng.choice([0.0, 0.0, 0.3])))
        options["nesterov"] = bool(rng.random() < 0.4 and options["momentum"] > 0
                                   and options["dampening"] == 0)
    else:
        options.update(betas=(float(rng.choice([0.8, 0.9])), float(rng.choice([0.99, 0.999]))),
                       eps=float(rng.choice([1e-8, 1e-3])), amsgrad=bool(rng.random() < 0.4))
    start = [rng.standard_normal(shape) for shape in shapes]
    mine = [minicnn.Param(a.copy()) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    mine_opt = getattr(minicnn.optim, kind)(mine, **options)
    their_opt = getattr(torch.optim, kind)(theirs, **options)
    for step in range(int(rng.integers(1, 8))):
        for p, t in zip(mine, theirs, strict=True):
            g = rng.standard_normal(p.data.shape)
            p.grad, t.grad = g.copy(), torch.tensor(g)
        mine_opt.step()
        their_opt.step()
        for i, (p, t) in enumerate(zip(mine, theirs, strict=True)):
            _close(f"{kind}({options}) parameter {i} after step {step + 1}", p.data,
                   t.detach().numpy(), rtol=1e-10, atol=1e-12)
    return True


def _schedule(library, kind, optimizer, a):
    lib = library.optim if hasattr(library, "Param") else library.optim.lr_scheduler
    if kind == "StepLR":
        return lib.StepLR(optimizer, a["step_size"], gamma=a["gamma"])
    if kind == "MultiStepLR":
        return lib.MultiStepLR(optimizer, a["milestones"], gamma=a["gamma"])
    if kind == "ExponentialLR":
        return lib.ExponentialLR(optimizer, a["gamma"])
    if kind == "LinearLR":
        return lib.LinearLR(optimizer, a["start_factor"], a["end_factor"], a["total_iters"])
    if kind == "CosineAnnealingLR":
        return lib.CosineAnnealingLR(optimizer, a["T_max"], eta_min=a["eta_min"])
    if kind == "SequentialLR":
        warm = lib.LinearLR(optimizer, a["start_factor"], 1.0, a["total_iters"])
        cosine = lib.CosineAnnealingLR(optimizer, a["T_max"], eta_min=a["eta_min"])
        return lib.SequentialLR(optimizer, [warm, cosine], milestones=[a["total_iters"]])
    return lib.ReduceLROnPlateau(optimizer, mode=a["mode"], factor=a["gamma"],
                                 patience=a["patience"], threshold=a["threshold"],
                                 threshold_mode=a["threshold_mode"], cooldown=a["cooldown"],
                                 min_lr=a["min_lr"])


def schedule_check(rng, minicnn, torch):
    """30 epochs of a random learning-rate schedule (ReduceLROnPlateau on a random metric): the
    same rate after every step."""
    kind = str(rng.choice(["StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
                           "CosineAnnealingLR", "SequentialLR", "ReduceLROnPlateau"]))
    a = dict(step_size=int(rng.integers(1, 5)), gamma=float(rng.choice([0.1, 0.5, 0.9])),
             milestones=sorted({int(v) for v in rng.integers(1, 15, 3)}),
             start_factor=float(rng.choice([0.1, 0.5, 1.0])),
             end_factor=float(rng.choice([0.2, 1.0])),
             total_iters=int(rng.integers(1, 8)), T_max=int(rng.integers(1, 10)),
             eta_min=float(rng.choice([0.0, 0.001])), mode=str(rng.choice(["min", "max"])),
             patience=int(rng.integers(0, 4)), threshold=float(rng.choice([1e-4, 0.1])),
             threshold_mode=str(rng.choice(["rel", "abs"])), cooldown=int(rng.integers(0, 3)),
             min_lr=float(rng.choice([0.0, 0.01])))
    lr = float(rng.choice([0.1, 1.0]))
    mine_opt = minicnn.optim.SGD([minicnn.Param(np.zeros(2))], lr=lr, momentum=0.9)
    their_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr, momentum=0.9)
    mine, theirs = _schedule(minicnn, kind, mine_opt, a), _schedule(torch, kind, their_opt, a)
    for epoch in range(30):
        mine_opt.step()
        their_opt.step()
        if kind == "ReduceLROnPlateau":
            metric = float(rng.choice([1.0, 0.9, 0.95, 1.1, rng.random()]))
            mine.step(metric)
            theirs.step(metric)
        else:
            mine.step()
            theirs.step()
        _close(f"{kind} rate after epoch {epoch + 1}", mine_opt.param_groups[0]["lr"],
               their_opt.param_groups[0]["lr"], rtol=1e-10, atol=1e-14)
    return True


FAMILIES = {"conv": conv_case, "pool": pool_case, "loss": loss_case, "layer": layer_case,
            "batchnorm": batchnorm_case, "optim": optimizer_check, "schedule": schedule_check,
            "graph": graph_check}
CHECKS = ("optim", "schedule", "graph")     # families that compare on their own (not layer cases)


# -- running one case ------------------------------------------------------------------------------

def _outcome(fn):
    try:
        return fn(), None
    except Exception as exc:   # both sides' errors are compared, not raised
        return None, exc


def run_step(mine, theirs, x, target, rng, torch):
    xt = torch.tensor(x, requires_grad=True)
    tt = None if target is None else torch.tensor(target)
    want, their_error = _outcome(lambda: theirs(xt) if tt is None else theirs(xt, tt))
    got, my_error = _outcome(lambda: mine(x) if target is None else mine(x, target))
    if (their_error is None) != (my_error is None):
        raise Mismatch(f"PyTorch {'raised ' + repr(their_error) if their_error else 'ran'}; "
                       f"minicnn {'raised ' + repr(my_error) if my_error else 'ran'}")
    if my_error is not None:
        return False
    _close("output", got, want.detach().numpy())
    if np.isneginf(np.asarray(got)).any() and type(theirs).__name__ == "MaxPool2d":
        return True      # a window of padding only: PyTorch's backward writes out of bounds
    if target is None:
        gy = rng.standard_normal(np.shape(got))
        gx = mine.backward(gy)
        want.backward(torch.tensor(gy))
    else:
        gx = mine.backward()
        want.backward()
    _close("input gradient", gx, xt.grad.numpy())
    their_params = dict(theirs.named_parameters())
    for name, param in mine.named_parameters():
        theirs_param = their_params[name]
        if param.grad is not None and theirs_param.grad is not None:
            _close(f"gradient of {name!r}", param.grad, theirs_param.grad.numpy())
            theirs_param.grad = None
    return True


def run_case(family, rng, minicnn, tnn, torch):
    if family in CHECKS:
        return FAMILIES[family](rng, minicnn, torch)
    mine, theirs, x, target = FAMILIES[family](rng, minicnn.nn, tnn, torch)
    shape = np.shape(x[0] if family == "batchnorm" else x)
    try:
        return _compare(family, mine, theirs, x, target, rng, torch)
    except Mismatch as exc:
        raise Mismatch(f"{mine!r} on input {shape}: {exc}") from None


def _compare(family, mine, theirs, x, target, rng, torch):
    if family != "batchnorm":
        return run_step(mine, theirs, x, target, rng, torch)
    for step, batch in enumerate(x):
        if step == 2 and rng.random() < 0.5:
            mine.eval()
            theirs.eval()
        if not run_step(mine, theirs, batch, None, rng, torch):
            return False
        if theirs.track_running_stats:
            _close("running mean", mine.running_mean, theirs.running_mean.numpy())
            _close("running variance", mine.running_var, theirs.running_var.numpy())
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=sorted(FAMILIES), choices=sorted(FAMILIES))
    parser.add_argument("--seconds", type=float, default=60.0, help="per family (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from torch import nn as tnn

    import minicnn
    torch.set_num_threads(1)
    failures = 0
    for family in args.families:
        rng = np.random.default_rng((args.seed, sorted(FAMILIES).index(family)))
        counts = {"compared": 0, "refused by both": 0, "mismatches": 0}
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline:
            try:
                ran = run_case(family, rng, minicnn, tnn, torch)
                counts["compared" if ran else "refused by both"] += 1
            except Mismatch as exc:
                counts["mismatches"] += 1
                print(f"MISMATCH {family}: {exc}", flush=True)
        failures += counts["mismatches"]
        print(f"{family}: " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
