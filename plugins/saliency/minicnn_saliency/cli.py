"""``minicnn saliency``: where a classifier looks, as a heat map over the image.

::

    minicnn saliency MODEL IMAGE [--class K] [-o heat.png] [--method cam|gradcam|gradient]
                     [--layer NODE] [--alpha A] [--cmap jet] [--top-k K] [--labels FILE]

MODEL is a model file saved by ``minicnn.save`` (``.mcnn``), a Keras / TensorFlow.js
``model.json`` (its ``labels.txt`` beside it is read when present), or a zoo name (random weights
unless ``--weights FILE``). The image is fed at the size the model declares (else its own size,
or ``--size H W``); the overlay PNG has the image's own size.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from .graph import SaliencyError, input_shape
from .methods import METHODS, saliency
from .render import COLORMAPS


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL",
                        help="a .mcnn file (minicnn.save), a TF.js model.json, or a zoo name")
    parser.add_argument("image", metavar="IMAGE", help="the image to explain")
    parser.add_argument("--class", dest="target", metavar="K",
                        help="the class to explain: an index, or a name from --labels "
                        "(default: the top class)")
    parser.add_argument("-o", "--output", help="the overlay PNG (default: IMAGE's name with "
                        "_METHOD.png, in the current directory)")
    parser.add_argument("--method", choices=METHODS, default="gradcam",
                        help="cam: class activation map (models ending in global average "
                        "pooling + Linear); gradcam: Grad-CAM at --layer (default); gradient: "
                        "input-gradient saliency (--smooth N for SmoothGrad)")
    parser.add_argument("--layer", metavar="NODE",
                        help="gradcam: the node (default: the last feature map before the head)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="weight of the heat map in the overlay, 0..1 (default 0.5)")
    parser.add_argument("--cmap", choices=COLORMAPS, default="jet", help="colour map")
    parser.add_argument("--top-k", type=int, default=0, metavar="K",
                        help="also print the K top classes with their probabilities")
    parser.add_argument("--labels", help="class names, one a line")
    parser.add_argument("--smooth", type=int, default=0, metavar="N",
                        help="gradient: average over N noisy copies (SmoothGrad)")
    parser.add_argument("--noise", type=float, default=0.15,
                        help="SmoothGrad noise, a fraction of the image's value range")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="resize the image to this before the model sees it")
    zoo = parser.add_argument_group("zoo models")
    zoo.add_argument("--weights", help="a weights, model or checkpoint file to load by name")
    zoo.add_argument("--num-classes", type=int, default=10)
    zoo.add_argument("--in-channels", type=int, default=3)


def load_model(spec, weights=None, num_classes=10, in_channels=3):
    """``(model, labels path or None)`` for a model file, a TF.js model.json or a zoo name."""
    import minicnn
    path = Path(spec)
    if path.is_file():
        if weights:
            raise SaliencyError("--weights goes with a zoo name; a model file has its weights")
        if path.suffix.lower() == ".json":
            from minicnn.io import import_keras_tfjs
            labels = path.with_name("labels.txt")
            return import_keras_tfjs(path), labels if labels.is_file() else None
        return minicnn.load(str(path)), None
    models = minicnn.get_registry().models
    if spec not in models:
        raise SaliencyError(f"{spec!r} is neither a model file nor a zoo model; zoo models: "
                            f"{', '.join(sorted(models))}")
    import inspect
    factory = models[spec][0]
    kwargs = {"num_classes": num_classes}
    if "in_channels" in inspect.signature(factory).parameters:
        kwargs["in_channels"] = in_channels
    model = factory(**kwargs)
    if weights:
        model.load_weights(weights)
    else:
        print(f"minicnn saliency: {spec} has random weights (give --weights FILE)",
              file=sys.stderr)
    return model, None


def _input_spec(model):
    """(channels, (H, W) or None) the model declares."""
    shape = input_shape(model)
    if shape is not None and len(shape) == 3:
        size = tuple(shape[1:]) if None not in shape[1:] else None
        return shape[0] or 3, size
    for _, module in model.named_modules():
        channels = getattr(module, "in_channels", None)
        if isinstance(channels, int):
            return channels, None
    return 3, None


def _class_index(target, labels):
    if target is None:
        return None
    try:
        return int(target)
    except ValueError:
        pass
    if labels and target in labels:
        return labels.index(target)
    raise SaliencyError(f"--class {target!r}: not an index" +
                        (" nor a name in the labels" if labels else " (give --labels FILE to "
                         "name classes)"))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def run(args):
    from minicnn.data import load_image
    from minicnn.viz import to_rgb

    if not 0.0 <= args.alpha <= 1.0:
        raise SaliencyError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.top_k < 0:
        raise SaliencyError(f"--top-k must be >= 0, got {args.top_k}")
    options = {}
    if args.method == "gradient":
        options = {"smooth": args.smooth, "noise": args.noise}
    elif args.smooth:
        raise SaliencyError("--smooth goes with --method gradient")
    if not Path(args.image).is_file():
        raise SaliencyError(f"{args.image}: no such image file")
    model, labels_path = load_model(args.model, args.weights, args.num_classes,
                                    args.in_channels)
    labels_path = args.labels or labels_path
    labels = Path(labels_path).read_text().splitlines() if labels_path else None
    channels, size = _input_spec(model)
    size = tuple(args.size) if args.size else size
    mode = "L" if channels == 1 else "RGB"
    x = load_image(args.image, mode=mode, size=size)
    original = load_image(args.image, mode="RGB")
    result = saliency(model, x[None], args.method, _class_index(args.target, labels),
                      args.layer, **options)
    output = Path(args.output or f"{Path(args.image).stem}_{args.method}.png")
    picture = result.overlay(to_rgb(original), alpha=args.alpha, cmap=args.cmap)
    picture.save(output)

    def name(k):
        return f"{k} '{labels[k]}'" if labels and k < len(labels) else str(k)

    scores = result.scores[0].astype(np.float64)
    probs = _softmax(scores)
    k = int(result.classes[0])
    where = f" at node '{result.layer}' ({result.maps.shape[1]}x{result.maps.shape[2]})" \
        if result.layer else ""
    print(f"{args.image}: class {name(k)} (score {scores[k]:.4g}, p {100 * probs[k]:.1f}%); "
          f"{result.method}{where} -> {output} ({picture.width}x{picture.height})")
    for rank, i in enumerate(np.argsort(-probs)[:args.top_k], 1):
        print(f"  {rank}. {name(int(i))}: {100 * probs[i]:.2f}% (score {scores[i]:.4g})")
    return 0


def command():
    from minicnn import Command
    return Command("saliency", "class activation maps, Grad-CAM and input-gradient saliency: "
                   "'saliency MODEL IMAGE --class K -o heat.png' writes the heat over the image",
                   add_arguments, run)


def main(argv=None):
    """Run the command without the ``minicnn`` entry point (``python -m minicnn_saliency``)."""
    parser = argparse.ArgumentParser(prog="minicnn saliency")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from minicnn import MinicnnError
    try:
        return run(args)
    except MinicnnError as exc:
        print(f"minicnn saliency: error: {exc}", file=sys.stderr)
        return 1
