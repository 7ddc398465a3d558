"""What a CNN learns: LeNet-5's first-layer filters before and after training, and the feature maps
of one image at every convolution, activation and pooling node, layer by layer.

    python examples/learned_features.py --out docs/pictures       # about a minute on 2 cores
    python examples/learned_features.py --out /tmp/pics --small   # a few seconds
    python examples/learned_features.py --data mnist              # ../shared/data/mnist

Writes ``learned_filters.png`` (the 6 filters of conv1 at initialisation and after training, and
the 16 x 6 filters of conv2 after training; blue negative, white zero, red positive, each filter
on its own scale) and ``feature_maps.png`` (one row per node: every channel of its output for one
validation image, labelled with the node name, its output shape and its receptive field from
``model.summary()``). Signed maps (convolution outputs) are drawn blue-white-red, non-negative ones
(after ReLU) with the viridis map; one scale per row, so channels of a row compare.

Data: the built-in generated ``Shapes`` (default, no download) or MNIST from
``../shared/data/mnist`` (the 10,000 test digits there: 8,000 to train, 2,000 to validate).
"""

import sys

import numpy as np

import minicnn
from minicnn import data, nn, optim, viz, zoo
from minicnn.summary import format_field
from minicnn.train import Trainer

# isort: split
from _common import SHARED_DATA, Timer, out_dir, parser

TILE = 84          # feature maps are enlarged by whole factors to about this many pixels


def datasets(kind, n_train, n_val, data_dir=None):
    """(train, val, class names)."""
    if kind == "mnist":
        root = data_dir or SHARED_DATA / "mnist"
        full = data.MNIST(root, split="test")
        n_train, n_val = min(n_train, 8000), min(n_val, len(full) - 8000)
        return (data.Subset(full, range(n_train)), data.Subset(full, range(8000, 8000 + n_val)),
                [str(d) for d in range(10)])
    train = data.Shapes(n_train, seed=0)
    val = data.Shapes(n_val, seed=0, train=False)
    return train, val, list(train.classes)


def train(model, train_set, val_set, epochs, progress):
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt,
                      scheduler=optim.CosineAnnealingLR(opt, epochs), progress=progress)
    loader = data.DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
    trainer.fit(loader, epochs=epochs)
    return trainer.evaluate(data.DataLoader(val_set, batch_size=500))


def filter_tiles(weights, scale):
    """One diverging tile per 2-D kernel of ``weights`` (F, ..., kh, kw), each filter (first axis)
    on its own symmetric scale so that weak filters still show their pattern."""
    tiles = []
    for f in weights:
        limit = float(np.abs(f).max()) or 1.0
        for k in f.reshape(-1, *weights.shape[-2:]):
            tiles.append(viz.upscale(viz.colormap(k, "diverging", vmax=limit), scale))
    return tiles


