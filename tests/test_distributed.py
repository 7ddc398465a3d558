"""Data-parallel training, in one process: sharding, buckets, hooks, staging, the one-rank path.

The runs over two MPI ranks are in ``test_distributed_mpi.py``; everything here needs no MPI (a
:class:`LocalCommunicator` stands in, or a recording fake).
"""

import io
import os

import numpy as np
import pytest

import minicnn
from minicnn import data, nn, optim
from minicnn.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint
from minicnn.distributed import (
    DataParallel,
    DistributedError,
    LocalCommunicator,
    ShardedLoader,
    abort_on_error,
    launched_by_mpi,
    shard_bounds,
    split_random_streams,
)
from minicnn.distributed.buckets import GradientBuckets
from minicnn.distributed.launch import RankTerminated, launched_size, terminate_as_exception
from minicnn.distributed.staging import Staged, query_cuda_aware
from minicnn.train import Trainer, TrainingDiverged


def _model(seed=0, bn=False):
    minicnn.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 5, stride=2)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)]
    return nn.Sequential(*layers)


def _trainer(model, distributed=False, callbacks=()):
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return Trainer(model, nn.CrossEntropyLoss(), opt, topk=(1, 3), progress=False,
                   callbacks=list(callbacks), distributed=distributed)


def _loader(n=40, batch=16, seed=0, transform=None):
    return data.DataLoader(data.Shapes(n, seed=seed), batch_size=batch, shuffle=True, seed=seed,
                           transform=transform)


class RecordingComm(LocalCommunicator):
    """One rank that remembers every allreduce started, and whether backward was running."""

    def __init__(self):
        super().__init__()
        self.started = []
        self.hooks = None

    def iallreduce(self, array, what):
        self.started.append((what, bool(self.hooks and self.hooks.active)))
        return super().iallreduce(array, what)


