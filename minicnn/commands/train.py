"""``minicnn train``, ``evaluate``, ``predict`` and ``summary``: the framework from the shell.

``minicnn train`` with no arguments trains LeNet-5 on the built-in generated shapes (no download)
and prints its accuracy; ``--data mnist --data-dir DIR`` trains on MNIST's IDX files instead.
Started by an MPI launcher (``mpiexec -n 4 minicnn train ...``) it trains data-parallel over the
ranks (see :mod:`minicnn.distributed`); ``--batch-size`` is then the global batch.
"""

import contextlib
import inspect
import os
import time
from pathlib import Path

import numpy as np

from ..command import Command
from ..registry import get_registry, hookimpl


def _add_data_arguments(parser):
    parser.add_argument("--data", default="shapes",
                        help="dataset: shapes (built in, default), mnist, cifar10, folder")
    parser.add_argument("--data-dir",
                        help="directory of the dataset's files (mnist, cifar10, folder)")
    parser.add_argument("--train-size", type=int, default=10000,
                        help="samples to train on (shapes: generated; others: the first N)")
    parser.add_argument("--val-size", type=int, default=1000, help="samples to validate on")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)


def _add_train_arguments(parser):
    parser.add_argument("--model", default="lenet5",
                        help="a zoo model name (see 'minicnn plugins')")
    _add_data_arguments(parser)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--lr", type=float, default=None, help="default 0.05 (sgd), 1e-3 (adam)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--schedule", choices=("none", "cosine", "step"), default="cosine")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="runs", help="directory for the model, checkpoint, log "
                        "and training-curve PNG")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT's checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("distributed (under mpiexec -n N)")
    group.add_argument("--sync-batchnorm", action="store_true",
                       help="batch-norm statistics over the global batch (default: per rank)")
    group.add_argument("--mpi-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="how long a rank waits for the others before the job is declared "
                            "failed (default 300)")


def load_datasets(args):
    """(train, validation, image shape, class names) for the --data options."""
    from .. import data
    name = args.data
    if name == "shapes":
        train = data.Shapes(args.train_size, seed=args.seed)
        val = data.Shapes(args.val_size, seed=args.seed + 10_000)
        return train, val, train.classes
    if not args.data_dir:
        raise SystemExit(f"minicnn: --data {name} needs --data-dir")
    if name == "mnist":
        try:
            full = data.MNIST(args.data_dir, split="train")
        except data.DatasetNotFoundError:
            full = data.MNIST(args.data_dir, split="test")
            print(f"minicnn: no MNIST training files in {args.data_dir}; splitting the test set "
                  f"({args.train_size} to train, the last {args.val_size} to validate)")
    elif name == "cifar10":
        full = data.CIFAR10(args.data_dir, train=True)
    elif name == "folder":
        full = data.ImageFolder(args.data_dir)
    else:
        factory = get_registry().datasets.get(name)
        if factory is None:
            raise SystemExit(f"minicnn: unknown dataset {name!r}; known: "
                             f"{sorted(get_registry().datasets)}")
        full = factory[0](root=args.data_dir)
    n = len(full)
    train_n = min(args.train_size, n - args.val_size)
    train = data.Subset(full, range(0, train_n))
    val = data.Subset(full, range(n - args.val_size, n))
    classes = getattr(full, "classes", [str(i) for i in range(10)])
    return train, val, classes


def build_model(name, num_classes, in_channels):
    registry = get_registry()
    if name not in registry.models:
        raise SystemExit(f"minicnn: unknown model {name!r}; known: {sorted(registry.models)}")
    factory = registry.models[name][0]
    kwargs = {"num_classes": num_classes}
    if "in_channels" in inspect.signature(factory).parameters:
        kwargs["in_channels"] = in_channels
    return factory(**kwargs)


def _data_parallel(args):
    """A DataParallel when an MPI launcher started this process with several ranks, else None."""
    from ..distributed.launch import launched_by_mpi
    if not launched_by_mpi():
        return None
    from ..distributed import DataParallel
    return DataParallel(sync_batchnorm=args.sync_batchnorm, timeout=args.mpi_timeout)


def _remove_stale_temporaries(out):
    """Temporary files a killed run left beside its outputs (the outputs themselves are written
    atomically, so they are whole)."""
    for pattern in (".checkpoint.safetensors.*.tmp", ".model.mcnn.*.tmp", ".log.csv.*.tmp",
                    "curve.png.tmp.png"):
        for path in out.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()


def _run_train(args):
    dist = _data_parallel(args)
    if dist is None:
        return _train(args, None)
    from ..distributed import abort_on_error
    if dist.is_root:
        print(f"minicnn: {dist.describe()}", flush=True)
    with abort_on_error(dist, prefix="minicnn train"):
        code = _train(args, dist)
        dist.barrier("finishing")
    return code


