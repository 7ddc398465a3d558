"""The fit loop: ``Trainer(model, loss, optimizer).fit(train_loader, epochs, val_loader)``.

One step is the same five lines a user would write by hand::

    logits = model(x); value = loss(logits, y); model.backward(loss.backward(), input_grad=False)
    clip (optional); optimizer.step(); scheduler.step() (per epoch or per step)

plus what makes it trustworthy: a tqdm bar with loss and accuracy, top-1/top-k metrics, validation,
callbacks (checkpoints, early stopping, logs, a curve PNG), and a NaN/Inf loss that stops training
with the step number and the first node that produced a non-finite value, before the weights are
touched.

``distributed=True`` (or a :class:`minicnn.distributed.DataParallel`) runs the same loop on every
rank of an MPI job: batches are sharded by rank, gradients averaged with allreduce, metrics reduced
across ranks, and only rank 0 shows the bar and runs the callbacks that write files (checkpoints,
logs, curves). See :mod:`minicnn.distributed`.
"""

import numpy as np

from .device import to_numpy
from .errors import InputError, NonFiniteError
from .metrics import RunningMean, topk_correct


class TrainingDiverged(NonFiniteError):
    """The loss became NaN or Inf; names the step and the first node with a non-finite output."""


class Trainer:
    """Trains a classifier (any model whose output is (N, classes) logits and loss takes labels)."""

    def __init__(self, model, loss, optimizer, *, scheduler=None, scheduler_interval="epoch",
                 topk=(1,), callbacks=(), clip_grad_norm=None, progress=True, distributed=False):
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.topk = tuple(topk)
        self.callbacks = list(callbacks)
        self.clip_grad_norm = clip_grad_norm
        self.progress = progress
        self.history = []
        self.step = 0
        self.epoch = 0
        self.stop_training = False
        self.distributed = _data_parallel(distributed)

    @property
    def is_root(self):
        """True on rank 0 of a distributed run, and always without one."""
        return self.distributed is None or self.distributed.is_root

    # -- one step ---------------------------------------------------------------------------------

    def train_step(self, x, y):
        """Forward, loss, backward, optimiser step on one batch; returns (loss, logits).

        Distributed: ``(x, y)`` is this rank's shard of the global batch (every rank must call it);
        the loss returned is the global batch's and the logits are this rank's.
        """
        if self.distributed is not None:
            value, logits, _, _ = self.distributed.train_step(self, x, y)
            return value, logits
        logits = self.model(x)
        value = self.loss(logits, y)
        if not np.isfinite(value):
            raise self._diverged(x, value)
        self.model.backward(self.loss.backward(), input_grad=False)
        self._apply_update()
        return value, logits

    def _apply_update(self):
        """Clip (optional), optimiser step, step count, per-step schedule: after the gradients."""
        if self.clip_grad_norm is not None:
            from .optim import clip_grad_norm_
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.step += 1
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()

    def _diverged(self, x, value):
        """Re-run the batch with finiteness checks on to find the first node that made NaN/Inf."""
        where = "every node's output was finite; the loss itself overflowed"
        previous = self.model.check_finite
        self.model.check_finite = True
        try:
            self.model(x)
        except NonFiniteError as err:
            where = str(err)
        finally:
            self.model.check_finite = previous
        return TrainingDiverged(f"loss is {value} at step {self.step} (epoch {self.epoch}); "
                                f"{where}; weights were not updated by this step")

    # -- loops ------------------------------------------------------------------------------------

    def fit(self, train_loader, epochs=1, val_loader=None):
        """Train for ``epochs`` more epochs; returns the history (a list of per-epoch metric
        dicts)."""
        if self.distributed is None:
            return self._fit(train_loader, epochs, val_loader)
        try:
            self.distributed.begin_fit(self)
            return self._fit(train_loader, epochs, val_loader)
        except BaseException as exc:
            self.distributed.report_failure(exc)   # the other ranks stop, naming this one
            raise

    def _fit(self, train_loader, epochs, val_loader):
        dist = self.distributed
        for cb in self._local_callbacks():
            cb.on_train_begin(self)
        self.stop_training = False
        last = self.epoch + epochs
        while self.epoch < last and not self.stop_training:
            self.epoch += 1
            logs = self._train_epoch(train_loader, last)
            if dist is not None:
                dist.sync_buffers(self.model)
            if val_loader is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()})
            logs["lr"] = self.optimizer.param_groups[0]["lr"]
            self.history.append(logs)
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            for cb in self._local_callbacks():
                cb.on_epoch_end(self, self.epoch, logs)
            if dist is not None:
                self.stop_training = dist.broadcast_flag(self.stop_training,
                                                         "broadcasting rank 0's stop decision")
        for cb in self._local_callbacks():
            cb.on_train_end(self)
        return self.history

    def _local_callbacks(self):
        """Every callback, except on ranks other than 0 those that write files (the built-in
        checkpoint, log and curve writers, and any callback with ``rank_zero_only = True``)."""
        if self.is_root:
            return self.callbacks
        from .callbacks import CSVLogger, JSONLogger, ModelCheckpoint, TrainingCurve
        writers = (CSVLogger, JSONLogger, ModelCheckpoint, TrainingCurve)
        return [cb for cb in self.callbacks
                if not (isinstance(cb, writers) or getattr(cb, "rank_zero_only", False))]

    def _train_epoch(self, loader, last_epoch):
        self.model.train()
        dist = self.distributed
        if dist is not None:
            loader = dist.shard(loader)
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch - 1)
        loss_avg = RunningMean()
        correct = {k: 0 for k in self.topk}
        seen = batches = 0
        bar = self._bar(loader, f"epoch {self.epoch}/{last_epoch}")
        for x, y in bar:
            batches += 1
            if dist is None:
                value, logits = self.train_step(x, y)
                n = len(y)
                for k in self.topk:
                    correct[k] += topk_correct(logits, y, k)
            else:
                value, logits, n, step_correct = dist.train_step(self, x, y)
                for k in self.topk:
                    correct[k] += step_correct[k]
            loss_avg.add(value, n)
            seen += n
            if hasattr(bar, "set_postfix"):
                top1 = correct[self.topk[0]] / seen
                bar.set_postfix(loss=f"{loss_avg.value:.4f}", top1=f"{top1:.3f}", refresh=False)
            for cb in self._local_callbacks():
                cb.on_batch_end(self, self.step, {"loss": value})
        if not batches:      # an epoch of nothing would log a NaN loss and train nothing
            self.epoch -= 1
            raise InputError(f"Trainer.fit: the training loader gave no batch in epoch "
                             f"{self.epoch + 1} (an empty dataset, or drop_last with fewer "
                             f"samples than batch_size?)")
        logs = {"loss": loss_avg.value}
        logs.update({f"top{k}": correct[k] / max(seen, 1) for k in self.topk})
        return logs

    def evaluate(self, loader):
        """Loss and top-k accuracy over a loader, in eval mode (dropout off, batch-norm running
        stats)."""
        was_training = self.model.training
        self.model.eval()
        dist = self.distributed
        if dist is not None:       # every rank evaluates its shards; the sums are reduced
            loader = dist.shard(loader, drop_partial=False)
        loss_avg = RunningMean()
        correct = {k: 0 for k in self.topk}
        seen = 0
        try:
            for x, y in loader:
                if not len(y):
                    continue
                logits = self.model(x)
                loss_avg.add(self.loss(logits, y), len(y))
                for k in self.topk:
                    correct[k] += topk_correct(logits, y, k)
                seen += len(y)
        finally:
            self.model.train(was_training)
        if dist is not None:
            sums = dist.reduce_sums([loss_avg.total, loss_avg.count] +
                                    [correct[k] for k in self.topk], "reducing validation metrics")
            loss_avg.total, loss_avg.count = float(sums[0]), int(sums[1])
            correct = {k: int(round(sums[2 + j])) for j, k in enumerate(self.topk)}
            seen = loss_avg.count
        if not seen:         # summed over the ranks: every rank raises alike
            raise InputError("Trainer.evaluate: the loader gave no samples (an empty dataset?)")
        out = {"loss": loss_avg.value}
        out.update({f"top{k}": correct[k] / max(seen, 1) for k in self.topk})
        return out

    def _bar(self, loader, desc):
        if not self.progress or not self.is_root:
            return loader
        from tqdm import tqdm
        return tqdm(loader, desc=desc, leave=True, dynamic_ncols=True, mininterval=0.5)

    # -- checkpoints ------------------------------------------------------------------------------

    def save_checkpoint(self, path, epoch=None):
        """Model, optimiser, schedule, epoch, step and RNG states, atomically, for an exact
        resume. Distributed: rank 0 writes (the replicas are identical); other ranks do nothing.
        """
        if not self.is_root:
            return
        from .io import save_checkpoint
        extra = {"history": self.history}
        if self.distributed is not None:
            extra["world_size"] = self.distributed.size
        save_checkpoint(path, self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                        epoch=self.epoch if epoch is None else epoch, step=self.step, extra=extra)

    def load_checkpoint(self, path):
        """Restore everything ``save_checkpoint`` saved; ``fit`` then continues where it stopped.
        A checkpoint resumes on any number of ranks (each rank reads the file)."""
        from .io import load_checkpoint
        info = load_checkpoint(path, self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        if self.distributed is not None:
            self.distributed.state_loaded()
        self.epoch = int(info.get("epoch") or 0)
        self.step = int(info.get("step") or 0)
        self.history = list((info.get("extra") or {}).get("history", []))
        return info


def _data_parallel(distributed):
    """None (one process), or the DataParallel object for ``distributed``."""
    if distributed is None or distributed is False:
        return None
    from .distributed import DataParallel
    if distributed is True:
        return DataParallel()
    if isinstance(distributed, DataParallel):
        return distributed
    raise TypeError(f"Trainer: distributed must be True, False or a "
                    f"minicnn.distributed.DataParallel, got {distributed!r}")


def predict(model, x, batch_size=256):
    """Logits (a numpy array, whatever the model's device) for a float32 array of samples, in
    eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    try:
        outs = [to_numpy(model(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs, axis=0)
