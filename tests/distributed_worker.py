"""The program ``tests/test_distributed_mpi.py`` runs under ``mpiexec -n 2``.

    python tests/distributed_worker.py train OUT          # plain and synced-batch-norm training
    python tests/distributed_worker.py fail OUT --mode raise|hang|kill [--at-step K]
    python tests/distributed_worker.py cuda OUT           # GPU ranks, on numba's CUDA simulator

``train`` writes, from rank 0, the final weights of small models trained data-parallel
(``plain.npz``; ``bn.npz`` with synced batch norm, ``bn_local.npz`` with per-rank statistics), their
histories (``*.json``) and a checkpoint after each epoch, and checks that the replicas are
bit-identical on every rank. ``fail`` trains with a checkpoint per
epoch and makes rank 1 raise, hang (sleep forever) or die (SIGKILL) at step K. ``cuda``
moves tiny models to the ``"cuda"`` device (numba's CUDA simulator: ``NUMBA_ENABLE_CUDASIM=1``)
and trains them data-parallel: ``cuda.npz`` (plain model), ``cuda_bn.npz`` and ``cpu_bn.npz``
(per-rank batch norm on GPU and on CPU ranks), ``cuda.json`` (which path the device buffers took
to MPI, the history). The model and data builders are imported by the test for the
single-process reference runs.
"""

import argparse
import json
import os
import signal
import sys
import time
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


def cuda_model(batchnorm=False):
    """A conv net small enough for the CUDA simulator (1x4x4 inputs)."""
    minicnn.manual_seed(3)
    layers = [nn.Conv2d(1, 2, 3, padding=1)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(2))
    return nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))


def cuda_loader():
    """11 samples in global batches of 5: shards of 3 and 2, then one sample (rank 1 gets none)."""
    rng = np.random.default_rng(4)
    x = rng.random((11, 1, 4, 4), dtype=np.float32)
    y = rng.integers(0, 3, 11)
    return data.DataLoader(data.ArrayDataset(x, y), batch_size=5, shuffle=True, seed=5)


def cuda_trainer(model, distributed=False):
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    return Trainer(model, nn.CrossEntropyLoss(), opt, topk=(1, 2), progress=False,
                   distributed=distributed)


def _use_cuda_simulator():
    """numba's CUDA simulator unless a real GPU run is asked for (MINICNN_TEST_REAL_GPU=1)."""
    if "numba.cuda" not in sys.modules and os.environ.get("MINICNN_TEST_REAL_GPU") != "1":
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        from numba.core import config
        config.reload_config()
    from minicnn import cuda_device
    cuda_device.set_launch(threads_per_block=8, max_blocks=4)
    if cuda_device.SIMULATOR:
        sys.setswitchinterval(5e-5)
    return cuda_device


def run_cuda(out, timeout):
    from minicnn.device import device_of
    from minicnn.distributed import DataParallel, DistributedError
    cuda_device = _use_cuda_simulator()
    report = {"simulator": cuda_device.SIMULATOR}

    dp = DataParallel(timeout=timeout, bucket_bytes=64)    # several buckets, started in backward
    model = cuda_model().to("cuda")
    history = cuda_trainer(model, distributed=dp).fit(cuda_loader(), epochs=1)
    dp.check_replicas(model)
    report.update(history=history, cuda_aware=dp.comm.cuda_aware, paths=dict(dp.transfer_paths),
                  buckets=len(dp.buckets.buckets), grad_type=type(model.parameters()[0].grad)
                  .__name__, grad_on_device=device_of(model.parameters()[0].grad))
    if dp.is_root:
        np.savez(out / "cuda.npz", **model.state_dict())

    # per-rank batch norm: running statistics averaged over the ranks, on GPU and on CPU ranks
    for name, device in (("cuda_bn", "cuda"), ("cpu_bn", "cpu")):
        dp_bn = DataParallel(timeout=timeout)
        model = cuda_model(batchnorm=True).to(device)
        cuda_trainer(model, distributed=dp_bn).fit(cuda_loader(), epochs=1)
        dp_bn.check_replicas(model)
        if dp_bn.is_root:
            np.savez(out / f"{name}.npz", **model.state_dict())

    # synced batch norm cannot run on device arrays yet: a clear error before any step
    try:
        DataParallel(timeout=timeout, sync_batchnorm=True).prepare(
            cuda_model(batchnorm=True).to("cuda"))
    except DistributedError as exc:
        report["sync_batchnorm_error"] = str(exc)
    if dp.is_root:
        (out / "cuda.json").write_text(json.dumps(report))


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
        if self.mode == "hang":
            # a rank stuck in its own code: it never reaches the next collective nor answers a
            # ping. (SIGSTOP froze it more realistically, but MPICH's launcher sometimes noticed
            # the stopped child and ended the job itself before rank 0's timeout could name it.)
            while True:
                time.sleep(1)
        os.kill(os.getpid(), signal.SIGKILL)


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
    parser.add_argument("scenario", choices=("train", "fail", "cuda"))
    parser.add_argument("out")
    parser.add_argument("--mode", choices=("raise", "hang", "kill"), default="raise")
    parser.add_argument("--at-step", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.scenario == "train":
        run_train(out, args.timeout)
    elif args.scenario == "cuda":
        run_cuda(out, args.timeout)
    else:
        run_fail(out, args.mode, args.at_step, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