def _train(args, dist):
    import minicnn

    from .. import callbacks, data, optim
    from ..nn import CrossEntropyLoss
    from ..train import Trainer

    root = dist is None or dist.is_root
    minicnn.manual_seed(args.seed)
    start = time.perf_counter()
    train_set, val_set, classes = load_datasets(args)
    in_channels = train_set[0][0].shape[0]
    model = build_model(args.model, len(classes), in_channels).to(args.device)
    lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 1e-3)
    if args.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum,
                        weight_decay=args.weight_decay)
    else:
        opt = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    scheduler = None
    if args.schedule == "cosine":
        scheduler = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    elif args.schedule == "step":
        scheduler = optim.StepLR(opt, step_size=max(1, args.epochs // 3))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if dist is not None and root:
        _remove_stale_temporaries(out)
    checkpoint = out / "checkpoint.safetensors"
    trainer = Trainer(model, CrossEntropyLoss(), opt, scheduler=scheduler, topk=(1, 5),
                      progress=not args.no_progress, distributed=dist, callbacks=[
                          callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss"),
                          callbacks.CSVLogger(str(out / "log.csv")),
                          callbacks.TrainingCurve(str(out / "curve.png"))])
    if args.resume:
        trainer.load_checkpoint(str(checkpoint))
    train_loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                   seed=args.seed)
    val_loader = data.DataLoader(val_set, batch_size=256)
    trainer.fit(train_loader, epochs=max(0, args.epochs - trainer.epoch), val_loader=val_loader)
    if root:
        minicnn.save(model, str(out / "model.mcnn"))
    final = trainer.history[-1] if trainer.history else trainer.evaluate(val_loader)
    if not root:
        return 0
    top1 = final.get("val_top1", final.get("top1"))
    print(f"{args.model} on {args.data}: validation accuracy {100 * top1:.2f}% "
          f"(top-5 {100 * final.get('val_top5', final.get('top5', float('nan'))):.2f}%) after "
          f"{trainer.epoch} epoch(s), {time.perf_counter() - start:.1f} s; "
          f"model, checkpoint, log and curve in {out}{os.sep}")
    return 0


def _run_evaluate(args):
    import minicnn

    from .. import data
    from ..nn import CrossEntropyLoss
    from ..train import Trainer
    model = minicnn.load(args.model_file)
    _, val_set, _ = load_datasets(args)
    result = Trainer(model, CrossEntropyLoss(), optimizer=None, topk=(1, 5), progress=False) \
        .evaluate(data.DataLoader(val_set, batch_size=256))
    print(f"loss {result['loss']:.4f}  top-1 {100 * result['top1']:.2f}%  "
          f"top-5 {100 * result['top5']:.2f}%  ({len(val_set)} samples)")
    return 0


def _run_predict(args):
    import minicnn

    from ..data import load_image
    from ..layers.softmax import softmax
    model = minicnn.load(args.model_file).eval()
    labels = Path(args.labels).read_text().splitlines() if args.labels else None
    first = model.inputs[0].shape if hasattr(model, "inputs") else None
    for path in args.images:
        size = args.size or (first[1:] if first and None not in first else None)
        channels = args.channels or (first[0] if first else 3)
        image = load_image(path, mode="L" if channels == 1 else "RGB", size=size)
        probs = softmax(model(image[None].astype(np.float32)), dim=1)[0]
        top = np.argsort(-probs)[:args.topk]
        names = [labels[i] if labels and i < len(labels) else str(i) for i in top]
        print(path + ": " + ", ".join(f"{n} {100 * probs[i]:.1f}%" for n, i in zip(names, top,
                                                                                 strict=True)))
    return 0


def _run_summary(args):
    import minicnn
    if os.path.exists(args.model):
        model = minicnn.load(args.model)
    else:
        model = build_model(args.model, args.num_classes, args.in_channels)
    shape = tuple(int(s) for s in args.input_shape.split(",")) if args.input_shape else None
    print(model.summary(shape))
    return 0


def _evaluate_arguments(parser):
    parser.add_argument("model_file", help="a model saved by minicnn (minicnn.save)")
    _add_data_arguments(parser)


def _predict_arguments(parser):
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", dest="model_file", required=True)
    parser.add_argument("--labels", help="class names, one a line")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--channels", type=int, choices=(1, 3))
    parser.add_argument("--topk", type=int, default=5)


def _summary_arguments(parser):
    parser.add_argument("model", help="a zoo name or a saved model file")
    parser.add_argument("--input-shape", help="per-sample shape, e.g. 1,28,28")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--in-channels", type=int, default=1)


@hookimpl
def minicnn_commands():
    return [
        Command("train", "train a model (LeNet-5 on built-in shapes by default)",
                _add_train_arguments, _run_train),
        Command("evaluate", "loss and top-1/top-5 accuracy of a saved model",
                _evaluate_arguments, _run_evaluate),
        Command("predict", "classify images with a saved model", _predict_arguments,
                _run_predict),
        Command("summary", "layers, shapes, parameters and FLOPs of a model", _summary_arguments,
                _run_summary),
    ]