# -- sharding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,size", [(16, 2), (17, 2), (1, 2), (10, 4), (3, 4), (64, 3)])
def test_shards_cover_the_batch_once_with_sizes_within_one(n, size):
    bounds = [shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert stop == start                          # contiguous, no overlap, no gap
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == n
    assert sizes == sorted(sizes, reverse=True)       # the first n % size ranks take one more


def test_shard_bounds_rejects_a_rank_outside_the_job():
    with pytest.raises(ValueError, match="rank 2 out of range for 2 ranks"):
        shard_bounds(8, 2, 2)


def test_sharded_batches_are_the_global_batch_cut_by_rank():
    flip = data.transforms.RandomHorizontalFlip()     # random: drawn per (seed, epoch, index)
    single = _loader(21, 8, seed=3, transform=flip)
    single.set_epoch(1)
    batches = list(single)
    shards = []
    for rank in range(3):
        loader = ShardedLoader(_loader(21, 8, seed=3, transform=flip), rank, 3)
        loader.set_epoch(1)
        assert len(loader) == len(single) == 3
        shards.append(list(loader))
    for b, (x, y) in enumerate(batches):
        xs = np.concatenate([shards[r][b][0] for r in range(3)])
        ys = np.concatenate([shards[r][b][1] for r in range(3)])
        np.testing.assert_array_equal(xs, x)                  # same samples, same augmentation
        np.testing.assert_array_equal(ys, y)
    assert [len(shards[r][2][1]) for r in range(3)] == [2, 2, 1]     # last batch: 5 samples


def test_an_empty_shard_has_zero_rows_and_drop_partial_skips_it():
    loader = ShardedLoader(data.DataLoader(data.Shapes(17, seed=0), batch_size=8, prefetch=0),
                           1, 2)
    x, y = list(loader)[-1]                                   # the last batch holds one sample
    assert x.shape == (0, 1, 28, 28) and y.shape == (0,) and x.dtype == np.float32
    dropping = ShardedLoader(data.DataLoader(data.Shapes(17, seed=0), batch_size=8), 1, 2,
                             drop_partial=True)
    assert len(dropping) == 2 and len(list(dropping)) == 2


def test_sharding_needs_a_minicnn_loader():
    with pytest.raises(TypeError, match="shards a minicnn.data.DataLoader"):
        ShardedLoader([(np.zeros((2, 1, 4, 4), np.float32), np.zeros(2, np.int64))], 0, 2)


# -- buckets --------------------------------------------------------------------------------------

def test_buckets_pack_gradients_contiguously_and_start_in_order():
    model = _model()
    params = list(reversed(model.parameters()))    # fc bias, fc weight, conv bias, conv weight
    buckets = GradientBuckets(params, bucket_bytes=600)
    sizes = [[p.data.size for p in b.params] for b in buckets.buckets]
    assert sizes == [[10], [1440], [4, 100]]                  # a bucket grows until 600 bytes
    buckets.attach()
    for b in buckets.buckets:
        for p in b.params:
            assert np.shares_memory(p.grad, b.flat) and p.grad.shape == p.data.shape
    comm = RecordingComm()
    buckets.begin()
    buckets.ready([params[2], params[3]], comm)               # the last bucket is ready first...
    assert comm.started == []                                 # ...but may not start before 0 and 1
    buckets.ready([params[0]], comm)
    assert len(comm.started) == 1 and "bucket 0" in comm.started[0][0]
    buckets.ready([params[1]], comm)
    assert ["bucket 1" in w for w, _ in comm.started[1:]] == [True, False]
    assert "bucket 2" in comm.started[2][0]
    model.parameters()[0].grad = None                         # something dropped a gradient
    buckets.attach()
    assert np.shares_memory(model.parameters()[0].grad, buckets.buckets[2].flat)


def test_buckets_never_mix_dtypes():
    a = minicnn.Param(np.zeros(3, np.float32))
    b = minicnn.Param(np.zeros(3, np.float64))
    buckets = GradientBuckets([a, b], bucket_bytes=1 << 20)
    assert [bk.flat.dtype for bk in buckets.buckets] == [np.float32, np.float64]


# -- the one-rank path through the distributed code -----------------------------------------------

def _fit(distributed, bn=False, epochs=2):
    model = _model(bn=bn)
    trainer = _trainer(model, distributed)
    history = trainer.fit(_loader(40, 16), epochs=epochs,
                          val_loader=data.DataLoader(data.Shapes(12, seed=5), batch_size=8))
    return model, history


@pytest.mark.parametrize("bn", [False, True])
def test_one_rank_distributed_equals_plain_training(bn):
    plain, plain_history = _fit(False, bn)
    comm = RecordingComm()
    dp = DataParallel(comm, sync_batchnorm=bn, bucket_bytes=600)
    comm.hooks = dp.hooks
    model, history = _fit(dp, bn)
    for (name, a), b in zip(plain.state_dict().items(), model.state_dict().values(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7, err_msg=name)
    for h, p in zip(history, plain_history, strict=True):
        assert h == pytest.approx(p, rel=1e-6)
    # gradient buckets were started while backward was still running (overlap)
    during = [w for w, active in comm.started if active]
    assert any("bucket 0" in w for w in during)
    if bn:                                  # batch-norm nodes run the synced kernel in a step
        kernels = [repr(s.kernel) for s in model._get_executor()._last.steps]
        assert any("synced" in k for k in kernels)


def test_synced_batch_norm_that_did_not_run_is_an_error(monkeypatch):
    from minicnn.distributed.hooks import PlanHooks
    monkeypatch.setattr(PlanHooks, "instrument", lambda self, plan: None)   # kernels not wrapped
    with pytest.raises(DistributedError, match="synced batch norm did not run for '1'"):
        _fit(DataParallel(LocalCommunicator(), sync_batchnorm=True), bn=True, epochs=1)


def test_without_overlap_buckets_start_after_backward():
    comm = RecordingComm()
    dp = DataParallel(comm, overlap=False, bucket_bytes=600)
    comm.hooks = dp.hooks
    _fit(dp, epochs=1)
    assert comm.started and not any(active for _, active in comm.started)


def test_a_non_finite_loss_stops_every_rank_and_keeps_the_weights():
    model = _model()
    trainer = _trainer(model, DataParallel(LocalCommunicator()))
    model[0].weight.data[0, 0, 0, 0] = np.nan
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(TrainingDiverged, match=r"node '0' \(Conv2d\).*rank 0") as info:
        trainer.fit(_loader(32, 16), epochs=1)
    assert info.value.collective                   # every rank raised it: no abort needed
    for a, p in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, p.data)


def test_only_rank_zero_writes_files_and_checks_pass(tmp_path):
    comm = LocalCommunicator()
    comm.rank, comm.size = 1, 2                            # pretend to be rank 1 of 2
    dp = DataParallel(comm)
    model = _model()
    stop = EarlyStopping(monitor="loss", patience=1)
    trainer = _trainer(model, dp, [ModelCheckpoint(str(tmp_path / "c.safetensors")),
                                   CSVLogger(str(tmp_path / "log.csv")), stop])
    assert not trainer.is_root and trainer._local_callbacks() == [stop]
    trainer.fit(_loader(16, 16), epochs=1)
    trainer.save_checkpoint(str(tmp_path / "direct.safetensors"))
    assert list(tmp_path.iterdir()) == []
    assert dp.check_replicas(model) is True


def test_checkpoint_records_the_world_size_and_resumes_without_mpi(tmp_path):
    model = _model()
    trainer = _trainer(model, DataParallel(LocalCommunicator()))
    trainer.fit(_loader(16, 16), epochs=1)
    trainer.save_checkpoint(str(tmp_path / "c.safetensors"))
    again = _trainer(_model(seed=9))
    info = again.load_checkpoint(str(tmp_path / "c.safetensors"))
    assert info["extra"]["world_size"] == 1 and again.epoch == 1
    for a, b in zip(model.parameters(), again.model.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_dropout_streams_differ_by_rank_and_rank_zero_keeps_its_own():
    def streams(rank):
        minicnn.manual_seed(4)
        model = nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.5))
        split_random_streams(model, rank)
        return [m.rng.random(3) for m in model]
    zero, one, again = streams(0), streams(1), streams(1)
    minicnn.manual_seed(4)
    untouched = [m.rng.random(3) for m in nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.5))]
    np.testing.assert_array_equal(np.array(zero), np.array(untouched))
    np.testing.assert_array_equal(np.array(one), np.array(again))
    assert not np.allclose(zero[0], one[0])


