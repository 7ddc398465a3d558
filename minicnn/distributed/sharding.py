"""Cutting each global batch into one shard per rank, deterministically.

Every rank builds the same global batch: the same loader (same seed, hence the same permutation of
epoch k), the same batch size. ``shard_bounds`` cuts a batch of n samples into ``size`` contiguous
pieces whose sizes differ by at most one (the first ``n % size`` ranks take one more), and rank r
loads only its piece. A sample's augmentation is drawn from (seed, epoch, sample index), not from
its position, so rank r's samples are bit-identical to those a single process would have drawn for
the same global batch.

A last batch smaller than the number of ranks leaves some ranks with no sample; they still take
part in the step (they contribute zero gradients and zero counts), so every rank performs the same
collectives. With ``drop_partial`` such a batch is skipped on every rank instead (synced batch
norm needs samples on every rank). Gradients are weighted by shard size (see
:mod:`.data_parallel`), so uneven shards give exactly the gradient of the global batch.
"""

import numpy as np


def shard_bounds(n, rank, size):
    """``(start, stop)`` of rank ``rank``'s piece of a batch of ``n`` samples."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} out of range for {size} ranks")
    base, extra = divmod(int(n), int(size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class ShardedLoader:
    """This rank's shard of every batch of a :class:`minicnn.data.DataLoader`.

    Iterating runs one epoch of the wrapped loader (its epoch counter advances as if it had been
    iterated) and yields ``(x, y)`` of this rank's samples; an empty shard yields arrays with zero
    rows. ``len()`` is the number of global batches, the same on every rank.
    """

    def __init__(self, loader, rank, size, drop_partial=False):
        if not (hasattr(loader, "batch_indices") and hasattr(loader, "load_batch")):
            raise TypeError(f"distributed training shards a minicnn.data.DataLoader (anything with "
                            f"batch_indices(epoch) and load_batch(indices, epoch)); got "
                            f"{type(loader).__name__}")
        self.loader, self.rank, self.size = loader, int(rank), int(size)
        self.drop_partial = bool(drop_partial)

    def _global_batches(self, epoch):
        batches = self.loader.batch_indices(epoch)
        if self.drop_partial:
            batches = [b for b in batches if len(b) >= self.size]
        return batches

    def __len__(self):
        if not self.drop_partial:
            return len(self.loader)
        return len(self._global_batches(self.loader.epoch))

    def set_epoch(self, epoch):
        self.loader.set_epoch(epoch)

    @property
    def dataset(self):
        return self.loader.dataset

    def plan(self, epoch):
        """This rank's dataset indices for every batch of ``epoch`` (possibly empty arrays)."""
        out = []
        for indices in self._global_batches(epoch):
            start, stop = shard_bounds(len(indices), self.rank, self.size)
            out.append(np.asarray(indices[start:stop]))
        return out

    def _load(self, indices, epoch):
        if len(indices):
            return self.loader.load_batch(indices, epoch)
        first = self.loader.batch_indices(epoch)[0][:1]      # an empty batch of the right shape
        x, y = self.loader.load_batch(first, epoch)
        return x[:0], y[:0]

    def __iter__(self):
        loader = self.loader
        epoch = loader.epoch
        loader.epoch += 1
        plan = self.plan(epoch)
        if getattr(loader, "prefetch", 0) == 0 and getattr(loader, "num_workers", 0) == 0:
            return (self._load(indices, epoch) for indices in plan)
        from ..data.loader import _prefetched  # the loader's background-thread machinery
        return _prefetched(self._load, plan, epoch, max(1, loader.prefetch), loader.num_workers)

    def __repr__(self):
        return f"ShardedLoader({self.loader!r}, rank={self.rank}, size={self.size})"
