"""``minicnn detect``: train a Faster R-CNN, or detect objects in images with a saved one.

::

    minicnn detect train [--preset small] [--data shapes|digits|voc|coco] [--data-dir DIR]
                         [--epochs N] [--train-size N] [--size S] [--output DIR] [--threads T]
    minicnn detect IMAGE... --model runs/detect/detector.mcnn [-o boxes.png] [--score 0.5]

The first word decides: ``train`` trains (write ``./train`` to detect in a file named train);
anything else is a list of images.
"""

import argparse
import json
import time
from pathlib import Path

TRAIN_DEFAULTS = {"preset": "small", "epochs": 4, "size": 64, "train_size": 2400,
                  "val_size": 300}


def add_arguments(parser):
    parser.add_argument("words", nargs="+", metavar="train | IMAGE",
                        help="'train' to train a detector, or image files to detect objects in")
    parser.add_argument("--model", help="detect: the detector file saved by 'minicnn detect "
                        "train' (one .mcnn file: graph, weights and settings)")
    parser.add_argument("-o", "--output", help="train: output directory (default runs/detect); "
                        "detect: a PNG with the boxes drawn (a directory for several images)")
    parser.add_argument("--score", type=float, default=0.5,
                        help="detect: the score threshold of the boxes printed and drawn")
    parser.add_argument("--threads", type=int, default=None,
                        help="numba threads (default: numba's; 1 is often faster on a busy "
                        "two-core machine)")
    train = parser.add_argument_group("training")
    train.add_argument("--preset", default=TRAIN_DEFAULTS["preset"],
                       help="small (generated data), py-faster-rcnn or torchvision")
    train.add_argument("--data", choices=("shapes", "digits", "voc", "coco"), default="shapes")
    train.add_argument("--data-dir", help="voc: the VOC2007 folder; coco: the image folder")
    train.add_argument("--annotations", help="coco: the instances JSON file")
    train.add_argument("--epochs", type=int, default=TRAIN_DEFAULTS["epochs"])
    train.add_argument("--size", type=int, default=TRAIN_DEFAULTS["size"],
                       help="image side in pixels (generated data; VOC/COCO are resized to it)")
    train.add_argument("--train-size", type=int, default=TRAIN_DEFAULTS["train_size"])
    train.add_argument("--val-size", type=int, default=TRAIN_DEFAULTS["val_size"])
    train.add_argument("--num-classes", type=int, default=3, help="shapes: 1..6 classes")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-progress", action="store_true")