# -- launching, staging, failures -----------------------------------------------------------------

def test_launcher_detection_reads_the_environment(monkeypatch):
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                 "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "PMIX_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launched_size() is None and not launched_by_mpi()
    monkeypatch.setenv("PMI_SIZE", "1")
    assert launched_size() == 1 and not launched_by_mpi()     # mpiexec -n 1: one process
    monkeypatch.delenv("PMI_SIZE")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launched_by_mpi()
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    monkeypatch.setenv("PMIX_RANK", "0")
    assert launched_size() == 0 and launched_by_mpi()         # launched, size not announced


class FakeDeviceArray:
    """Quacks like a numba device array: the CUDA array interface and the copy methods."""

    def __init__(self, values):
        self.values = np.array(values, np.float32)
        self.__cuda_array_interface__ = {"shape": self.values.shape, "version": 3}

    def copy_to_host(self):
        return self.values.copy()

    def copy_to_device(self, host):
        self.values[...] = host


def test_device_arrays_go_to_mpi_directly_or_through_the_host():
    calls = []
    device = FakeDeviceArray([1, 2, 3])
    direct = Staged(device, cuda_aware=True, synchronize=lambda: calls.append("sync"))
    assert direct.buffer is device and calls == ["sync"] and direct.path == "device"
    staged = Staged(device, cuda_aware=False)
    assert isinstance(staged.buffer, np.ndarray) and staged.path == "staged"
    staged.buffer *= 2                                # what an allreduce would write
    assert device.values.tolist() == [1, 2, 3]
    staged.complete()
    assert device.values.tolist() == [2, 4, 6]
    host = np.arange(4.0)
    assert Staged(host, cuda_aware=False).buffer is host
    assert Staged(host, cuda_aware=True).path == "host"
    with pytest.raises(ValueError, match="C-contiguous"):
        Staged(np.arange(8.0)[::2], cuda_aware=False)
    with pytest.raises(TypeError, match="cannot hand an array of type list"):
        Staged([1.0], cuda_aware=False)


