"""Data-parallel training on one rank: what the distributed step adds to a plain step.

``DataParallelStep`` times a LeNet-5 training step (batch 64) through ``Trainer.train_step`` plain
and through the data-parallel path with a one-rank communicator (kernel hooks, gradient buckets,
the metric and gradient reductions, the 1/N scaling), and tracks the overhead in percent. The
multi-rank figures need ``mpiexec``: see ``scripts/scaling_mpi.py`` and ``docs/distributed.md``.
"""

import numpy as np

import minicnn
from minicnn import data, nn, optim, zoo
from minicnn.distributed import DataParallel, LocalCommunicator
from minicnn.train import Trainer

from ._util import best_seconds


class DataParallelStep:
    params = (["plain", "data_parallel"],)
    param_names = ["path"]

    def setup(self, path):
        minicnn.manual_seed(0)
        model = zoo.lenet5(num_classes=10)
        self.x, self.y = data.DataLoader(data.Shapes(64, seed=0), batch_size=64) \
            .load_batch(np.arange(64))
        distributed = DataParallel(LocalCommunicator()) if path == "data_parallel" else False
        self.trainer = Trainer(model, nn.CrossEntropyLoss(),
                               optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                               progress=False, distributed=distributed)
        if distributed:
            distributed.begin_fit(self.trainer)
        self.trainer.train_step(self.x, self.y)      # compile and allocate outside the timing

    def time_step(self, path):
        self.trainer.train_step(self.x, self.y)

    def track_images_per_s(self, path):
        return 64 / best_seconds(lambda: self.trainer.train_step(self.x, self.y), repeat=7)

    track_images_per_s.unit = "images/s"
