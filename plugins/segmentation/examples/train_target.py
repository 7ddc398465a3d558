"""The issue's target: FCN-8s reaches a mean IoU of at least 0.85 on a held-out generated set after
CPU training of at most 10 minutes.

Trains with ``minicnn segment train``'s defaults (:data:`minicnn_segmentation.cli.TRAIN_DEFAULTS`:
FCN-8s width 8, 3,000 SegShapes images of 96x96 with 4 classes, 7 epochs, batch 8, Adam 3e-3 with
a cosine schedule), validates after every epoch on seed 10,000 (as the CLI does), then evaluates
on a held-out set never looked at before (seed 20,000) and prints its mean IoU, pixel accuracy
and per-class IoU, and the wall time from the start (data generation included)::

    NUMBA_NUM_THREADS=2 python plugins/segmentation/examples/train_target.py \\
        --picture docs/pictures/segmentation_overlay.png --output runs/segment_target

Exit status 1 when the held-out mean IoU is below ``--target`` (0.85) or the wall time is over
``--budget`` seconds (600). Every training option of the CLI can be overridden (``--epochs``,
``--size``, ...). ``--picture`` draws image | ground truth | prediction for the first held-out
images; ``--output`` saves ``model.mcnn`` (usable by ``minicnn segment IMAGE --model``) and
``result.json``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

_PLUGIN = Path(__file__).resolve().parents[1]
if str(_PLUGIN) not in sys.path:
    sys.path.insert(0, str(_PLUGIN))

import minicnn  # noqa: E402

from minicnn_segmentation import (  # noqa: E402
    SegShapes,
    evaluate_segmentation,
    overlay,
    predict_masks,
    train_segmentation,
)
from minicnn_segmentation.cli import TRAIN_DEFAULTS  # noqa: E402
from minicnn_segmentation.models import MODELS  # noqa: E402

HELD_OUT_SEED = 20_000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TRAIN_DEFAULTS
    p.add_argument("--model", choices=sorted(MODELS), default=d["model"])
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--size", type=int, default=d["size"], help="image side (a multiple of 32)")
    p.add_argument("--train-size", type=int, default=d["train_size"])
    p.add_argument("--val-size", type=int, default=d["val_size"])
    p.add_argument("--held-out-size", type=int, default=300)
    p.add_argument("--num-classes", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"])
    p.add_argument("--width", type=int, default=d["width"],
                   help="fcn8s: channels of the first stage; unet: base channels")
    p.add_argument("--seed", type=int, default=0, help="weights, training data and shuffling")
    p.add_argument("--threads", type=int, default=None,
                   help="numba threads (default: numba's, i.e. NUMBA_NUM_THREADS)")
    p.add_argument("--target", type=float, default=0.85, help="held-out mean IoU to reach")
    p.add_argument("--budget", type=float, default=600.0, help="wall seconds allowed")
    p.add_argument("--picture", help="draw image | truth | prediction rows to this PNG")
    p.add_argument("--rows", type=int, default=4, help="held-out images in --picture")
    p.add_argument("--output", help="directory for model.mcnn and result.json")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p.parse_args(argv)


def draw_picture(images, truths, predictions, path, classes, scale=2, alpha=0.6):
    """Rows of image | ground truth overlay | prediction overlay, column titles on top and the
    class colours (VOC's palette) below."""
    from PIL import Image, ImageDraw

    from minicnn_segmentation import VOC_PALETTE

    h, w = images.shape[-2] * scale, images.shape[-1] * scale
    gap, head, foot = 4, 18, 22
    width, body = 3 * w + 2 * gap, len(images) * (h + gap) - gap
    grid = Image.new("RGB", (width, head + body + foot), "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(("image", "ground truth", "prediction")):
        left, _, right, _ = draw.textbbox((0, 0), title)
        draw.text((c * (w + gap) + (w - (right - left)) // 2, 3), title, fill="black")
    for r, (image, truth, pred) in enumerate(zip(images, truths, predictions, strict=True)):
        plain = Image.fromarray(np.rint(np.transpose(image, (1, 2, 0)) * 255).astype(np.uint8))
        tiles = (plain, overlay(image, truth, alpha), overlay(image, pred, alpha))
        for c, tile in enumerate(tiles):
            grid.paste(tile.resize((w, h), Image.NEAREST), (c * (w + gap), head + r * (h + gap)))
    x, y = 4, head + body + 5
    for k, name in enumerate(classes[1:], start=1):          # background is left unpainted
        draw.rectangle((x, y, x + 11, y + 11), fill=tuple(int(v) for v in VOC_PALETTE[k]),
                       outline="black")
        draw.text((x + 16, y), name, fill="black")
        x += 16 + int(draw.textlength(name)) + 14
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def picture_rows(masks, rows):
    """Indices of the first ``rows`` masks holding at least two shape classes (else the first)."""
    busy = [i for i, m in enumerate(masks) if len(np.setdiff1d(np.unique(m), [0, 255])) >= 2]
    chosen = busy[:rows]
    rest = [i for i in range(len(masks)) if i not in chosen]
    return sorted(chosen + rest[:max(0, rows - len(chosen))])


def _load():
    """The 1, 5 and 15 minute load averages (other jobs slow the run on a shared machine)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main(argv=None):
    args = parse_args(argv)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    start, cpu_start = time.perf_counter(), time.process_time()
    minicnn.manual_seed(args.seed)
    train = SegShapes(args.train_size, size=args.size, num_classes=args.num_classes,
                      seed=args.seed)
    val = SegShapes(args.val_size, size=args.size, num_classes=args.num_classes,
                    seed=args.seed + 10_000)
    key = "width" if args.model == "fcn8s" else "base"
    model = MODELS[args.model](num_classes=args.num_classes, in_channels=3, **{key: args.width})
    log(f"{args.model} ({key} {args.width}, {sum(p.data.size for p in model.parameters()):,} "
        f"parameters) on {train}; validation {val}")
    history = train_segmentation(model, train, val, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 progress=False, log=log, num_threads=args.threads)
    trained = time.perf_counter() - start
    held_out = SegShapes(args.held_out_size, size=args.size, num_classes=args.num_classes,
                         seed=HELD_OUT_SEED)
    result = evaluate_segmentation(model, held_out, num_threads=args.threads)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    summary = {
        "model": args.model, "width": args.width, "epochs": args.epochs, "size": args.size,
        "train_size": args.train_size, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "threads": args.threads,
        "val_miou": [round(float(h["val_miou"]), 4) for h in history],
        "held_out_miou": float(result["miou"]),
        "held_out_pixel_acc": float(result["pixel_acc"]),
        "held_out_iou": [round(float(v), 4) for v in result["iou"]],
        "train_seconds": round(trained, 1), "total_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1), "load_average": _load(),
    }
    classes = held_out.classes
    per_class = ", ".join(f"{c} {v:.3f}" for c, v in zip(classes, result["iou"], strict=True))
    print(f"held-out ({len(held_out)} images, seed {HELD_OUT_SEED}): mean IoU "
          f"{result['miou']:.4f}, pixel accuracy {result['pixel_acc']:.4f}; IoU {per_class}")
    print(f"wall time {seconds:.1f} s (training incl. data generation and validation "
          f"{trained:.1f} s), CPU time {cpu:.1f} s (all threads), load average at the end "
          f"{summary['load_average']}; validation mIoU per epoch {summary['val_miou']}")
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        minicnn.save(model, str(out / "model.mcnn"))
        (out / "result.json").write_text(json.dumps(summary, indent=1))
    if args.picture:
        x, y = held_out.get_batch(picture_rows(held_out.masks, args.rows))
        draw_picture(x, y, predict_masks(model, x, num_threads=args.threads), args.picture,
                     held_out.classes)
    met = result["miou"] >= args.target and (args.budget <= 0 or seconds <= args.budget)
    print(f"target (mean IoU >= {args.target}, <= {args.budget:.0f} s): "
          f"{'met' if met else 'MISSED'}")
    summary["met"] = bool(met)
    return summary


if __name__ == "__main__":
    sys.exit(0 if main()["met"] else 1)