class SimulatedDeviceArray(FakeDeviceArray):
    """numba's CUDA simulator: copy methods but no CUDA array interface (MPI cannot read it)."""

    def __init__(self, values):
        self.values = np.array(values, np.float32)


def test_simulated_device_arrays_are_staged_even_for_a_cuda_aware_mpi():
    device = SimulatedDeviceArray([1, 2])
    staged = Staged(device, cuda_aware=True)
    assert staged.path == "staged" and isinstance(staged.buffer, np.ndarray)
    staged.buffer += 1
    staged.complete()
    assert device.values.tolist() == [2, 3]


def test_synced_batch_norm_refuses_device_arrays_by_name():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    model[1].running_mean = SimulatedDeviceArray(np.zeros(2))   # as if moved to the GPU
    with pytest.raises(DistributedError, match=r"synced batch norm runs on the CPU only: "
                                               r"batch-norm layer '1' is on cuda"):
        DataParallel(sync_batchnorm=True).prepare(model)
    DataParallel(sync_batchnorm=False).prepare(model)      # per-rank statistics: no objection


def test_cuda_awareness_can_be_forced(monkeypatch):
    monkeypatch.setenv("MINICNN_MPI_CUDA_AWARE", "1")
    assert query_cuda_aware(None) is True
    monkeypatch.setenv("MINICNN_MPI_CUDA_AWARE", "0")
    assert query_cuda_aware(None) is False


def test_abort_on_error_names_the_rank_and_reraises_on_one_rank():
    dp = DataParallel(LocalCommunicator())
    out = io.StringIO()
    with pytest.raises(RuntimeError, match="boom"), abort_on_error(dp, "test", out):
        raise RuntimeError("boom")
    assert out.getvalue() == "test: error on rank 0 of 1: RuntimeError: boom\n"
    collective = TrainingDiverged("everyone saw it")
    collective.collective = True
    out = io.StringIO()
    with pytest.raises(TrainingDiverged), abort_on_error(dp, "test", out):
        raise collective
    assert out.getvalue() == ""                      # raised on every rank: no abort, no report


def test_sigterm_becomes_an_exception_the_other_ranks_are_told_about():
    import signal
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RankTerminated, match="received signal SIGTERM"), terminate_as_exception():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()                       # never reached: the handler raises first
    assert signal.getsignal(signal.SIGTERM) is before


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="timeout must be > 0"):
        DataParallel(LocalCommunicator(), timeout=0)
    with pytest.raises(ValueError, match="bucket_bytes must be > 0"):
        DataParallel(LocalCommunicator(), bucket_bytes=0)
    with pytest.raises(TypeError, match="distributed must be True, False or a"):
        _trainer(_model(), distributed="yes")
    err = DistributedError("x", rank=3)
    assert err.ranks == [3] and not err.propagated


def test_trainer_distributed_true_without_a_launcher_is_one_rank():
    if launched_by_mpi() or "mpi4py.MPI" in __import__("sys").modules:
        pytest.skip("this process runs under an MPI launcher")
    trainer = _trainer(_model(), distributed=True)
    assert isinstance(trainer.distributed.comm, LocalCommunicator)
    assert trainer.distributed.size == 1 and trainer.is_root
    assert "1 rank(s) (0: pid " + str(os.getpid()) in trainer.distributed.describe()
