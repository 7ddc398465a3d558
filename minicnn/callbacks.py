"""Fit-loop callbacks: checkpoints, early stopping, reduce-on-plateau, CSV/JSON logs, a curve PNG.

A callback implements any of ``on_train_begin(trainer)``, ``on_epoch_end(trainer, epoch, logs)``,
``on_batch_end(trainer, step, logs)``, ``on_train_end(trainer)``; ``logs`` is the epoch's metrics
dict (``loss``, ``top1``, ``val_loss``, ``val_top1``...). Setting ``trainer.stop_training = True``
ends training after the current epoch.
"""

import csv
import json
import math
import os

from .io.atomic import atomic_write_bytes


class Callback:
    def on_train_begin(self, trainer):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_batch_end(self, trainer, step, logs):
        pass

    def on_train_end(self, trainer):
        pass


def _better(mode, value, best, min_delta):
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class ModelCheckpoint(Callback):
    """Save a full checkpoint (model, optimiser, schedule, epoch, RNG states) after each epoch, or
    only when ``monitor`` improves with ``save_best_only``. Saves are atomic."""

    def __init__(self, path, monitor="val_loss", mode="min", save_best_only=False):
        self.path, self.monitor, self.mode = path, monitor, mode
        self.save_best_only, self.best = save_best_only, None

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if self.save_best_only:
            if value is None or not _better(self.mode, value, self.best, 0.0):
                return
            self.best = value
        trainer.save_checkpoint(self.path, epoch=epoch)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", mode="min", patience=3, min_delta=0.0):
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best, self.wait = None, 0

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            return
        if _better(self.mode, value, self.best, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_training = True


class ReduceLROnPlateau(Callback):
    """Feed ``monitor`` to a :class:`minicnn.optim.ReduceLROnPlateau` schedule after each epoch."""

    def __init__(self, scheduler, monitor="val_loss"):
        self.scheduler, self.monitor = scheduler, monitor

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor in logs:
            self.scheduler.step(logs[self.monitor])


class CSVLogger(Callback):
    """One row per epoch; the file is rewritten atomically each epoch, so it is never
    half-written."""

    def __init__(self, path):
        self.path, self.rows = path, []

    def on_epoch_end(self, trainer, epoch, logs):
        self.rows.append({"epoch": epoch, **logs})
        fields = list(dict.fromkeys(k for row in self.rows for k in row))
        lines = []

        class _Sink:
            def write(self, text):
                lines.append(text)

        writer = csv.DictWriter(_Sink(), fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.path, "".join(lines).encode())


class JSONLogger(Callback):
    """The whole history as a JSON list, rewritten atomically each epoch."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, trainer, epoch, logs):
        history = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in row.items()} for row in trainer.history]
        atomic_write_bytes(self.path, json.dumps(history, indent=1).encode())


class TrainingCurve(Callback):
    """A PNG of loss and accuracy per epoch (train and validation), redrawn after each epoch."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, trainer, epoch, logs):
        from .plot import line_charts
        history = trainer.history

        def series(*keys):
            # an epoch without the key (validation from a resume on, or only every few epochs)
            # is a gap in its curve, not a reason to leave the curve out
            return {k.replace("_", " "): [(epoch, row.get(k)) for epoch, row in
                                          enumerate(history, 1)]
                    for k in keys if any(k in row for row in history)}

        acc_keys = list(dict.fromkeys(k for row in history for k in row
                                      if k.endswith(("top1", "top5"))))
        panels = [{"series": series("loss", "val_loss"), "title": "loss", "xlabel": "epoch"}]
        if acc_keys:
            panels.append({"series": series(*acc_keys), "title": "accuracy", "xlabel": "epoch"})
        tmp = f"{self.path}.tmp.png"
        line_charts(panels, tmp)
        os.replace(tmp, self.path)
