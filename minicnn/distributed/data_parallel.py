"""DataParallel: what the fit loop asks of data-parallel training, in one object.

``Trainer(..., distributed=True)`` (or ``distributed=DataParallel(...)``) runs the same loop on
every rank; this object supplies the few places where ranks must agree:

* **start**: parameters and buffers are broadcast from rank 0; each rank's dropout generators are
  made independent (rank r's is rank 0's jumped r times);
* **data**: each global batch is cut into one shard per rank (:mod:`.sharding`);
* **a step**: forward and backward on the local shard, gradients averaged over the global batch by
  an allreduce on contiguous buckets started during backward (:mod:`.buckets`, :mod:`.hooks`),
  the loss and accuracy counts reduced alongside; then the same optimiser step on every rank;
* **an epoch's end**: batch-norm running statistics averaged (or broadcast when synced), metrics
  reduced, rank 0's early-stopping decision broadcast.

The average is exact for uneven shards. A loss with ``reduction="mean"`` on rank r's n_r samples
has gradient g_r = (1/n_r) sum_i grad l_i; the single process on the global batch of N samples has
(1/N) sum over all i. So rank r back-propagates with the loss gradient scaled by n_r (its *sum*
gradient), the buckets are summed over ranks, and the sum is divided by N (reduced alongside).
A rank with no sample contributes zeros. ``reduction="sum"`` losses are summed as they are.

Every collective has a deadline and reads the failure channel (:mod:`.comm`), so a rank that
raises, dies or hangs ends the others' wait with a :class:`DistributedError` naming it.
"""

import math
import os
import socket
import time
import zlib

import numpy as np

from ..device import device_of, get_device, to_numpy
from ..metrics import topk_correct
from .buckets import GradientBuckets, signature
from .comm import Communicator, LocalCommunicator
from .errors import DistributedError
from .hooks import PlanHooks
from .launch import launched_by_mpi, set_threads_per_rank
from .sharding import ShardedLoader

_HOST_BYTES = 64


def _make_communicator(comm, timeout, cuda_aware):
    if isinstance(comm, (Communicator, LocalCommunicator)):
        return comm
    if comm is None and not launched_by_mpi():
        import sys
        if "mpi4py.MPI" not in sys.modules:          # no launcher and MPI not started: one rank
            return LocalCommunicator(timeout)
    return Communicator(comm, timeout=timeout, cuda_aware=cuda_aware)


def split_random_streams(model, rank):
    """Give rank ``rank`` its own stream in every layer generator (rank 0 keeps its own)."""
    if rank == 0:
        return
    seen = set()
    for _, module in model.named_modules():
        rng = getattr(module, "rng", None)
        if not isinstance(rng, np.random.Generator) or id(module) in seen:
            continue
        seen.add(id(module))
        bits = rng.bit_generator
        if hasattr(bits, "jumped"):
            module.rng = np.random.Generator(bits.jumped(rank))
        else:
            module.rng = np.random.default_rng([rank, int(rng.integers(2**63 - 1))])


def _check_no_batch_statistics(model):
    """Synced batch norm must have run if any batch-norm layer normalised with batch statistics:
    if the executor stopped going through the wrapped kernels, say so rather than silently train
    with per-rank statistics."""
    from .syncbn import is_batchnorm
    for name, module in model.named_modules():
        if is_batchnorm(module) and module.training and module.uses_batch_stats():
            raise DistributedError(f"synced batch norm did not run for '{name}': the executor no "
                                   f"longer calls the kernels minicnn.distributed wrapped")


def _check_sync_batchnorm_device(model):
    """Synced batch norm computes its statistics with numpy: refuse batch-norm layers whose
    arrays live on the GPU (rather than fail inside the first step, or compute wrongly)."""
    from .syncbn import is_batchnorm
    for name, module in model.named_modules():
        if not is_batchnorm(module):
            continue
        arrays = [p.data for p in module._own_params().values()]
        arrays += list(module._own_buffers().values())
        devices = {device_of(a) for a in arrays} or {getattr(model, "device", "cpu")}
        if devices != {"cpu"}:
            raise DistributedError(
                f"synced batch norm runs on the CPU only: batch-norm layer '{name}' is on "
                f"{', '.join(sorted(devices - {'cpu'}))} (its statistics are reduced with numpy "
                f"on host arrays). Use DataParallel(sync_batchnorm=False) (per-rank statistics, "
                f"running statistics averaged over the ranks) on GPU ranks, or keep the model on "
                f"the CPU")


