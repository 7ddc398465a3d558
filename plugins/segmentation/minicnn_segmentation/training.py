"""Training and inference for segmentation models.

:class:`minicnn.train.Trainer` reports classification top-k accuracy, so segmentation has its own
small loop built from the same pieces: :class:`minicnn.data.DataLoader` (seeded shuffling,
prefetch; batches of a :class:`MaskDataset`), ``nn.CrossEntropyLoss(ignore_index=255)`` over
``(N, C, H, W)`` logits, SGD or Adam, a cosine schedule stepped per batch, a tqdm bar, and
validation by mean IoU after every epoch. One step is::

    logits = model(x); value = loss(logits, y); model.backward(loss.backward(), input_grad=False)
    optimizer.step(); scheduler.step()
"""

import time

import numpy as np
from minicnn import InputError, NonFiniteError, cpu_threads, nn, optim
from minicnn.data import DataLoader

from .datasets import IGNORE_INDEX, as_mask_dataset
from .metrics import SegmentationMetrics
from .models import size_multiple


def make_loader(dataset, batch_size=16, shuffle=False, seed=0, prefetch=2, drop_last=False):
    """A :class:`minicnn.data.DataLoader` over (image, mask) samples: batches ``(x float32
    (N, C, H, W), y int64 (N, H, W))``."""
    return DataLoader(as_mask_dataset(dataset), batch_size=batch_size, shuffle=shuffle, seed=seed,
                      prefetch=prefetch, drop_last=drop_last)


def evaluate_segmentation(model, data, num_classes=None, batch_size=32,
                          ignore_index=IGNORE_INDEX, loss=None, num_threads=None):
    """Mean IoU, pixel accuracy, per-class IoU (and the loss, if ``loss`` is given) of ``model``
    over ``data`` (a dataset of (image, mask) pairs or a loader of batches), in eval mode.

    Returns ``{"miou", "pixel_acc", "mean_class_acc", "iou"[, "loss"]}``. ``num_threads``: see
    :func:`cpu_threads`.
    """
    loader = data if isinstance(data, DataLoader) else make_loader(data, batch_size)
    was_training = model.training
    model.eval()
    metrics, total, count = None, 0.0, 0
    try:
        with cpu_threads(num_threads):
            for x, y in loader:
                logits = model(x)
                if metrics is None:
                    metrics = SegmentationMetrics(num_classes or logits.shape[1], ignore_index)
                metrics.update(logits, y)
                if loss is not None:
                    total += loss(logits, y) * len(x)
                    count += len(x)
    finally:
        model.train(was_training)
    if metrics is None:
        raise InputError("evaluate_segmentation: the data set is empty")
    result = metrics.compute()
    if loss is not None:
        result["loss"] = total / count
    return result


def train_segmentation(model, train_set, val_set=None, *, epochs=10, batch_size=16, lr=1e-3,
                       optimizer="adam", momentum=0.9, weight_decay=0.0, schedule="cosine",
                       ignore_index=IGNORE_INDEX, seed=0, progress=True, log=print,
                       on_epoch_end=None, val_batch_size=64, num_threads=None):
    """Train ``model`` on (image, mask) samples; returns the history, one dict per epoch.

    :param optimizer: ``"adam"`` (default) or ``"sgd"`` (with ``momentum``).
    :param schedule: ``"cosine"`` (cosine annealing to 0, stepped every batch) or ``"none"``.
    :param seed: the loader's shuffling seed (``minicnn.manual_seed`` governs the weights).
    :param log: called with one line per epoch (None: silent).
    :param on_epoch_end: called as ``on_epoch_end(epoch, logs)``; returning True stops training.
    :param num_threads: numba threads for the kernels during training (None: numba's setting; see
        :func:`cpu_threads`).

    Each epoch's dict has ``epoch``, ``loss`` (training mean), ``lr``, ``seconds`` (since the
    start) and, with ``val_set``, ``val_loss``, ``val_miou``, ``val_pixel_acc``,
    ``val_mean_class_acc`` and ``val_iou`` (per class).
    """
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"train_segmentation: optimizer must be 'adam' or 'sgd', got "
                         f"{optimizer!r}")
    if schedule not in ("cosine", "none"):
        raise ValueError(f"train_segmentation: schedule must be 'cosine' or 'none', got "
                         f"{schedule!r}")
    # a smaller last batch is dropped: batch norm over one image of a 1x1 map cannot train
    loader = make_loader(train_set, batch_size, shuffle=True, seed=seed,
                         drop_last=len(train_set) > batch_size)
    val_loader = make_loader(val_set, val_batch_size) if val_set is not None else None
    scheduler = optim.CosineAnnealingLR(opt, T_max=max(1, epochs * len(loader))) \
        if schedule == "cosine" else None
    loss_fn = nn.CrossEntropyLoss(ignore_index=ignore_index)
    with cpu_threads(num_threads):
        return _fit(model, opt, scheduler, loss_fn, loader, val_loader, epochs, ignore_index,
                    progress, log, on_epoch_end)


