"""Data-parallel training over MPI (mpi4py), the pattern Horovod made standard.

>>> trainer = Trainer(model, loss, opt, distributed=True)      # or distributed=DataParallel(...)
>>> trainer.fit(train_loader, epochs=5, val_loader=val_loader)

launched as ``mpiexec -n 4 python train.py`` (or ``mpiexec -n 4 minicnn train ...``). Every rank
holds a replica; rank 0's parameters are broadcast at the start; each global batch is sharded by
rank; gradients are averaged with allreduce on contiguous buckets started during backward; every
rank takes the same optimiser step; metrics are reduced; only rank 0 shows the progress bar and
writes files. Without a launcher the same script runs as one process. See ``docs/distributed.md``.

``pip install 'minicnn[distributed]'`` brings mpi4py and MPICH from PyPI; a system MPI works too.
"""

from .comm import Communicator, LocalCommunicator
from .data_parallel import DataParallel, split_random_streams
from .errors import DistributedError
from .launch import RankTerminated, abort_on_error, launched_by_mpi, set_threads_per_rank
from .sharding import ShardedLoader, shard_bounds

__all__ = [
    "Communicator", "DataParallel", "DistributedError", "LocalCommunicator", "RankTerminated",
    "ShardedLoader", "abort_on_error", "launched_by_mpi", "set_threads_per_rank", "shard_bounds",
    "split_random_streams",
]
