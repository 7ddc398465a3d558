"""Gradient buckets: every trainable gradient lives in a few contiguous buffers, reduced whole.

One allreduce per parameter would pay MPI's latency dozens of times per step; one allreduce of
everything could only start after the whole of backward. Buckets are the middle way (Horovod's
tensor fusion, PyTorch DDP's buckets): parameters are taken in the order their gradients become
final in backward (the last layer first), and consecutive parameters of one dtype are packed into a
bucket until it holds ``bucket_bytes``. Each ``Param.grad`` is made a view into its bucket, so the
executor's kernels write gradients straight into the buffer MPI sends: no copies.

A bucket is started (``Iallreduce``) as soon as all its parameters are final, in bucket order, so
every rank starts the same collectives in the same order whatever the timing; the rest of backward
then runs while the bucket travels.

A bucket lives where its parameters do: on the GPU for a model moved with ``model.to("cuda")``
(the kernels write device gradients into it; :mod:`.staging` hands it to MPI), on the host for
layers left on the CPU (``fallback="cpu"``). Parameters on different devices never share one.
"""

from ..device import device_of, get_device


class Bucket:
    __slots__ = ("index", "params", "flat", "waiting", "pending")

    def __init__(self, index, params, flat):
        self.index, self.params, self.flat = index, params, flat
        self.waiting = set()
        self.pending = None

    @property
    def nbytes(self):
        return int(self.flat.size) * self.flat.dtype.itemsize


class GradientBuckets:
    """The buckets of ``params`` (trainable ``Param`` objects, in backward order), each on its
    parameters' device (``device``: the model's, used for parameters whose device cannot be
    told)."""

    def __init__(self, params, device="cpu", bucket_bytes=1 << 20):
        self.params = list(params)
        self.key = signature(self.params)
        self.buckets, self.views, self._bucket_of = [], {}, {}
        group, group_bytes = [], 0
        for p in self.params + [None]:
            if group and (p is None or p.data.dtype != group[0].data.dtype
                          or device_of(p.data) != device_of(group[0].data)
                          or group_bytes + p.data.nbytes > bucket_bytes):
                self._make_bucket(group, get_device(device_of(group[0].data)))
                group, group_bytes = [], 0
            if p is not None:
                group.append(p)
                group_bytes += p.data.nbytes
        self._next = 0

    def _make_bucket(self, group, dev):
        total = sum(int(p.data.size) for p in group)
        flat = dev.zeros((total,), group[0].data.dtype)
        bucket = Bucket(len(self.buckets), group, flat)
        offset = 0
        for p in group:
            size = int(p.data.size)
            self.views[id(p)] = flat[offset:offset + size].reshape(p.data.shape)
            self._bucket_of[id(p)] = bucket
            offset += size
        self.buckets.append(bucket)

    @property
    def nbytes(self):
        return sum(b.nbytes for b in self.buckets)

    def attach(self):
        """Make every ``Param.grad`` the view into its bucket (again, if something replaced it)."""
        for p in self.params:
            view = self.views[id(p)]
            if p.grad is not view:
                p.grad = view

    # -- one step ---------------------------------------------------------------------------------

    def begin(self):
        for b in self.buckets:
            b.waiting = {id(p) for p in b.params}
            b.pending = None
        self._next = 0

    def ready(self, params, comm):
        """These parameters' gradients are final: start every bucket that is now complete."""
        for p in params:
            bucket = self._bucket_of.get(id(p))
            if bucket is not None:
                bucket.waiting.discard(id(p))
        while self._next < len(self.buckets) and not self.buckets[self._next].waiting:
            self._start(self.buckets[self._next], comm)

    def start_all(self, comm):
        """Start every bucket not started yet (after backward, or on a rank that had no data)."""
        while self._next < len(self.buckets):
            self._start(self.buckets[self._next], comm)

    def _start(self, bucket, comm):
        bucket.waiting.clear()
        bucket.pending = comm.iallreduce(bucket.flat, f"the allreduce of gradient bucket "
                                                      f"{bucket.index} ({bucket.nbytes} bytes)")
        self._next += 1

    def pendings(self):
        return [b.pending for b in self.buckets if b.pending is not None]

    def zero(self):
        from ..optim import backend_for
        for b in self.buckets:
            backend_for(b.flat).zero_(b.flat)

    def scale(self, factor):
        from ..optim import backend_for
        if factor != 1.0:
            for b in self.buckets:
                backend_for(b.flat).scale_(b.flat, factor)


def signature(params):
    """What the bucket layout depends on: which parameters, their dtypes and shapes."""
    return tuple((id(p), p.data.dtype.str, tuple(p.data.shape), device_of(p.data))
                 for p in params)
