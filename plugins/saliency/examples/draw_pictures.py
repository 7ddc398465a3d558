"""Draw the saliency pictures of the README: a small CNN ending in global average pooling,
trained on minicnn's generated Shapes, and Tiny Darknet on a photo of a cat.

::

    python plugins/saliency/examples/draw_pictures.py --out docs/pictures    # ~2 min, 2 cores
    python plugins/saliency/examples/draw_pictures.py --small --out /tmp/x   # seconds

Writes ``saliency_cam.png`` (class activation maps: test images, then a mosaic of four shapes
with the CAM of each of its four classes), ``saliency_gradcam.png`` (Grad-CAM at two depths and
SmoothGrad on the same images) and, when ``../shared/data`` is beside the checkout,
``saliency_darknet.png`` (Tiny Darknet on chelsea.png: CAM, Grad-CAM, SmoothGrad).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))          # the plugin, from a checkout

import minicnn  # noqa: E402
from minicnn import data, nn, optim, viz  # noqa: E402
from minicnn.train import Trainer  # noqa: E402

from minicnn_saliency import cam, grad_cam, input_gradient  # noqa: E402

SHARED = HERE.parents[4] / "shared" / "data"
SCALE = 3                                         # picture pixels per image pixel (Shapes)


def gap_cnn(num_classes, width=16):
    """conv-BN-ReLU x3 (one 2x2 max pool after the first) -> global average pool -> Linear."""
    x = minicnn.Input((3, None, None))
    h = x
    for i, (cin, cout) in enumerate([(3, width), (width, 2 * width), (2 * width, 4 * width)], 1):
        h = nn.Conv2d(cin, cout, 3, padding=1, bias=False)(h, name=f"conv{i}")
        h = nn.ReLU()(nn.BatchNorm2d(cout)(h, name=f"bn{i}"), name=f"relu{i}")
        if i == 1:
            h = nn.MaxPool2d(2)(h, name="pool1")
    h = nn.Flatten()(nn.GlobalAvgPool2d()(h, name="gap"), name="flatten")
    return minicnn.Model(x, nn.Linear(4 * width, num_classes)(h, name="fc"))


def train(args):
    minicnn.manual_seed(0)
    train_set = data.Shapes(args.train_size, size=args.size, channels=3, seed=0,
                            num_classes=args.classes)
    val_set = data.Shapes(args.val_size, size=args.size, channels=3, seed=1,
                          num_classes=args.classes)
    model = gap_cnn(args.classes, args.width)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt,
                      scheduler=optim.CosineAnnealingLR(opt, args.epochs), progress=False)
    start = time.perf_counter()
    trainer.fit(data.DataLoader(train_set, batch_size=32, shuffle=True, seed=0), args.epochs,
                val_loader=data.DataLoader(val_set, batch_size=200))
    top1 = trainer.history[-1]["val_top1"]
    print(f"trained the GAP CNN on Shapes ({args.train_size} images {args.size}x{args.size}, "
          f"{args.classes} classes, {args.epochs} epochs) in {time.perf_counter() - start:.0f} s:"
          f" validation accuracy {100 * top1:.1f}%")
    return model.eval(), val_set, top1


def _big(image):
    return viz.upscale(image, SCALE)


def _tile(result, image, k=0, cmap="jet"):
    return _big(np.asarray(result.overlay(image, index=k, alpha=0.5, cmap=cmap)))


def cam_picture(model, val_set, names, count):
    images = np.stack([val_set[i][0] for i in range(count)])
    truth = [int(val_set[i][1]) for i in range(count)]
    result = cam(model, images)
    probs = np.exp(result.scores - result.scores.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    row1 = viz.grid([_big(im) for im in images], nrow=count, labels=[names[t] for t in truth])
    row2 = viz.grid([_tile(result, images[n], n) for n in range(count)], nrow=count,
                    labels=[f"CAM {names[k]} {100 * probs[n, k]:.0f}%"
                            for n, k in enumerate(result.classes)])
    # a mosaic of four test images of different classes: the CAM of each class finds its tile
    picks, seen = [], set()
    for i in range(len(val_set)):
        label = int(val_set[i][1])
        if label not in seen and label in (0, 2, 3, 4):
            picks.append(i)
            seen.add(label)
        if len(picks) == 4:
            break
    tiles = [val_set[i][0] for i in picks]
    mosaic = np.concatenate([np.concatenate(tiles[:2], axis=2),
                             np.concatenate(tiles[2:], axis=2)], axis=1)
    labels = [int(val_set[i][1]) for i in picks]
    maps = [cam(model, mosaic, target=k) for k in labels]
    row3 = viz.grid([_big(mosaic)] + [_tile(m, mosaic) for m in maps], nrow=5,
                    labels=["four test images"] + [f"CAM of '{names[k]}'" for k in labels])
    return viz.titled(viz.rows([row1, row2, row3], labels=["image", "CAM of the\ntop class",
                                                            "one picture,\nfour classes"]),
                      "Class activation maps: sum_c W[k, c] A_c of the last conv maps before "
                      "global average pooling\n(a 3-conv CNN trained on generated Shapes; jet: "
                      "blue low, red high)")


def gradcam_picture(model, val_set, names, count):
    images = np.stack([val_set[i][0] for i in range(count, 2 * count)])
    deep = grad_cam(model, images)
    early = grad_cam(model, images, layer="relu2", target=deep.classes)
    first = grad_cam(model, images, layer="relu1", target=deep.classes)
    smooth = input_gradient(model, images, target=deep.classes, smooth=16, noise=0.1)
    rows = [viz.grid([_big(im) for im in images], nrow=count,
                     labels=[names[k] for k in deep.classes])]
    for result in (deep, early, first, smooth):
        rows.append(viz.grid([_tile(result, images[n], n) for n in range(count)], nrow=count))
    return viz.titled(viz.rows(rows, labels=["image\n(top class)", "Grad-CAM\nrelu3 (20x20)",
                                             "Grad-CAM\nrelu2 (20x20)", "Grad-CAM\nrelu1 (40x40)",
                                             "SmoothGrad\n(16 samples)"]),
                      "Grad-CAM at three depths and input-gradient saliency, same images, "
                      "same class")


def darknet_picture(size=224):
    path = SHARED / "weights" / "darknet-tiny-tfjs" / "model.json"
    photo = SHARED / "images" / "chelsea.png"
    if not path.is_file() or not photo.is_file():
        print(f"no Tiny Darknet or chelsea.png under {SHARED}: saliency_darknet.png skipped")
        return None
    labels = (path.parent / "labels.txt").read_text().splitlines()
    model = minicnn.io.import_keras_tfjs(path).eval()
    x = data.load_image(photo, size=(size, size))
    original = data.load_image(photo)
    gradcam = grad_cam(model, x, layer="leaky_re_lu_12")
    k = int(gradcam.classes[0])
    results = [(cam(model, x, target=k), "CAM: class map conv2d_16 (14x14)"),
               (gradcam, "Grad-CAM at leaky_re_lu_12 (14x14)"),
               (grad_cam(model, x, layer="leaky_re_lu_10", target=k),
                "Grad-CAM at leaky_re_lu_10 (28x28)"),
               (input_gradient(model, x, target=k), "input gradient max_c |dy/dx|"),
               (input_gradient(model, x, target=k, smooth=12, noise=0.1, batch_size=4),
                "SmoothGrad (12 samples)")]
    probs = np.exp(gradcam.scores[0] - gradcam.scores[0].max())
    probs /= probs.sum()
    small = [np.asarray(r.overlay(original, cmap="jet")) for r, _ in results]
    tiles = viz.grid(small, nrow=3, labels=[t for _, t in results], font_size=13)
    return viz.titled(tiles, f"Tiny Darknet (imported from TF.js) on chelsea.png: top class "
                      f"'{labels[k]}' ({100 * probs[k]:.0f}%); where it looks")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="output folder (default: here)")
    parser.add_argument("--small", action="store_true", help="a few seconds: tiny training")
    parser.add_argument("--threads", type=int, default=None, help="numba threads")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--no-darknet", action="store_true")
    args = parser.parse_args(argv)
    if args.small:
        args.epochs, args.train_size, args.val_size, args.width = 1, 64, 64, 4
    if args.threads:
        import numba
        numba.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, val_set, _ = train(args)
    names = data.Shapes.classes
    cam_picture(model, val_set, names, 6).save(out / "saliency_cam.png")
    gradcam_picture(model, val_set, names, 6).save(out / "saliency_gradcam.png")
    written = ["saliency_cam.png", "saliency_gradcam.png"]
    if not args.no_darknet:
        picture = darknet_picture()
        if picture is not None:
            picture.save(out / "saliency_darknet.png")
            written.append("saliency_darknet.png")
    print(f"wrote {', '.join(written)} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