def _fit(model, opt, scheduler, loss_fn, loader, val_loader, epochs, ignore_index, progress, log,
         on_epoch_end):
    history, start, step = [], time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        model.train()
        lr_now = opt.param_groups[0]["lr"]
        total, count = 0.0, 0
        batches = loader
        if progress:
            from tqdm import tqdm
            batches = tqdm(loader, desc=f"epoch {epoch}/{epochs}", leave=False,
                           dynamic_ncols=True, mininterval=0.5)
        for x, y in batches:
            logits = model(x)
            value = loss_fn(logits, y)
            if not np.isfinite(value):
                raise NonFiniteError(f"train_segmentation: loss is {value} at step {step} (epoch "
                                     f"{epoch}); lower the learning rate (lr={lr_now})")
            model.backward(loss_fn.backward(), input_grad=False)
            opt.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            total += value * len(x)
            count += len(x)
            if progress:
                batches.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        logs = {"epoch": epoch, "loss": total / max(count, 1), "lr": lr_now}
        if val_loader is not None:
            result = evaluate_segmentation(model, val_loader, ignore_index=ignore_index,
                                           loss=loss_fn)
            logs.update({f"val_{k}": v for k, v in result.items()})
        logs["seconds"] = time.perf_counter() - start
        history.append(logs)
        if log is not None:
            line = f"epoch {epoch}/{epochs}: loss {logs['loss']:.4f}"
            if val_loader is not None:
                line += (f", val loss {logs['val_loss']:.4f}, val mIoU {logs['val_miou']:.4f}, "
                         f"pixel accuracy {logs['val_pixel_acc']:.4f}")
            log(line + f" ({logs['seconds']:.1f} s)")
        if on_epoch_end is not None and on_epoch_end(epoch, logs):
            break
    return history


def _pad_to(x, multiple):
    """Pad (N, C, H, W) at the bottom/right up to multiples of ``multiple`` (mirrored)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    return np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric"))


def predict_logits(model, images, batch_size=16, multiple=None, num_threads=None):
    """Per-pixel scores ``(N, classes, H, W)`` of images ``(N, C, H, W)`` of any size, in eval
    mode: images are padded (mirrored) at the bottom/right up to the model's size multiple
    (:func:`size_multiple`) and the scores cropped back."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise InputError(f"predict: images must be (N, C, H, W) or (C, H, W), got shape "
                         f"{np.shape(images)}")
    multiple = multiple or size_multiple(model)
    h, w = x.shape[-2:]
    was_training = model.training
    model.eval()
    try:
        with cpu_threads(num_threads):
            outs = [model(_pad_to(x[i:i + batch_size], multiple))[..., :h, :w]
                    for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs, axis=0)


def predict_masks(model, images, batch_size=16, multiple=None, num_threads=None):
    """Class masks ``(N, H, W) int64`` (argmax of :func:`predict_logits`)."""
    return predict_logits(model, images, batch_size, multiple, num_threads).argmax(axis=1)