class DataParallel:
    """Data-parallel training over MPI ranks (see the module docstring).

    :param comm: an ``mpi4py`` communicator (default ``MPI.COMM_WORLD`` when launched by an MPI
        launcher; a one-rank stand-in otherwise, so the same script runs without MPI).
    :param sync_batchnorm: batch norm with statistics over the global batch (default: each rank's
        own shard; running statistics are then averaged over the ranks at each epoch's end).
    :param bucket_bytes: gradient bytes per allreduce bucket.
    :param overlap: start buckets during backward (False: all after backward).
    :param timeout: seconds a collective may wait before the job is declared failed.
    :param cuda_aware: hand device arrays to MPI directly (None: ask the MPI library; otherwise
        they are staged through host memory).
    :param threads_per_rank: Numba threads per rank; "auto" shares this host's cores among its
        ranks unless ``NUMBA_NUM_THREADS`` is set; None leaves them alone.
    """

    def __init__(self, comm=None, *, sync_batchnorm=False, bucket_bytes=1 << 20, overlap=True,
                 timeout=300.0, cuda_aware=None, threads_per_rank="auto"):
        if not bucket_bytes > 0:
            raise ValueError(f"DataParallel: bucket_bytes must be > 0, got {bucket_bytes!r}")
        if not timeout > 0:
            raise ValueError(f"DataParallel: timeout must be > 0 seconds, got {timeout!r}")
        self.comm = _make_communicator(comm, timeout, cuda_aware)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.bucket_bytes = int(bucket_bytes)
        self.overlap = bool(overlap)
        self.hooks = PlanHooks(self.comm, self.sync_batchnorm)
        self.buckets = None
        self._rngs_split_for = None
        self.wait_seconds = 0.0      # wall time spent completing the steps' reductions
        self.compute_seconds = 0.0   # wall time of the steps up to that wait (forward, backward)
        self.compute_cpu_seconds = 0.0   # the same in this process's CPU time
        self.steps = 0
        self._stats_bytes = 0
        self.hosts, self.pids = self._gather_identities()
        self.threads = None
        if threads_per_rank is not None and self.size > 1:
            here = self.hosts.count(self.hosts[self.rank])
            self.threads = set_threads_per_rank(
                here, None if threads_per_rank == "auto" else threads_per_rank)

    # -- who we are -------------------------------------------------------------------------------

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    @property
    def is_root(self):
        return self.comm.rank == 0

    @property
    def timeout(self):
        return self.comm.timeout

    @timeout.setter
    def timeout(self, seconds):
        self.comm.timeout = float(seconds)

    def _gather_identities(self):
        me = np.zeros(_HOST_BYTES + 8, np.uint8)
        host = socket.gethostname().encode()[:_HOST_BYTES]
        me[:len(host)] = np.frombuffer(host, np.uint8)
        me[_HOST_BYTES:] = np.frombuffer(np.int64(os.getpid()).tobytes(), np.uint8)
        everyone = np.zeros((self.size, me.size), np.uint8)
        self.comm.allgather(me, everyone, "exchanging host names and process ids")
        hosts = [bytes(row[:_HOST_BYTES]).rstrip(b"\0").decode(errors="replace")
                 for row in everyone]
        pids = [int(np.frombuffer(bytes(row[_HOST_BYTES:]), np.int64)[0]) for row in everyone]
        return hosts, pids

    def describe(self):
        """One line: ranks, their process ids and hosts (to match a launcher's report of a dead
        PID to its rank), threads per rank."""
        shown = list(enumerate(zip(self.pids, self.hosts, strict=True)))[:64]
        ranks = ", ".join(f"{r}: pid {pid} on {host}" for r, (pid, host) in shown)
        if self.size > len(shown):
            ranks += f", ... ({self.size - len(shown)} more)"
        threads = f"; {self.threads} Numba thread(s) per rank" if self.threads else ""
        return f"data-parallel training on {self.size} rank(s) ({ranks}){threads}"

    # -- set-up -----------------------------------------------------------------------------------

    def shard(self, loader, drop_partial=None):
        """This rank's :class:`ShardedLoader` of ``loader``, whose seed is taken from rank 0.

        With synced batch norm, a last batch smaller than the number of ranks is skipped on every
        rank (a rank without samples cannot take part in the statistics).
        """
        if isinstance(loader, ShardedLoader):
            return loader
        sharded = ShardedLoader(loader, self.rank, self.size,
                                self.sync_batchnorm if drop_partial is None else drop_partial)
        seed = getattr(loader, "seed", None)
        if self.size > 1 and isinstance(seed, int):
            buf = np.array([seed], np.uint64)
            self.comm.bcast(buf, "broadcasting the data loader's seed")
            loader.seed = int(buf[0])
        return sharded

    @property
    def transfer_paths(self):
        """How many buffers this rank handed to MPI by path: ``"host"`` (numpy arrays),
        ``"device"`` (device arrays to a CUDA-aware MPI) and ``"staged"`` (device arrays copied
        through host memory); see :mod:`.staging`."""
        return self.comm.transfer_paths

    def prepare(self, model):
        """Hooks installed, buckets built and attached, dropout streams split (cheap when done)."""
        if self.sync_batchnorm:
            _check_sync_batchnorm_device(model)
        if self.overlap or self.sync_batchnorm:
            if not self.hooks.install(model) and self.sync_batchnorm:
                raise DistributedError("synced batch norm needs the executor's plan steps, which "
                                       "this version of the executor does not expose")
        params = [p for p in reversed(model.parameters()) if p.requires_grad]
        if self.buckets is None or self.buckets.key != signature(params):
            self.buckets = GradientBuckets(params, model.device, self.bucket_bytes)
        self.buckets.attach()
        if self._rngs_split_for is not model:
            split_random_streams(model, self.rank)
            self._rngs_split_for = model
        if model.device != "cpu":
            self.comm.synchronize = getattr(get_device(model.device), "synchronize", None)

    def state_loaded(self):
        """Call after restoring random states (a checkpoint): the streams are split again."""
        self._rngs_split_for = None

    def broadcast_state(self, model):
        """Copy rank 0's parameters and buffers to every rank."""
        pendings = [self.comm.ibcast(p.data, f"broadcasting parameter '{name}'")
                    for name, p in model.named_parameters()]
        pendings += [self.comm.ibcast(b, f"broadcasting buffer '{name}'")
                     for name, b in model.named_buffers()]
        self.comm.wait(pendings, "broadcasting the parameters from rank 0")

    def begin_fit(self, trainer):
        self.prepare(trainer.model)
        self.broadcast_state(trainer.model)

    # -- a step -----------------------------------------------------------------------------------

    def train_step(self, trainer, x, y):
        """One data-parallel step on this rank's shard ``(x, y)`` (possibly empty).

        Returns ``(loss over the global batch, local logits or None, global sample count,
        {k: global top-k correct})``; the optimiser has stepped on every rank.
        """
        started, started_cpu = time.perf_counter(), time.process_time()
        model, loss, comm = trainer.model, trainer.loss, self.comm
        self.prepare(model)
        n = len(y)
        mean = getattr(loss, "reduction", "mean") != "sum"
        stats = np.zeros(3 + len(trainer.topk))   # loss sum, samples, non-finite ranks, correct
        self._stats_bytes = stats.nbytes
        logits, value, bad_here = None, float("nan"), False
        step = trainer.step + 1
        self.hooks.in_step = True
        try:
            if n:
                synced = self.hooks.synced_forwards
                logits = model(x)
                if self.sync_batchnorm and self.hooks.synced_forwards == synced:
                    _check_no_batch_statistics(model)
                value = loss(logits, y)
                bad_here = not math.isfinite(value)
                stats[:3] = (value * n if mean else value), n, float(bad_here)
                for j, k in enumerate(trainer.topk):
                    stats[3 + j] = topk_correct(logits, y, k)
            pendings = [comm.iallreduce(stats, f"the loss and accuracy of step {step}")]
            self.buckets.begin()
            if n:
                # the loss gradient scaled by n: this rank's part of the global sum's gradient
                # (backward runs even for a non-finite loss, so every rank makes the same calls)
                if self.overlap and self.hooks.installed:
                    self.hooks.begin_backward(self.buckets)
                model.backward(loss.backward(float(n) if mean else 1.0), input_grad=False)
                self.hooks.end_backward()
            else:
                self.buckets.zero()
            self.buckets.start_all(comm)
            waiting = time.perf_counter()
            self.compute_seconds += waiting - started
            self.compute_cpu_seconds += time.process_time() - started_cpu
            comm.wait(pendings + self.buckets.pendings(), f"the gradient allreduce of step {step}")
            self.wait_seconds += time.perf_counter() - waiting
        finally:
            self.hooks.in_step = False
            self.hooks.active = False
        total = stats[1]
        if stats[2] > 0:
            raise self._diverged(trainer, x, value, bad_here)
        self.buckets.scale(1.0 / total if mean else 1.0)
        trainer._apply_update()
        self.steps += 1
        value = stats[0] / total if mean else stats[0]
        correct = {k: int(round(stats[3 + j])) for j, k in enumerate(trainer.topk)}
        return value, logits, int(total), correct

    def _diverged(self, trainer, x, value, bad_here):
        """The same TrainingDiverged on every rank, naming the ranks whose loss was not finite."""
        from ..train import TrainingDiverged
        flags = np.zeros((self.size, 1), np.float64)
        self.comm.allgather(np.array([float(bad_here)]), flags, "finding the diverged ranks")
        bad = [r for r in range(self.size) if flags[r, 0]]
        if bad_here:
            err = trainer._diverged(x, value)
            err = TrainingDiverged(f"{err} (rank {self.rank}; ranks with a non-finite loss: "
                                   f"{bad})")
        else:
            err = TrainingDiverged(f"the loss is not finite on rank(s) {bad} at step "
                                   f"{trainer.step} (epoch {trainer.epoch}); weights were not "
                                   f"updated by this step")
        err.collective = True
        return err

    # -- between steps ----------------------------------------------------------------------------

    def reduce_sums(self, values, what="reducing metrics"):
        """Sum a float64 vector over the ranks (in place; returned)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        return self.comm.allreduce(values, what)

    def broadcast_flag(self, flag, what="broadcasting rank 0's decision"):
        buf = np.array([1 if flag else 0], np.int8)
        self.comm.bcast(buf, what)
        return bool(buf[0])

    def sync_buffers(self, model):
        """Make buffers equal on every rank: floating ones (running statistics) averaged, or
        broadcast from rank 0 with synced batch norm (they are already equal); others
        broadcast."""
        if self.size == 1:
            return
        from ..optim import backend_for
        averaged, broadcast = [], []
        for name, buf in model.named_buffers():
            floating = np.dtype(buf.dtype).kind == "f" and not self.sync_batchnorm
            (averaged if floating else broadcast).append((name, buf))
        pendings = [self.comm.iallreduce(b, f"averaging buffer '{n}'") for n, b in averaged]
        pendings += [self.comm.ibcast(b, f"broadcasting buffer '{n}'") for n, b in broadcast]
        self.comm.wait(pendings, "synchronising the buffers")
        for _, buf in averaged:
            backend_for(buf).scale_(buf, 1.0 / self.size)

    def barrier(self, what="waiting for every rank"):
        self.comm.barrier(what)

    def check_replicas(self, model):
        """Raise :class:`DistributedError` unless every rank's parameters and buffers are
        bit-identical to rank 0's; returns True."""
        arrays = [(n, p.data) for n, p in model.named_parameters()]
        arrays += list(model.named_buffers())
        sums = np.array([zlib.crc32(np.ascontiguousarray(to_numpy(a)).view(np.uint8))
                         for _, a in arrays], np.int64)
        everyone = np.zeros((self.size, len(sums)), np.int64)
        self.comm.allgather(sums, everyone, "comparing the replicas")
        differ = {r: [arrays[i][0] for i in np.flatnonzero(everyone[r] != everyone[0])]
                  for r in range(1, self.size)}
        differ = {r: names for r, names in differ.items() if names}
        if differ:
            text = "; ".join(f"rank {r}: {', '.join(names[:4])}" for r, names in differ.items())
            raise DistributedError(f"the replicas differ from rank 0's: {text}",
                                   ranks=sorted(differ), collective=True)
        return True

    # -- failures ---------------------------------------------------------------------------------

    def report_failure(self, exc):
        """Tell the other ranks that this one failed (they raise DistributedError naming it)."""
        self.comm.report_failure(exc)

    def abort(self, code=1):
        """End the whole job (every rank) with ``MPI_Abort``; nothing on a one-rank job."""
        self.comm.abort(code)

    def bytes_per_step(self):
        """Gradient and metric bytes each rank hands to allreduce per step (the payload; a ring
        allreduce sends and receives 2 (R - 1) / R times this per rank)."""
        grads = self.buckets.nbytes if self.buckets is not None else 0
        return grads + self._stats_bytes

    def __repr__(self):
        return (f"DataParallel(rank={self.rank}, size={self.size}, sync_batchnorm="
                f"{self.sync_batchnorm}, bucket_bytes={self.bucket_bytes}, overlap={self.overlap}, "
                f"timeout={self.timeout:g})")