def filters_picture(before, after, conv2):
    """The conv1 filters before / after training and the conv2 filters, labelled rows."""
    scale = max(1, 70 // before.shape[-1])
    n = len(before)
    first = [viz.grid(filter_tiles(w, scale), nrow=n, pad=6,
                      labels=[f"{i}: max |w| {np.abs(w[i]).max():.2f}" for i in range(n)])
             for w in (before, after)]
    out_c, in_c = conv2.shape[:2]
    # conv2: one column per output filter (one scale per column), one row per input channel
    tiles = filter_tiles(conv2, max(1, 36 // conv2.shape[-1]))
    order = [f * in_c + c for c in range(in_c) for f in range(out_c)]
    second = viz.grid([tiles[k] for k in order], nrow=out_c, pad=3)
    picture = viz.rows(first + [second],
                       [f"conv1 at\ninitialisation\n{tuple(before.shape)}",
                        f"conv1 after\ntraining\n{tuple(after.shape)}",
                        f"conv2 after\ntraining\n{tuple(conv2.shape)}\ncolumns: {out_c} "
                        f"filters\nrows: their {in_c}\ninput channels"])
    return viz.titled(picture, "LeNet-5's learned filters (blue < 0 < red; each filter on its "
                               "own scale, its largest |weight| under it)")


def feature_rows(model, image, max_channels):
    """(tiles per row, row labels): the input, then every node with a spatial output."""
    summary = model.summary(image.shape)
    model.eval()
    logits = model(image[None])
    tiles = [[viz.upscale(viz.colormap(image[c], "gray", 0, 1), max(1, TILE // image.shape[1]))
              for c in range(image.shape[0])]]
    labels = [f"input\n{tuple(image.shape)}"]
    for row in summary.rows:
        shape = row["shapes"][0]
        if len(shape) != 4:
            continue
        value = model.activation(row["name"])[0][:max_channels]
        factor = max(1, round(TILE / shape[2]))
        if value.min() < 0:
            limit = float(np.abs(value).max()) or 1.0
            maps = [viz.colormap(m, "diverging", vmax=limit) for m in value]
        else:
            maps = [viz.colormap(m, "viridis", 0, float(value.max()) or 1.0) for m in value]
        tiles.append([viz.upscale(m, factor) for m in maps])
        rf, jump = format_field(row["rf"], row["jump"])
        labels.append(f"{row['name']} ({row['type']})\n{tuple(shape[1:])}\nRF {rf}, jump {jump}")
    return tiles, labels, logits[0]


def first_correct(model, dataset, wanted):
    """Index of the first sample of class ``wanted`` that ``model`` classifies right (else the
    first of that class, else 0)."""
    candidates = [i for i in range(len(dataset)) if int(dataset[i][1]) == wanted][:64]
    if not candidates:
        return 0
    model.eval()
    predicted = np.argmax(model(np.stack([dataset[i][0] for i in candidates])), axis=1)
    right = [i for i, p in zip(candidates, predicted, strict=True) if p == wanted]
    return (right or candidates)[0]


def maps_picture(model, image, label, classes, max_channels):
    tiles, labels, logits = feature_rows(model, image, max_channels)
    width = max(len(t) for t in tiles)
    grids = [viz.grid(t, nrow=width, pad=4) for t in tiles]
    predicted = int(np.argmax(logits))
    picture = viz.rows(grids, labels)
    title = (f"LeNet-5 feature maps, layer by layer, for one validation image\n"
             f"(label: {classes[label]}, predicted: {classes[predicted]}; "
             f"blue < 0 < red, viridis for maps >= 0, one scale per row)")
    return viz.titled(picture, title), len(tiles)


def main(argv=None):
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("shapes", "mnist"), default="shapes",
                   help="generated shapes or MNIST digits")
    p.add_argument("--data-dir", help="MNIST folder (default ../shared/data/mnist)")
    p.add_argument("--train-size", type=int, help="training images (default 10000; --small 1024)")
    p.add_argument("--epochs", type=int, help="default 8; --small 2")
    p.add_argument("--index", type=int, default=None,
                   help="validation image to show (default: the first star / digit 8 "
                        "classified right)")
    p.add_argument("--max-channels", type=int, default=16, help="channels shown per node")
    p.add_argument("--seed", type=int, default=0, help="weights, data and shuffling")
    args = p.parse_args(argv)
    n_train = args.train_size or (1024 if args.small else 10000)
    epochs = args.epochs or (2 if args.small else 8)
    out = out_dir(args)
    minicnn.manual_seed(args.seed)
    train_set, val_set, classes = datasets(args.data, n_train, 200 if args.small else 1000,
                                           args.data_dir)
    model = zoo.lenet5(num_classes=len(classes))
    before = model["conv1"].weight.data.copy()
    with Timer() as t:
        metrics = train(model, train_set, val_set, epochs, progress=not args.small)
    print(f"LeNet-5 on {args.data}: {len(train_set)} images x {epochs} epochs in {t.seconds:.1f} "
          f"s; validation accuracy {metrics['top1']:.3f}")
    after = model["conv1"].weight.data.copy()
    filters = filters_picture(before, after, model["conv2"].weight.data)
    filters_path = out / "learned_filters.png"
    filters.save(filters_path)
    index = args.index
    if index is None:           # the first validation star (digit 8) the network gets right
        wanted = classes.index("star") if "star" in classes else 8 % len(classes)
        index = first_correct(model, val_set, wanted)
    image, label = val_set[index]
    maps, n_rows = maps_picture(model, np.asarray(image, np.float32), int(label), classes,
                                args.max_channels)
    maps_path = out / "feature_maps.png"
    maps.save(maps_path)
    for path, pic in ((filters_path, filters), (maps_path, maps)):
        print(f"wrote {path} ({pic.width}x{pic.height})")
    return {"filters_path": filters_path, "maps_path": maps_path, "accuracy": metrics["top1"],
            "before": before, "after": after, "rows": n_rows, "model": model}


if __name__ == "__main__":
    main(sys.argv[1:])
