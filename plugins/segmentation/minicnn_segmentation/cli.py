"""``minicnn segment``: train a segmentation model, or segment images with a saved one.

::

    minicnn segment train [--model fcn8s|unet] [--epochs N] [--size S] [--train-size N]
                          [--data shapes|voc --data-dir DIR] [--output DIR]
    minicnn segment IMAGE... --model FILE -o mask.png [--overlay overlay.png]

The first word decides: ``train`` trains (write ``./train`` to segment a file named train);
anything else is a list of images to segment.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

# The defaults reach a held-out mean IoU of 0.88 on SegShapes (the target is 0.85) in 5 to 8
# minutes on the shared two-core machine (examples/train_target.py; measurements in the README).
TRAIN_DEFAULTS = {"model": "fcn8s", "epochs": 7, "size": 96, "train_size": 3000,
                  "val_size": 300, "batch_size": 8, "lr": 3e-3, "width": 8}


def add_arguments(parser):
    parser.add_argument("words", nargs="+", metavar="train | IMAGE",
                        help="'train' to train a model, or image files to segment")
    parser.add_argument("--model", help="train: a model name (fcn8s, unet; default fcn8s); "
                        "segment: a model file saved by 'minicnn segment train'")
    parser.add_argument("-o", "--output", help="train: output directory (default runs/segment); "
                        "segment: the mask PNG (a directory when several images are given)")
    parser.add_argument("--overlay", help="segment: also write the mask blended on the image "
                        "(a PNG, or a directory when several images are given)")
    train = parser.add_argument_group("training")
    train.add_argument("--data", choices=("shapes", "voc"), default="shapes",
                       help="shapes: generated SegShapes (default); voc: Pascal VOC in --data-dir")
    train.add_argument("--data-dir", help="the VOC2012 folder (or one holding VOCdevkit)")
    train.add_argument("--epochs", type=int, default=TRAIN_DEFAULTS["epochs"])
    train.add_argument("--size", type=int, default=TRAIN_DEFAULTS["size"],
                       help="image side in pixels (a multiple of 32)")
    train.add_argument("--train-size", type=int, default=TRAIN_DEFAULTS["train_size"],
                       help="training samples (shapes: generated; voc: the first N)")
    train.add_argument("--val-size", type=int, default=TRAIN_DEFAULTS["val_size"])
    train.add_argument("--num-classes", type=int, default=None,
                       help="shapes: background + shapes, 2..7 (default 4); voc: 21")
    train.add_argument("--batch-size", type=int, default=TRAIN_DEFAULTS["batch_size"])
    train.add_argument("--lr", type=float, default=TRAIN_DEFAULTS["lr"])
    train.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    train.add_argument("--width", type=int, default=TRAIN_DEFAULTS["width"],
                       help="fcn8s: channels of the first stage; unet: base channels")
    train.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="numba threads for the kernels (default: numba's; 1 is often "
                        "faster on a busy or virtualised two-core machine)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")


def _datasets(args):
    from .datasets import SegShapes
    from .voc import VOCSegmentation
    if args.data == "shapes":
        k = args.num_classes or 4
        return (SegShapes(args.train_size, args.size, k, seed=args.seed),
                SegShapes(args.val_size, args.size, k, seed=args.seed + 10_000), k)
    if not args.data_dir:
        raise SystemExit("minicnn segment train: --data voc needs --data-dir")
    from minicnn.data import Subset
    train = VOCSegmentation(args.data_dir, "train", size=args.size)
    try:
        val = VOCSegmentation(args.data_dir, "val", size=args.size)
    except FileNotFoundError:
        n = len(train)
        print(f"minicnn segment: no val split in {args.data_dir}; validating on the last "
              f"{min(args.val_size, n // 5)} training images")
        val = Subset(train, range(n - min(args.val_size, n // 5), n))
        train = Subset(train, range(0, n - len(val)))
    train = Subset(train, range(min(args.train_size, len(train))))
    val = Subset(val, range(min(args.val_size, len(val))))
    return train, val, args.num_classes or 21


def _train(args):
    import minicnn
    from minicnn.plot import line_chart

    from .models import MODELS
    from .palette import overlay_grid
    from .training import make_loader, predict_masks, train_segmentation

    name = args.model or TRAIN_DEFAULTS["model"]
    if name not in MODELS:
        raise SystemExit(f"minicnn segment train: unknown model {name!r}; known: "
                         f"{sorted(MODELS)}")
    if args.size % 32:
        raise SystemExit(f"minicnn segment train: --size must be a multiple of 32, got "
                         f"{args.size}")
    start = time.perf_counter()
    minicnn.manual_seed(args.seed)
    train_set, val_set, num_classes = _datasets(args)
    key = "width" if name == "fcn8s" else "base"
    model = MODELS[name](num_classes=num_classes, in_channels=3, **{key: args.width})
    out = Path(args.output or "runs/segment")
    out.mkdir(parents=True, exist_ok=True)
    history = train_segmentation(model, train_set, val_set, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr,
                                 optimizer=args.optimizer, seed=args.seed,
                                 progress=not args.no_progress, num_threads=args.threads)
    minicnn.save(model, str(out / "model.mcnn"))
    x, y = next(iter(make_loader(val_set, batch_size=8)))
    overlay_grid(x, y, predict_masks(model, x, num_threads=args.threads)).save(out / "overlay.png")
    line_chart({"val mIoU": [h["val_miou"] for h in history],
                "val pixel acc.": [h["val_pixel_acc"] for h in history]},
               str(out / "curve.png"), title=f"{name} on {args.data}", xlabel="epoch")
    rows = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in h.items()}
            for h in history]
    (out / "history.json").write_text(json.dumps(rows, indent=1))
    final = history[-1]
    print(f"{name} on {args.data}: validation mean IoU {final['val_miou']:.4f}, pixel accuracy "
          f"{final['val_pixel_acc']:.4f} after {len(history)} epoch(s), "
          f"{time.perf_counter() - start:.1f} s; model.mcnn, overlay.png, curve.png and "
          f"history.json in {out}")
    return 0


def _target(option, path, count, suffix):
    """Where image ``path``'s output goes: the file itself for one image, else a directory."""
    if option is None:
        return None
    if count == 1 and not Path(option).is_dir():
        return Path(option)
    directory = Path(option)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{Path(path).stem}{suffix}.png"


