"""The degradation problem (He et al. 2015, figures 1 and 6): a plain deep network against the same
network with residual connections, trained on the same data with the same settings.

    python examples/degradation.py --out docs/pictures               # depth 20, 4 to 10 min
    python examples/degradation.py --out /tmp/pics --depth 56 --train-size 2000 --epochs 5
    python examples/degradation.py --out /tmp/pics --small           # seconds (what CI runs)

Both networks are ``minicnn.zoo.cifar_resnet(depth, plain=...)`` (``plain20``/``resnet20``,
``plain56``/``resnet56``: the same layers, batch norm after every convolution, with or without the
skip connections), drawn from the same seed and trained on the same generated colour images
(``minicnn.data.Shapes(n, size=32, channels=3, noise=0.3)``, in the same shuffled order) with SGD
(momentum 0.9, weight decay, cosine learning-rate decay per step). Writes ``degradation.png``:
training loss and training error (mean over every ``--every`` steps, against the epoch) and
validation error per epoch for both networks, and ``degradation.json`` with the numbers and wall
times (``degradation56.png`` and ``.json`` for ``--depth 56``).

Residual connections let the gradient reach early layers through the identity path, so a deep
residual net trains at least as well as its shallower self; a plain net of the same depth often
trains *worse* (higher training error: not overfitting, an optimisation difficulty). How clearly
this shows depends on depth and budget: the paper's gap is large at 56 layers and small at 20.
"""

import json
import math
import sys

import numpy as np

import minicnn
from minicnn import data, nn, optim, plot, zoo
from minicnn.metrics import topk_correct
from minicnn.train import Trainer

# isort: split
from _common import Timer, out_dir, parser


def train_one(plain, args, train_set, val_set):
    """Train one network; returns its history (per-step losses/errors, per-epoch metrics)."""
    minicnn.manual_seed(args.seed)
    model = zoo.cifar_resnet(args.depth, num_classes=len(train_set.classes), plain=plain)
    loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    val_loader = data.DataLoader(val_set, batch_size=250)
    steps = len(loader) * args.epochs
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt,
                      scheduler=optim.CosineAnnealingLR(opt, steps), scheduler_interval="step",
                      progress=False)
    name = f"{'plain' if plain else 'ResNet'}-{args.depth}"
    history = {"name": name, "step_loss": [], "step_error": [], "epochs": []}
    with Timer() as t:
        for epoch in range(args.epochs):
            model.train()
            loader.set_epoch(epoch)
            losses, wrong, seen = [], 0, 0
            for x, y in loader:
                value, logits = trainer.train_step(x, y)
                err = 1.0 - topk_correct(logits, y, 1) / len(y)
                history["step_loss"].append(float(value))
                history["step_error"].append(err)
                losses.append(float(value) * len(y))
                wrong += round(err * len(y))
                seen += len(y)
            val = trainer.evaluate(val_loader)
            history["epochs"].append({"epoch": epoch + 1, "loss": sum(losses) / seen,
                                      "error": wrong / seen, "val_loss": val["loss"],
                                      "val_error": 1.0 - val["top1"]})
            e = history["epochs"][-1]
            print(f"  {name} epoch {epoch + 1}/{args.epochs}: train loss {e['loss']:.4f}, "
                  f"train error {100 * e['error']:.1f}%, val error {100 * e['val_error']:.1f}%",
                  flush=True)
    history["seconds"] = t.seconds
    history["steps_per_epoch"] = len(loader)
    history["parameters"] = model.num_parameters()
    return history


def smoothed(values, every, steps_per_epoch):
    """(epoch, mean of each block of ``every`` steps) pairs; x is where the block ends."""
    out = []
    for start in range(0, len(values), every):
        block = values[start:start + every]
        out.append(((start + len(block)) / steps_per_epoch, float(np.mean(block))))
    return out


def chart(histories, every, path, depth):
    spe = histories[0]["steps_per_epoch"]
    panels = [
        {"title": f"training loss (mean of every {every} steps)", "xlabel": "epoch",
         "ylabel": "loss",
         "series": {h["name"]: smoothed(h["step_loss"], every, spe) for h in histories}},
        {"title": f"training error, % (every {every} steps)", "xlabel": "epoch",
         "ylabel": "error %",
         "series": {h["name"]: [(x, 100 * y) for x, y in smoothed(h["step_error"], every, spe)]
                    for h in histories}},
        {"title": f"validation error, % (depth {depth})", "xlabel": "epoch", "ylabel": "error %",
         "series": {h["name"]: [(e["epoch"], 100 * e["val_error"]) for e in h["epochs"]]
                    for h in histories}},
    ]
    return plot.line_charts(panels, path)


def main(argv=None):
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=20, help="6n + 2: 20, 32, 44, 56...")
    p.add_argument("--train-size", type=int, help="training images (default 4000; --small 64)")
    p.add_argument("--val-size", type=int, help="validation images (default 1000; --small 50)")
    p.add_argument("--epochs", type=int, help="default 6; --small 2")
    p.add_argument("--batch-size", type=int, help="default 128; --small 32")
    p.add_argument("--image-size", type=int, help="default 32; --small 16")
    p.add_argument("--lr", type=float, default=0.1, help="initial learning rate (cosine decay)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="SGD's L2 penalty")
    p.add_argument("--every", type=int, help="steps per point of the fine curves (default 2; "
                                             "--small 1)")
    p.add_argument("--noise", type=float, default=0.3,
                   help="pixel noise of the Shapes images (0.3: with Shapes' own 0.1 both "
                        "20-layer nets reach zero training error within 3 epochs)")
    p.add_argument("--seed", type=int, default=0, help="weights, data and shuffling")
    args = p.parse_args(argv)
    small = args.small
    args.train_size = args.train_size or (64 if small else 4000)
    args.val_size = args.val_size or (50 if small else 1000)
    args.epochs = args.epochs or (2 if small else 6)
    args.batch_size = args.batch_size or (32 if small else 128)
    args.image_size = args.image_size or (16 if small else 32)
    every = args.every = args.every or (1 if small else 2)
    out = out_dir(args)
    train_set = data.Shapes(args.train_size, size=args.image_size, channels=3, seed=args.seed,
                            noise=args.noise)
    val_set = data.Shapes(args.val_size, size=args.image_size, channels=3, seed=args.seed,
                          train=False, noise=args.noise)
    print(f"plain-{args.depth} vs ResNet-{args.depth} on {train_set}: {args.epochs} epochs, "
          f"batch {args.batch_size}, SGD lr {args.lr} (cosine), momentum 0.9, weight decay "
          f"{args.weight_decay}")
    with Timer() as total:
        histories = [train_one(plain, args, train_set, val_set) for plain in (True, False)]
    stem = "degradation" if args.depth == 20 else f"degradation{args.depth}"
    path = out / f"{stem}.png"
    image = chart(histories, every, path, args.depth)
    for h in histories:
        last = h["epochs"][-1]
        print(f"{h['name']}: final train loss {last['loss']:.4f}, train error "
              f"{100 * last['error']:.1f}%, val error {100 * last['val_error']:.1f}% "
              f"({h['seconds']:.0f} s, {h['parameters']:,} parameters)")
    record = {"settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
              "every": every, "seconds": total.seconds, "histories": histories}
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path} ({image.width}x{image.height}); total {total.seconds:.0f} s")
    return {"path": path, "histories": histories, "every": every,
            "chance_loss": math.log(len(train_set.classes))}


if __name__ == "__main__":
    main(sys.argv[1:])
