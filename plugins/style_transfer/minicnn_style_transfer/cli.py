"""``minicnn style CONTENT STYLE -o OUT.png``: neural style transfer from the shell.

::

    minicnn style photo.jpg painting.jpg -o out.png [--size 256] [--iterations 300]
        [--network auto|darknet|vgg19|random] [--weights FILE] [--preset gatys]
        [--content-layer conv4_2] [--style-layers conv1_1,conv2_1,...] [--layer-weights ...]
        [--content-weight A] [--style-weight B] [--tv-weight T] [--norm gatys]
        [--optimizer lbfgs|adam] [--lr LR] [--init content|noise|style] [--seed S]
        [--scales N] [--snapshot-every K] [--panel panel.png] [--device cpu] [--dry-run]

Before optimising it prints the images' sizes, the network, and an estimate of memory and time
(from one timed evaluation of the objective); then a progress bar, snapshots every K iterations,
and at the end the time and how far the style loss fell.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

from .networks import DEFAULT_WEIGHTS, GATYS, NETWORKS

AUTO_SCALE_SIDE = 512    # --scales auto: halve until the coarsest shorter side is at most this


def add_arguments(parser):
    parser.add_argument("content", help="the content image (any format and mode Pillow reads)")
    parser.add_argument("style", help="the style image")
    parser.add_argument("-o", "--output", required=True, help="the result (PNG, JPEG...)")
    parser.add_argument("--size", type=int, default=256,
                        help="pixels of the result's shorter side (default 256); the style image "
                        "is scaled to the same shorter side")
    parser.add_argument("--iterations", type=int, default=300,
                        help="optimiser iterations per scale (default 300)")
    net = parser.add_argument_group("feature network")
    net.add_argument("--network", choices=("auto",) + NETWORKS, default="auto",
                     help="auto (default): vgg19 for a .safetensors --weights, darknet for a "
                     "model.json or when ../shared/data holds Tiny Darknet, else random")
    net.add_argument("--weights", help="vgg19: torchvision's VGG-19 as safetensors; darknet: a "
                     "TF.js model.json (default: the shared Tiny Darknet)")
    net.add_argument("--pooling", choices=("avg", "max"), default=None,
                     help="pooling of the feature network (default: the preset's, avg)")
    net.add_argument("--seed", type=int, default=0,
                     help="seed of the random network and of the noise start")
    loss = parser.add_argument_group("objective")
    loss.add_argument("--preset", choices=("gatys",), default="gatys",
                      help="gatys: content conv4_2, style conv1_1..conv5_1 equally weighted, "
                      "average pooling (the other options override parts of it)")
    loss.add_argument("--content-layer", help="content layer (default conv4_2); 'none' for "
                      "texture synthesis")
    loss.add_argument("--style-layers", help="comma-separated style layers")
    loss.add_argument("--layer-weights", help="comma-separated lambda_l of the style layers "
                      "(default equal, summing to 1)")
    loss.add_argument("--content-weight", type=float, default=1.0, help="alpha (default 1)")
    loss.add_argument("--style-weight", type=float, default=None,
                      help="beta (default per network: darknet 1e7, random 1e6, vgg19 3e6)")
    loss.add_argument("--tv-weight", type=float, default=None,
                      help="total-variation weight (default per network: darknet 1, random "
                      "30, vgg19 0)")
    loss.add_argument("--norm", choices=("gatys", "course", "mean", "none"), default="gatys",
                      help="style normaliser: gatys = course = 1/(4 N^2 M^2) (default)")
    run = parser.add_argument_group("optimisation")
    run.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    run.add_argument("--lr", type=float, default=None,
                     help="learning rate (L-BFGS default 1, Adam default 0.02)")
    run.add_argument("--line-search", choices=("strong_wolfe", "none"), default="strong_wolfe",
                     help="L-BFGS line search (default strong_wolfe)")
    run.add_argument("--history-size", type=int, default=50, help="L-BFGS history (default 50)")
    run.add_argument("--init", choices=("content", "noise", "style"), default="content",
                     help="starting image (default content; noise uses --seed)")
    run.add_argument("--scales", default="auto",
                     help="coarse-to-fine levels (each halves the size; default auto: 1 up to "
                     f"{AUTO_SCALE_SIDE} pixels, then enough to start at most there)")
    run.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    run.add_argument("--threads", type=int, default=None, help="numba threads")
    out = parser.add_argument_group("output")
    out.add_argument("--snapshot-every", type=int, default=0,
                     help="also write OUT-<scale>-<iteration>.png every K iterations")
    out.add_argument("--panel", help="also write content, style and result side by side")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("--dry-run", action="store_true",
                     help="print the estimate of memory and time, and stop")


def choose_network(args):
    """(network name, weights path or None) from --network and --weights."""
    from .networks import default_darknet_path
    name, weights = args.network, args.weights
    if name == "auto":
        if weights:
            suffix = Path(weights).suffix.lower()
            name = "darknet" if suffix == ".json" else "vgg19"
        elif default_darknet_path() is not None:
            name = "darknet"
        else:
            name = "random"
    return name, weights


def auto_scales(size, value):
    if value != "auto":
        try:
            scales = int(value)
        except ValueError:
            raise SystemExit(f"minicnn style: --scales must be an integer or 'auto', got "
                             f"{value!r}") from None
        if scales < 1:
            raise SystemExit("minicnn style: --scales must be at least 1")
        return scales
    return 1 + max(0, math.ceil(math.log2(size / AUTO_SCALE_SIDE))) if size > 0 else 1


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def build(args, name, weights):
    """The feature network and the :class:`StyleTransfer` the arguments describe."""
    from minicnn import ConfigError

    from .networks import feature_network
    from .transfer import StyleTransfer
    defaults = DEFAULT_WEIGHTS[name]
    pooling = args.pooling or GATYS["pooling"]
    try:
        network = feature_network(name, weights, pooling=pooling, seed=args.seed)
        if args.device != "cpu":
            network.to(args.device)     # RuntimeError when the device is not available
        content_layer = args.content_layer or GATYS["content_layer"]
        if content_layer.lower() == "none":
            content_layer, content_weight = None, 0.0
        else:
            content_weight = args.content_weight
        style_layers = _split(args.style_layers) or list(GATYS["style_layers"])
        layer_weights = _split(args.layer_weights)
        transfer = StyleTransfer(
            network, content_layer=content_layer, style_layers=style_layers,
            style_weights=[float(w) for w in layer_weights] if layer_weights else None,
            content_weight=content_weight,
            style_weight=defaults["style_weight"] if args.style_weight is None
            else args.style_weight,
            tv_weight=defaults["tv_weight"] if args.tv_weight is None else args.tv_weight,
            norm=args.norm)
    except (ConfigError, ValueError, RuntimeError, FileNotFoundError) as exc:
        raise SystemExit(f"minicnn style: {exc}") from None
    return network, transfer


def run(args):
    import numpy as np
    from minicnn import KernelMissingError

    from .images import load_rgb, panel, save_rgb

    if args.threads:
        import numba
        numba.set_num_threads(args.threads)
    if args.size < 16:
        raise SystemExit("minicnn style: --size must be at least 16 pixels")
    if args.iterations < 1:
        raise SystemExit("minicnn style: --iterations must be at least 1")
    name, weights = choose_network(args)
    network, transfer = build(args, name, weights)
    try:
        content = load_rgb(args.content, args.size)
        style = load_rgb(args.style, args.size)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"minicnn style: {exc}") from None
    scales = auto_scales(args.size, args.scales)
    line_search = None if args.line_search == "none" else args.line_search
    hw = content.shape[1:]
    print(f"minicnn style: {args.content} ({hw[1]}x{hw[0]}) in the style of {args.style} "
          f"({style.shape[2]}x{style.shape[1]}); network {network.description or name}; "
          f"content {transfer.content_layer}, style {','.join(transfer.style_layers)}; "
          f"{args.optimizer}, {args.iterations} iterations x {scales} scale(s)")

    # the estimate: the cost model first (nothing allocated yet), then one timed evaluation
    cost = transfer.estimate(hw, style.shape[1:], args.iterations, args.optimizer, line_search,
                             args.history_size, scales)
    print(f"estimate: memory {_human_bytes(cost['memory_bytes'])}, "
          f"{cost['gflop_per_evaluation']:.2f} GFLOP per evaluation, about "
          f"{cost['evaluations']} evaluations", flush=True)
    available = _available_memory()
    if available and cost["memory_bytes"] > 0.8 * available:
        print(f"warning: the estimate is over 80% of the available memory "
              f"({_human_bytes(available)}); lower --size or use more --scales", flush=True)
    try:
        targets = transfer.targets(content, style, hw)
    except KernelMissingError as exc:
        raise SystemExit(f"minicnn style: {exc} (this plugin has CPU kernels only so far; use "
                         f"--device cpu)") from None
    probe = np.ascontiguousarray(content[None], dtype=network.dtype)
    transfer.evaluate(probe, targets)                       # compile, allocate
    began = time.perf_counter()
    transfer.evaluate(probe, targets)
    per_eval = time.perf_counter() - began
    cost = transfer.estimate(hw, style.shape[1:], args.iterations, args.optimizer, line_search,
                             args.history_size, scales, seconds_per_evaluation=per_eval)
    print(f"estimate: {per_eval * 1e3:.0f} ms per evaluation (timed at full size), "
          f"~{cost['seconds']:.0f} s in all", flush=True)
    if args.dry_run:
        return 0

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    bar = _progress(args, args.iterations * scales)

    def callback(scale, iteration, image, evaluation):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"J {evaluation.total:.4g} style {evaluation.style:.3g}")
        if args.snapshot_every and iteration % args.snapshot_every == 0:
            save_rgb(image, output.with_name(f"{output.stem}-{scale}-{iteration:04d}.png"))

    result = transfer.run(content, style, args.iterations, args.optimizer, args.init, args.seed,
                          scales=scales, lr=args.lr, line_search=line_search,
                          history_size=args.history_size, callback=callback)
    if bar is not None:
        bar.close()
    save_rgb(result.image, output)
    if args.panel:
        panel([content, style, result.image], ["content", "style", "result"]).save(args.panel)
    first, last = result.history[0], result.history[-1]
    print(f"{output}: {result.image.shape[2]}x{result.image.shape[1]} in {result.seconds:.1f} s "
          f"({result.evaluations} evaluations); style loss {first.style:.4g} -> {last.style:.4g} "
          f"({result.style_ratio:.0f}x lower), content loss {first.content:.4g} -> "
          f"{last.content:.4g}, total {first.total:.4g} -> {last.total:.4g}")
    return 0


def _progress(args, total):
    if args.no_progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="it", file=sys.stderr, leave=False, dynamic_ncols=True)


def _available_memory():
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def command():
    from minicnn import Command
    return Command("style", "neural style transfer: 'style CONTENT STYLE -o OUT.png' paints the "
                   "content photo with the style image's texture (Gatys et al.)",
                   add_arguments, run)


def main(argv=None):
    """Run the command without the ``minicnn`` entry point
    (``python -m minicnn_style_transfer``)."""
    parser = argparse.ArgumentParser(prog="minicnn style")
    add_arguments(parser)
    return run(parser.parse_args(argv))