def _datasets(args):
    from minicnn.data import Subset

    from .datasets import DetDigits, DetShapes
    from .readers import COCODetection, VOCDetection
    if args.data == "shapes":
        return (DetShapes(args.train_size, args.size, args.num_classes, seed=args.seed),
                DetShapes(args.val_size, args.size, args.num_classes, seed=args.seed + 10_000))
    if args.data == "digits":
        return (DetDigits(args.train_size, args.size, seed=args.seed, first_digit=0,
                          num_digits=8000),
                DetDigits(args.val_size, args.size, seed=args.seed + 10_000, first_digit=8000,
                          num_digits=2000))
    if not args.data_dir:
        raise SystemExit(f"minicnn detect train: --data {args.data} needs --data-dir")
    if args.data == "voc":
        data = VOCDetection(args.data_dir, "trainval", size=args.size)
    else:
        if not args.annotations:
            raise SystemExit("minicnn detect train: --data coco needs --annotations FILE")
        data = COCODetection(args.data_dir, args.annotations, size=args.size)
    n = len(data)
    val = min(args.val_size, max(1, n // 5))
    return (Subset(data, range(0, min(args.train_size, n - val))),
            Subset(data, range(n - val, n)))


def _classes(dataset):
    inner = getattr(dataset, "dataset", dataset)
    return tuple(inner.classes), inner.num_classes


def _train(args):
    import minicnn
    from minicnn.plot import line_chart

    from .config import preset
    from .draw import detection_grid
    from .model import FasterRCNN, small_backbone
    from .persist import save_detector
    from .training import detect_all, train_detector

    start = time.perf_counter()
    minicnn.manual_seed(args.seed)
    train_set, val_set = _datasets(args)
    names, k = _classes(train_set)
    config = preset(args.preset, class_names=names)
    if args.batch_size:
        config = config.replace(batch_size=args.batch_size)
    if args.lr:
        config = config.replace(lr=args.lr)
    detector = FasterRCNN(k, small_backbone(3), config, seed=args.seed) \
        if args.preset == "small" else _large(args.preset, k, config, args.seed)
    out = Path(args.output or "runs/detect")
    out.mkdir(parents=True, exist_ok=True)
    history = train_detector(detector, train_set, val_set, epochs=args.epochs, seed=args.seed,
                             progress=not args.no_progress, num_threads=args.threads)
    save_detector(detector, out / "detector.mcnn")
    line_chart({"val mAP@0.5": [h["val_map50"] for h in history],
                "val mAP@0.5:0.95": [h["val_coco_map"] for h in history]},
               str(out / "curve.png"), title=f"Faster R-CNN on {args.data}", xlabel="epoch")
    picks = list(range(min(8, len(val_set))))
    images = [val_set[i][0] for i in picks]
    dets, targets = detect_all(detector, _subset(val_set, picks), num_threads=args.threads)
    detection_grid(images, dets, targets, names, scale=3).save(out / "detections.png")
    (out / "history.json").write_text(json.dumps(history, indent=1, default=float))
    final = history[-1]
    print(f"Faster R-CNN on {args.data}: validation mAP@0.5 {final['val_map50']:.4f}, "
          f"mAP@0.5:0.95 {final['val_coco_map']:.4f} after {len(history)} epoch(s), "
          f"{time.perf_counter() - start:.1f} s; detector.mcnn, curve.png, "
          f"detections.png and history.json in {out}")
    return 0


def _subset(dataset, picks):
    from minicnn.data import Subset
    return Subset(dataset, picks)


def _large(name, k, config, seed):
    """py-faster-rcnn / torchvision presets with a VGG-like backbone of stride 16."""
    from .model import FasterRCNN, small_backbone
    return FasterRCNN(k, small_backbone(3, (64, 128, 256, 512, 512)), config, seed=seed)


def _target(option, path, count):
    if option is None:
        return None
    if count == 1 and not Path(option).is_dir():
        return Path(option)
    directory = Path(option)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{Path(path).stem}_boxes.png"


def _detect(args):
    from minicnn.data import load_image

    from .draw import draw_boxes
    from .persist import load_detector
    from .training import cpu_threads

    if not args.model:
        raise SystemExit("minicnn detect: give the detector with --model FILE (saved by "
                         "'minicnn detect train')")
    detector = load_detector(args.model)
    names = detector.class_names
    for path in args.words:
        image = load_image(path, mode="RGB")
        with cpu_threads(args.threads):
            det = detector.detect(image[None])[0]
        keep = det["scores"] >= args.score
        boxes, scores, labels = det["boxes"][keep], det["scores"][keep], det["labels"][keep]
        print(f"{path}: {int(keep.sum())} object(s)")
        for b, s, lab in zip(boxes, scores, labels, strict=True):
            name = names[lab] if names and lab < len(names) else str(lab)
            print(f"  {name:>12s} {s:.3f}  [{b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}, {b[3]:.1f}]")
        target = _target(args.output, path, len(args.words))
        if target is not None:
            scale = max(1, 256 // max(image.shape[1:]))
            draw_boxes(image, boxes, labels, scores, names, scale=scale).save(target)
    return 0


def run(args):
    if args.words[0] == "train":
        if len(args.words) > 1:
            raise SystemExit(f"minicnn detect train: unexpected arguments {args.words[1:]}")
        return _train(args)
    return _detect(args)


def command():
    from minicnn import Command
    return Command("detect", "object detection: 'detect train' trains Faster R-CNN; "
                   "'detect IMAGE... --model FILE' prints and draws boxes", add_arguments, run)


def main(argv=None):
    """Run the command without the ``minicnn`` entry point (``python -m minicnn_detection``)."""
    parser = argparse.ArgumentParser(prog="minicnn detect")
    add_arguments(parser)
    return run(parser.parse_args(argv))

