"""Training and evaluation loops for :class:`FasterRCNN`.

One step::

    losses = detector.forward_backward(images, targets)    # RPN + head losses, one backward
    optimizer.step(); scheduler.step()

:func:`train_detector` runs epochs over a :class:`DetectionDataset` through minicnn's
:class:`minicnn.data.DataLoader` (seeded shuffling, prefetch), with SGD or Adam, a linear warm-up
and a cosine schedule stepped per batch, a tqdm bar, and VOC mAP@0.5 on a validation set after
every epoch. :func:`evaluate_detector` gives VOC mAP@0.5 and COCO mAP@0.5:0.95.
"""

import time

import numpy as np
from minicnn import NonFiniteError, cpu_threads, optim
from minicnn.data import DataLoader

from .metrics import coco_evaluate, voc_evaluate


def detect_all(detector, dataset, batch_size=16, score_thresh=None, num_threads=None):
    """Detections for every image of ``dataset`` (in order) and the targets."""
    loader = DataLoader(dataset, batch_size=batch_size, prefetch=0)
    detections, targets = [], []
    with cpu_threads(num_threads):
        for x, t in loader:
            detections += detector.detect(x, score_thresh=score_thresh)
            targets += t
    return detections, targets


def evaluate_detector(detector, dataset, batch_size=16, coco=True, num_threads=None):
    """``{"map50": VOC AP@0.5 (area), "map50_07": 11-point, "coco_map": AP@0.5:0.95,
    "ap": per class, ...}`` over ``dataset``."""
    detections, targets = detect_all(detector, dataset, batch_size, num_threads=num_threads)
    k = detector.config.num_classes
    voc = voc_evaluate(detections, targets, 0.5, "area")
    result = {"map50": voc["map"], "ap": voc["ap"], "recall": voc["recall"],
              "map50_07": voc_evaluate(detections, targets, 0.5, "11point")["map"]}
    if coco:
        c = coco_evaluate(detections, targets, num_classes=k)
        result.update(coco_map=c["map"], coco_map75=c["map75"])
    return result


def make_optimizer(detector, optimizer=None, lr=None, momentum=None, weight_decay=None):
    cfg = detector.config
    name = optimizer or cfg.optimizer
    lr = cfg.lr if lr is None else lr
    wd = cfg.weight_decay if weight_decay is None else weight_decay
    if name == "sgd":
        return optim.SGD(detector.parameters(), lr=lr,
                         momentum=cfg.momentum if momentum is None else momentum, weight_decay=wd)
    if name == "adam":
        return optim.Adam(detector.parameters(), lr=lr, weight_decay=wd)
    raise ValueError(f"train_detector: optimizer must be 'sgd' or 'adam', got {name!r}")


def train_detector(detector, train_set, val_set=None, *, epochs=5, batch_size=None, lr=None,
                   optimizer=None, warmup=100, seed=0, progress=True, log=print,
                   num_threads=None, on_epoch_end=None, max_seconds=None, eval_batch_size=32):
    """Train ``detector`` end to end; returns the history (one dict per epoch: ``epoch``,
    ``loss`` and its parts, ``lr``, ``seconds`` since the start, and with ``val_set``
    ``val_map50`` and ``val_coco_map``).

    ``batch_size``, ``lr`` and ``optimizer`` default to the detector's config; the learning rate
    warms up linearly over ``warmup`` steps and then follows a cosine to 0 at the end.
    ``max_seconds`` stops after the epoch that crosses it; ``on_epoch_end(epoch, logs)``
    returning True stops too.
    """
    batch_size = batch_size or detector.config.batch_size
    opt = make_optimizer(detector, optimizer, lr)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed,
                        drop_last=len(train_set) > batch_size)
    total = max(1, epochs * len(loader))
    base = opt.param_groups[0]["lr"]

    def rate(step):
        if step < warmup:
            return base * (step + 1) / warmup
        return base * 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total - warmup)))

    history, start, step = [], time.perf_counter(), 0
    with cpu_threads(num_threads):
        for epoch in range(1, epochs + 1):
            sums, count = {}, 0
            batches = loader
            if progress:
                from tqdm import tqdm
                batches = tqdm(loader, desc=f"epoch {epoch}/{epochs}", leave=False,
                               dynamic_ncols=True, mininterval=0.5)
            for x, targets in batches:
                for group in opt.param_groups:
                    group["lr"] = rate(step)
                losses = detector.forward_backward(x, targets)
                if not np.isfinite(losses["loss"]):
                    raise NonFiniteError(f"train_detector: loss is {losses['loss']} at step {step}"
                                         f"; lower the learning rate")
                opt.step()
                step += 1
                count += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                if progress:
                    batches.set_postfix(loss=f"{sums['loss'] / count:.3f}", refresh=False)
            logs = {"epoch": epoch, "lr": rate(step - 1), "steps": step}
            logs.update({k: v / max(count, 1) for k, v in sums.items()})
            if val_set is not None:
                result = evaluate_detector(detector, val_set, eval_batch_size)
                logs.update(val_map50=result["map50"], val_coco_map=result["coco_map"])
            logs["seconds"] = time.perf_counter() - start
            history.append(logs)
            if log is not None:
                line = (f"epoch {epoch}/{epochs}: loss {logs['loss']:.4f} (rpn "
                        f"{logs['rpn_cls']:.3f} + {logs['rpn_box']:.3f}, head {logs['cls']:.3f} "
                        f"+ {logs['box']:.3f})")
                if val_set is not None:
                    line += (f", val mAP@0.5 {logs['val_map50']:.4f}, mAP@0.5:0.95 "
                             f"{logs['val_coco_map']:.4f}")
                log(line + f" ({logs['seconds']:.1f} s)")
            if on_epoch_end is not None and on_epoch_end(epoch, logs):
                break
            if max_seconds is not None and logs["seconds"] > max_seconds:
                break
    return history
