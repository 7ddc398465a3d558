"""The control channel: how ranks tell each other about failures, and find out who is alive.

It is a duplicate of the training communicator used only for small point-to-point messages, so it
never mixes with the collectives. Every rank reads it whenever it waits for a collective:

* ``ERROR`` (text): the sender raised; the reader acknowledges (``ACK``) and raises
  :class:`DistributedError` naming it. The sender waits for the acknowledgements before it ends
  the job, so that every rank has said why it stops.
* ``PING`` / ``PONG``: a rank whose collective timed out pings every other rank and waits a grace
  period for the answers. Ranks that are themselves waiting in a collective answer at once (they
  poll this channel); a rank that died or hangs (stopped, deadlocked, stuck in I/O) does not, and
  is named in the error.

Messages are raw UTF-8 bytes (no pickle).
"""

import time

from .errors import DistributedError

TAG_ERROR = 901
TAG_PING = 902
TAG_PONG = 903
TAG_ACK = 904


class ControlChannel:
    def __init__(self, MPI, comm):
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._sends = []            # (request, buffer) pairs kept alive until sent
        self._pongs = set()
        self._acks = set()
        self._status = MPI.Status()

    def _send(self, dest, tag, payload):
        buf = bytearray(payload)
        request = self.comm.Isend([buf, self.MPI.BYTE], dest=dest, tag=tag)
        self._sends.append((request, buf))

    def _reap(self):
        self._sends = [(r, b) for r, b in self._sends if not r.Test()]

    def poll(self, errors=True):
        """Answer pings, note pongs and acknowledgements, and raise if another rank reported a
        failure (``errors=False``: acknowledge it without raising)."""
        MPI, status = self.MPI, self._status
        while self.comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG, status):
            source, tag = status.Get_source(), status.Get_tag()
            buf = bytearray(status.Get_count(MPI.BYTE))
            self.comm.Recv([buf, MPI.BYTE], source=source, tag=tag)
            if tag == TAG_PING:
                self._send(source, TAG_PONG, b"")
            elif tag == TAG_PONG:
                self._pongs.add(source)
            elif tag == TAG_ACK:
                self._acks.add(source)
            elif tag == TAG_ERROR:
                self._send(source, TAG_ACK, b"")
                if errors:
                    self._flush(1.0)
                    text = buf.decode("utf-8", "replace")
                    raise DistributedError(f"rank {source} failed, so rank {self.rank} stops: "
                                           f"{text}", rank=source, propagated=True)
        if self._sends:
            self._reap()

    def _flush(self, wait):
        deadline = time.monotonic() + wait
        while self._sends and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.001)

    def silent_ranks(self, grace):
        """Ping every other rank; return those that did not answer within ``grace`` seconds."""
        self._pongs.clear()
        others = [r for r in range(self.size) if r != self.rank]
        for r in others:
            self._send(r, TAG_PING, b"")
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and len(self._pongs) < len(others):
            self.poll()
            time.sleep(0.002)
        return [r for r in others if r not in self._pongs]

    def broadcast_error(self, text, wait=2.0):
        """Tell every other rank that this one failed (best effort, at most ``wait`` seconds)."""
        payload = text.encode("utf-8", "replace")[:4000]
        self._acks.clear()
        for r in range(self.size):
            if r != self.rank:
                self._send(r, TAG_ERROR, payload)
        self._flush(wait)

    def await_acknowledgements(self, exclude=(), wait=30.0):
        """Wait (at most ``wait`` seconds) until every other rank not in ``exclude`` has
        acknowledged the error this rank broadcast; returns the ranks that did not."""
        others = {r for r in range(self.size) if r != self.rank and r not in set(exclude)}
        deadline = time.monotonic() + wait
        while not others <= self._acks and time.monotonic() < deadline:
            self.poll(errors=False)
            time.sleep(0.002)
        return sorted(others - self._acks)
