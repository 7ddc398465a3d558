"""DataLoader: reproducible batches of a dataset, prepared on a background thread.

Reproducibility: epoch k of a loader with seed s shuffles with a generator derived from (s, k), and
sample i of epoch k is transformed with a generator derived from (s, k, i). The batches of an epoch
are therefore bit-identical whatever ``prefetch`` and ``num_workers`` say, and whichever thread
built them.
"""

import collections
import math
import numbers
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import seeding
from .dataset import Dataset, has_transform, stack_images, stack_samples


class DataLoader:
    """Iterate over ``dataset`` in batches ``(x float32 (N, C, H, W) contiguous, y int64 (N,))``.

    :param dataset: any object with ``__len__`` and ``__getitem__(i) -> (image, label)``.
    :param batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
    :param shuffle: a fresh permutation each epoch, drawn from (seed, epoch).
    :param seed: an int; None draws one from ``minicnn``'s generator (see ``minicnn.manual_seed``).
    :param transform: a per-sample ``transform(image, rng)`` applied after the dataset's own.
    :param prefetch: batches prepared ahead on a background thread (0: build them in the caller).
    :param num_workers: threads that build batches in parallel (0: the prefetch thread alone).
    Threads
        help where loading releases the GIL (Pillow decoding, large numpy operations).

    Each ``iter(loader)`` runs one epoch: the first is 0 (or what :meth:`set_epoch` set), then 1,
    2... An exception while loading is re-raised in the caller with its original traceback; stopping
    early (``break``, or ``close()`` on the iterator) stops and joins the background thread.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 transform=None, prefetch=2, num_workers=0):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        for what, value, low in (("batch_size", batch_size, 1), ("prefetch", prefetch, 0),
                                 ("num_workers", num_workers, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"DataLoader: {what} must be an int >= {low}, got {value!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable(image, rng), got "
                            f"{transform!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seeding.check_seed(seed)
        self.transform = transform
        self.prefetch = int(prefetch)
        self.num_workers = int(num_workers)
        self.epoch = 0

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch):
        """The epoch the next ``iter(loader)`` runs (then it counts up from there)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"DataLoader: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def batch_indices(self, epoch):
        """The dataset indices of every batch of ``epoch``, in order."""
        n = len(self.dataset)
        if self.shuffle:
            order = seeding.derive(seeding.SHUFFLE, self.seed, epoch).permutation(n)
        else:
            order = np.arange(n)
        bs = self.batch_size
        return [order[a:min(a + bs, n)] for a in range(0, min(len(self) * bs, n), bs)]

    def load_batch(self, indices, epoch=0):
        """One batch: the samples ``indices``, transformed with generators of ``epoch``."""
        dataset = self.dataset
        if self.transform is None and not has_transform(dataset):
            if isinstance(dataset, Dataset):
                return dataset.get_batch(indices)
            return stack_samples([dataset[int(i)] for i in indices], type(dataset).__name__)
        where = type(dataset).__name__
        rngs = [seeding.derive(seeding.SAMPLE, self.seed, epoch, int(i)) for i in indices]
        if isinstance(dataset, Dataset):       # the dataset's own transform draws first
            x, y = dataset.get_batch(indices, rngs)
            if self.transform is None:
                return x, y
            return stack_images([self.transform(x[k], r) for k, r in enumerate(rngs)], where), y
        samples = [dataset[int(i)] for i in indices]
        if self.transform is not None:
            samples = [(self.transform(image, r), label)
                       for (image, label), r in zip(samples, rngs, strict=True)]
        return stack_samples(samples, where)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        plan = self.batch_indices(epoch)
        if self.prefetch == 0 and self.num_workers == 0:
            return (self.load_batch(indices, epoch) for indices in plan)
        return _prefetched(self.load_batch, plan, epoch, max(1, self.prefetch), self.num_workers)

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size="
                f"{self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, seed="
                f"{self.seed}, prefetch={self.prefetch}, num_workers={self.num_workers})")


def _prefetched(*producer_args):
    """Yield the producer's batches; closing the generator (break, del) stops its thread.

    The thread starts at the first ``next``: a generator that never ran has no ``finally`` to run,
    so a thread started earlier could outlive an iterator dropped unused.
    """
    producer = _Producer(*producer_args)
    try:
        while True:
            kind, value = producer.get()
            if kind == "done":
                return
            if kind == "error":
                raise value        # the exception object carries the worker thread's traceback
            yield value
    finally:
        producer.close()


class _Producer:
    """A thread that builds the batches of ``plan`` in order into a bounded queue.

    The thread references only this object, never the consumer's generator, so a consumer that stops
    early is collected at once and its ``finally`` stops the thread.
    """

    def __init__(self, load, plan, epoch, depth, num_workers):
        self._load = load
        self._plan = plan
        self._epoch = epoch
        self._workers = num_workers
        self._depth = depth
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minicnn-data-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            if self._workers == 0:
                for indices in self._plan:
                    if not self._put(("batch", self._load(indices, self._epoch))):
                        return
            else:
                self._run_pool()
            self._put(("done", None))
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, who re-raises it)
            exc.add_note("(raised while loading a batch in the DataLoader's background thread)")
            self._put(("error", exc))

    def _run_pool(self):
        window = self._workers + self._depth
        with ThreadPoolExecutor(self._workers, thread_name_prefix="minicnn-data-worker") as pool:
            pending = collections.deque()
            plan = iter(self._plan)
            try:
                for indices in plan:
                    pending.append(pool.submit(self._load, indices, self._epoch))
                    if len(pending) >= window:
                        break
                while pending:
                    batch = pending.popleft().result()
                    if not self._put(("batch", batch)):
                        return
                    indices = next(plan, None)
                    if indices is not None:
                        pending.append(pool.submit(self._load, indices, self._epoch))
            finally:
                for future in pending:
                    future.cancel()

    def get(self):
        return self._queue.get()

    def close(self):
        self._stop.set()
        while self._thread.is_alive():
            try:                      # unblock a producer waiting on a full queue
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)
