"""Collectives with deadlines: MPI through mpi4py, and a one-process stand-in.

MPI's blocking collectives wait forever when a rank never arrives. Every collective here is started
non-blocking (``Iallreduce``, ``Ibcast``, ``Iallgather``, ``Ibarrier``) and completed by
:meth:`Communicator.wait`, which polls ``Testall`` (spinning at first, then sleeping 1 ms between
short bursts of polls, so a rank waiting for a slow one does not burn a core), reads the control
channel every millisecond (another rank's failure report ends the wait at once) and gives up after
``timeout`` seconds, naming the ranks that no longer answer (see :mod:`.control`).

Polling also drives MPI's progress engine: most MPI builds advance a non-blocking collective only
inside MPI calls, so :meth:`progress` is called between backward kernels to move gradient buckets
along while the rest of backward runs.
"""

import contextlib
import os
import time
from collections import Counter

from .control import ControlChannel
from .errors import DistributedError
from .launch import import_mpi
from .staging import Staged, query_cuda_aware

ABORT_GRACE = 0.5   # seconds for the launcher to forward a failing rank's last output

SPIN_SECONDS = 0.1      # poll without sleeping for this long at the start of a wait
BURST_SECONDS = 2e-4    # then poll this long after each 1 ms sleep
_yield = getattr(os, "sched_yield", lambda: None)


class Pending:
    """A started collective: its request and what to do with its buffer when it completes."""

    __slots__ = ("request", "staged", "what")

    def __init__(self, request, staged, what):
        self.request, self.staged, self.what = request, staged, what