def _segment(args):
    import minicnn
    from minicnn.data import load_image

    from .palette import overlay, save_mask_png
    from .training import predict_masks

    if not args.model:
        raise SystemExit("minicnn segment: give the model file with --model FILE (one saved by "
                         "'minicnn segment train')")
    if not args.output and not args.overlay:
        raise SystemExit("minicnn segment: give -o mask.png and/or --overlay overlay.png")
    model = minicnn.load(args.model).eval()
    channels = model.inputs[0].shape[0] if hasattr(model, "inputs") else 3
    images = args.words
    for path in images:
        image = load_image(path, mode="L" if channels == 1 else "RGB")
        mask = predict_masks(model, image[None], num_threads=args.threads)[0]
        target = _target(args.output, path, len(images), "_mask")
        if target is not None:
            save_mask_png(mask, target)
        target_overlay = _target(args.overlay, path, len(images), "_overlay")
        if target_overlay is not None:
            overlay(image, mask).save(target_overlay)
        classes, counts = np.unique(mask, return_counts=True)
        share = ", ".join(f"{c}: {100 * n / mask.size:.1f}%" for c, n in zip(classes, counts,
                                                                             strict=True))
        print(f"{path}: {mask.shape[1]}x{mask.shape[0]} -> "
              f"{target or target_overlay} (classes {share})")
    return 0


def run(args):
    if args.words[0] == "train":
        if len(args.words) > 1:
            raise SystemExit(f"minicnn segment train: unexpected arguments {args.words[1:]}")
        return _train(args)
    return _segment(args)


def command():
    from minicnn import Command
    return Command("segment", "semantic segmentation: 'segment train' trains FCN-8s / U-Net; "
                   "'segment IMAGE... --model FILE -o mask.png' writes class masks",
                   add_arguments, run)


def main(argv=None):
    """Run the command without the ``minicnn`` entry point (``python -m minicnn_segmentation``)."""
    parser = argparse.ArgumentParser(prog="minicnn segment")
    add_arguments(parser)
    return run(parser.parse_args(argv))
