"""The program ``tests/test_distributed_mpi.py`` runs under ``mpiexec -n 2``.

    python tests/distributed_worker.py train OUT          # plain and synced-batch-norm training
    python tests/distributed_worker.py fail OUT --mode raise|hang|kill [--at-step K]

``train`` writes, from rank 0, the final weights of small models trained data-parallel
(``plain.npz``; ``bn.npz`` with synced batch norm, ``bn_local.npz`` with per-rank statistics), their
histories (``*.json``) and a checkpoint after each epoch, and checks that the replicas are
bit-identical on every rank. ``fail`` trains with a checkpoint per
epoch and makes rank 1 raise, stop (SIGSTOP: a hung rank) or die (SIGKILL) at step K. The model
and data builders are imported by the test for the single-process reference runs.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import minicnn
from minicnn import data, nn, optim
from minicnn.callbacks import Callback, CSVLogger, ModelCheckpoint
from minicnn.train import Trainer

EPOCHS = 2


def plain_model():
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def bn_model():
    minicnn.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def plain_loaders():
    """33 samples in batches of 8: the last global batch holds one sample, so rank 1 gets none."""
    train = data.DataLoader(data.Shapes(33, seed=0), batch_size=8, shuffle=True, seed=0)
    val = data.DataLoader(data.Shapes(20, seed=99), batch_size=8)
    return train, val


def bn_loader():
    """30 samples in batches of 15: shards of 8 and 7 samples (uneven)."""
    return data.DataLoader(data.Shapes(30, seed=2), batch_size=15, shuffle=True, seed=2)


def trainer_for(model, callbacks=(), distributed=False):
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=optim.StepLR(opt, 1, gamma=0.5),
                   topk=(1, 3), callbacks=list(callbacks), progress=False, distributed=distributed)


def _save(out, name, model, history):
    np.savez(out / f"{name}.npz", **model.state_dict())
    (out / f"{name}.json").write_text(json.dumps(history))


def run_train(out, timeout):
    from minicnn.distributed import DataParallel
    dp = DataParallel(timeout=timeout, bucket_bytes=2048)     # several buckets, started in backward
    model = plain_model()
    train, val = plain_loaders()
    trainer = trainer_for(model, [ModelCheckpoint(str(out / "plain.ckpt"), monitor="loss"),
                                  CSVLogger(str(out / "plain.csv"))], distributed=dp)
    history = trainer.fit(train, epochs=EPOCHS, val_loader=val)
    dp.check_replicas(model)
    if dp.is_root:
        _save(out, "plain", model, history)
        print(f"buckets: {len(dp.buckets.buckets)}; {dp.describe()}", flush=True)

    for name, synced in (("bn", True), ("bn_local", False)):
        dp_bn = DataParallel(timeout=timeout, sync_batchnorm=synced)
        model = bn_model()
        trainer = trainer_for(model, distributed=dp_bn)
        history = trainer.fit(bn_loader(), epochs=EPOCHS)
        dp_bn.check_replicas(model)         # per-rank statistics: running stats averaged
        if dp_bn.is_root:
            _save(out, name, model, history)


class Failure(Callback):
    """Rank ``rank`` raises, stops or dies after step ``at_step``; every rank shortens its timeout
    after the first step (the first step compiles kernels)."""

    def __init__(self, mode, at_step, rank, short_timeout):
        self.mode, self.at_step, self.rank, self.short = mode, at_step, rank, short_timeout

    def on_batch_end(self, trainer, step, logs):
        dist = trainer.distributed
        if step == 1:
            dist.timeout = self.short
        if step != self.at_step or dist.rank != self.rank:
            return
        if self.mode == "raise":
            raise RuntimeError(f"injected failure at step {step}")
        os.kill(os.getpid(), signal.SIGSTOP if self.mode == "hang" else signal.SIGKILL)


def run_fail(out, mode, at_step, timeout):
    from minicnn.distributed import DataParallel, abort_on_error
    dp = DataParallel(timeout=60.0)
    if dp.is_root:
        print(dp.describe(), flush=True)
    model = plain_model()
    train = data.DataLoader(data.Shapes(64, seed=0), batch_size=8, shuffle=True, seed=0)
    trainer = trainer_for(model, [ModelCheckpoint(str(out / "fail.ckpt"), monitor="loss"),
                                  Failure(mode, at_step, 1, timeout)], distributed=dp)
    with abort_on_error(dp, prefix="worker"):
        trainer.fit(train, epochs=3)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("train", "fail"))
    parser.add_argument("out")
    parser.add_argument("--mode", choices=("raise", "hang", "kill"), default="raise")
    parser.add_argument("--at-step", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.scenario == "train":
        run_train(out, args.timeout)
    else:
        run_fail(out, args.mode, args.at_step, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