class Communicator:
    """One MPI communicator (``MPI.COMM_WORLD`` by default) for data-parallel training.

    :param timeout: seconds any collective may wait for the other ranks before the job is declared
        failed (it must exceed the longest gap between two collectives: a checkpoint save on rank
        0, the first step's JIT compilation).
    :param cuda_aware: pass device arrays to MPI as they are (None: ask the MPI library).
    """

    def __init__(self, comm=None, *, timeout=300.0, cuda_aware=None):
        MPI = import_mpi()
        self.MPI = MPI
        self.base = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.base.Get_rank()
        self.size = self.base.Get_size()
        self.timeout = float(timeout)
        self.control = None
        self._outstanding = []
        self.comm = self._dup("creating the training communicator")
        self.control = ControlChannel(MPI, self._dup("creating the control channel"))
        self.cuda_aware = query_cuda_aware(MPI) if cuda_aware is None else bool(cuda_aware)
        self.synchronize = None      # device synchronisation before handing device arrays to MPI
        self.bytes_reduced = 0       # payload bytes this rank passed to allreduce so far
        self.transfer_paths = Counter()   # buffers handed to MPI by path: host, device, staged

    def _stage(self, array):
        staged = Staged(array, self.cuda_aware, self.synchronize)
        self.transfer_paths[staged.path] += 1
        return staged

    def _dup(self, what):
        new, request = self.base.Idup()
        self.wait([Pending(request, None, what)], what)
        return new

    # -- starting collectives ---------------------------------------------------------------------

    def _start(self, request, staged, what):
        pending = Pending(request, staged, what)
        self._outstanding.append(request)
        return pending

    def iallreduce(self, array, what):
        """Start summing ``array`` over all ranks, in place."""
        staged = self._stage(array)
        self.bytes_reduced += staged.buffer.nbytes
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, staged.buffer, op=self.MPI.SUM)
        return self._start(request, staged, what)

    def ibcast(self, array, what, root=0):
        """Start copying rank ``root``'s ``array`` into every rank's ``array``."""
        staged = self._stage(array)
        return self._start(self.comm.Ibcast(staged.buffer, root=root), staged, what)

    def iallgather(self, send, recv, what):
        """Start gathering every rank's ``send`` (host arrays) into ``recv`` (ranks first)."""
        return self._start(self.comm.Iallgather(send, recv), None, what)

    def ibarrier(self, what):
        return self._start(self.comm.Ibarrier(), None, what)

    # -- completing them --------------------------------------------------------------------------

    def progress(self):
        """Let MPI advance started collectives (cheap; call it between pieces of work)."""
        if self._outstanding:
            self.MPI.Request.Testall(self._outstanding)
            self._outstanding = [r for r in self._outstanding if r != self.MPI.REQUEST_NULL]

    def wait(self, pendings, what=None):
        """Complete ``pendings`` or raise :class:`DistributedError` (peer failure or timeout).

        MPI advances a collective only inside MPI calls, one round per call at best, so the loop
        first spins on ``Testall`` (yielding the core to any other runnable process between
        polls) for ``SPIN_SECONDS``; a longer wait (a slow rank) then sleeps 1 ms between short
        bursts of polls, so that waiting costs little CPU and a collective that can move on again
        finishes within a burst.
        """
        requests = [p.request for p in pendings]
        what = what or (pendings[0].what if pendings else "a collective")
        testall = self.MPI.Request.Testall
        now = time.monotonic()
        deadline, spin_until, next_check = now + self.timeout, now + SPIN_SECONDS, now
        while not testall(requests):
            _yield()
            now = time.monotonic()
            if now >= next_check:        # the control channel and the deadline, every ms
                next_check = now + 1e-3
                if self.control is not None:
                    self.control.poll()
                if now > deadline:
                    self._timed_out(what)
                if now > spin_until:
                    time.sleep(1e-3)
                    burst = time.monotonic() + BURST_SECONDS
                    while time.monotonic() < burst and not testall(requests):
                        _yield()
        for p in pendings:
            if p.staged is not None:
                p.staged.complete()
        self._outstanding = [r for r in self._outstanding if r != self.MPI.REQUEST_NULL]

    def _timed_out(self, what):
        if self.control is None:
            raise DistributedError(f"rank {self.rank}: {what} did not complete within "
                                   f"{self.timeout:g} s")
        grace = min(max(1.0, self.timeout / 4), 10.0)
        silent = self.control.silent_ranks(grace)
        if silent:
            names = ", ".join(str(r) for r in silent)
            raise DistributedError(
                f"rank {self.rank}: {what} did not complete within {self.timeout:g} s, and rank(s) "
                f"{names} did not answer within a further {grace:g} s: dead or hung",
                rank=silent[0], ranks=silent)
        raise DistributedError(
            f"rank {self.rank}: {what} did not complete within {self.timeout:g} s although every "
            f"rank answered: the ranks are in different collectives, or one is slower than the "
            f"timeout (raise it)")

    # -- blocking forms ---------------------------------------------------------------------------

    def allreduce(self, array, what):
        self.wait([self.iallreduce(array, what)])
        return array

    def bcast(self, array, what, root=0):
        self.wait([self.ibcast(array, what, root)])
        return array

    def allgather(self, send, recv, what):
        self.wait([self.iallgather(send, recv, what)])
        return recv

    def barrier(self, what):
        self.wait([self.ibarrier(what)])

    # -- failures ---------------------------------------------------------------------------------

    def report_failure(self, exc):
        """Tell the other ranks that this one failed with ``exc`` (once; not when the failure
        came from them, or when every rank raised it together)."""
        if getattr(exc, "propagated", False) or getattr(exc, "collective", False) \
                or getattr(exc, "_minicnn_reported", False):
            return
        with contextlib.suppress(AttributeError, TypeError):
            exc._minicnn_reported = True
        if self.control is not None:
            self.control.broadcast_error(f"{type(exc).__name__}: {exc}")

    def await_acknowledgements(self, exc, wait=None):
        """After reporting ``exc``: wait until the live ranks have acknowledged it (at most
        ``wait`` seconds, default the timeout capped at 30 s); returns the ranks that did not."""
        if self.control is None or getattr(exc, "propagated", False):
            return []
        wait = min(self.timeout, 30.0) if wait is None else wait
        return self.control.await_acknowledgements(getattr(exc, "ranks", ()), wait)

    def abort(self, code=1):
        """End every rank of the job (``MPI_Abort``); this process ends here too (some MPI
        libraries return from ``MPI_Abort`` and leave the killing to the launcher)."""
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        # the launcher forwards our output through pipes and stops reading them when it learns
        # of the abort: without a pause, the message saying why sometimes never reached the user
        time.sleep(ABORT_GRACE)
        self.base.Abort(code)
        os._exit(code)


class LocalCommunicator:
    """The communicator of a one-process job: every collective is already complete."""

    rank = 0
    size = 1
    cuda_aware = False

    def __init__(self, timeout=300.0):
        self.timeout = float(timeout)
        self.synchronize = None
        self.bytes_reduced = 0
        self.transfer_paths = Counter()     # always empty: nothing is handed to MPI

    def iallreduce(self, array, what):
        return None

    def ibcast(self, array, what, root=0):
        return None

    def iallgather(self, send, recv, what):
        recv[...] = send           # every row: this rank's contribution
        return None

    def ibarrier(self, what):
        return None

    def progress(self):
        pass

    def wait(self, pendings, what=None):
        pass

    def allreduce(self, array, what):
        return array

    def bcast(self, array, what, root=0):
        return array

    def allgather(self, send, recv, what):
        self.iallgather(send, recv, what)
        return recv

    def barrier(self, what):
        pass

    def report_failure(self, exc):
        pass

    def await_acknowledgements(self, exc, wait=None):
        return []

    def abort(self, code=1):
        pass
