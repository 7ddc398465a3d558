"""Finding out whether an MPI launcher started this process, importing mpi4py, ending a failed job.

``mpiexec -n 4 minicnn train`` starts four processes whose environment says so (MPICH and Intel MPI
set ``PMI_RANK``/``PMI_SIZE``, Open MPI ``OMPI_COMM_WORLD_SIZE``, PMIx launchers such as
``srun --mpi=pmix`` ``PMIX_RANK``, MVAPICH ``MV2_COMM_WORLD_SIZE``). Reading the environment lets
``minicnn train`` decide without importing mpi4py, so a run without a launcher never touches MPI.
"""

import contextlib
import os
import signal
import sys
import time

from .errors import DistributedError

INSTALL_HINT = ("pip install 'minicnn[distributed]' (mpi4py and the mpich wheel from PyPI; a "
                "system MPI works too: pip install mpi4py against it)")

_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")


def launched_size():
    """The world size an MPI launcher announced in the environment, or None without a launcher.

    PMIx launchers may set only ``PMIX_RANK``; the size is then unknown until MPI starts, and this
    returns 0 ("launched, size unknown").
    """
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    if any(os.environ.get(name, "").isdigit() for name in _RANK_VARIABLES):
        return 0
    return None


def launched_by_mpi():
    """True when this process was started by an MPI launcher for a job of more than one rank (or of
    unknown size)."""
    size = launched_size()
    return size is not None and size != 1


def import_mpi():
    """``mpi4py.MPI`` (initialising MPI), or a clear error saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(f"distributed training needs mpi4py and an MPI library: "
                               f"{INSTALL_HINT} ({exc})") from exc
    return MPI


def set_threads_per_rank(ranks_on_this_host, threads=None):
    """Give each rank its share of this host's cores for Numba's thread pool.

    Without it, four ranks on a 16-core machine would each start 16 threads (64 threads on 16
    cores: several times slower). ``threads`` wins when given; otherwise an explicit
    ``NUMBA_NUM_THREADS`` in the environment is respected; otherwise cores / ranks on this host.
    Returns the number of threads set (None when left alone).
    """
    import numba
    if threads is None:
        if "NUMBA_NUM_THREADS" in os.environ:
            return None
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:       # not on Linux
            cores = os.cpu_count() or 1
        threads = max(1, cores // max(1, ranks_on_this_host))
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads


class RankTerminated(Exception):
    """This rank received SIGTERM or SIGHUP (a scheduler or a user stopping it)."""


@contextlib.contextmanager
def terminate_as_exception():
    """Turn SIGTERM and SIGHUP into :class:`RankTerminated` inside the block, so that a rank being
    stopped tells the others (a SIGKILL cannot be caught: the others find out by their timeout,
    or the launcher ends the job)."""
    def handler(signum, frame):
        raise RankTerminated(f"received signal {signal.Signals(signum).name}")

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:      # not the main thread: leave signals alone
                pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def abort_on_error(parallel, prefix="minicnn", stream=None):
    """Run a distributed job's body; on any exception print the error with this rank's number,
    tell the other ranks (and wait until they have acknowledged, so that each says why it stops),
    and end the whole job with ``MPI_Abort`` (a rank that simply exited would leave the others
    waiting, and ``MPI_Finalize`` with a collective still pending can hang).

    An error every rank raised at the same point (``collective``, e.g. a diverged loss seen by all)
    is re-raised instead: the communicator is still consistent and the job can end normally.
    """
    stream = stream or sys.stderr
    try:
        with terminate_as_exception():
            yield
    except BaseException as exc:
        if getattr(exc, "collective", False):
            raise
        print(f"{prefix}: error on rank {parallel.rank} of {parallel.size}: "
              f"{type(exc).__name__}: {exc}", file=stream, flush=True)
        parallel.report_failure(exc)
        if getattr(exc, "propagated", False):
            time.sleep(0.2)          # let the failed rank's own message out first
        else:
            parallel.comm.await_acknowledgements(exc)
        parallel.abort(1)
        raise
