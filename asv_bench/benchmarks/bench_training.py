"""Training: whole steps in images/s, peak memory of an epoch, and accuracy after a short run.

* ``TrainingStep``: forward, cross-entropy, backward, SGD step (momentum, weight decay) of LeNet-5
  (batch 64, 1x28x28) and ResNet-20 (batch 32, 3x32x32), on the CPU and, when minicnn has a CUDA
  device and the model's kernels, on the GPU (skipped otherwise).
* ``TrainingEpochMemory``: ``peakmem_`` of one epoch through ``Trainer.fit`` (the process's peak
  resident memory, setup included, as asv measures it) and, as a ``track_``, the peak of the
  memory numpy allocates during the epoch alone (tracemalloc; buffers the executor allocates).
* ``ShortTraining``: validation top-1 accuracy of LeNet-5 after two epochs on 4,000 generated
  Shapes images (built in, always present); ``MNISTTraining``: after one epoch on 6,000 MNIST
  images (validated on 2,000 others) when the IDX files are in ``$MINICNN_MNIST_DIR`` or
  ``../shared/data/mnist`` (the test set alone is split when the training files are absent;
  skipped without any). Seeds are fixed, so on the CPU the figure moves only when numerics do.
"""

import os
import tracemalloc
from pathlib import Path

import numpy as np

import minicnn
from minicnn import data, nn, optim, zoo
from minicnn.train import Trainer

from ._util import best_seconds

# name -> (constructor, batch, per-sample input shape)
MODELS = {
    "lenet5": (zoo.lenet5, 64, (1, 28, 28)),
    "resnet20": (zoo.resnet20, 32, (3, 32, 32)),
}


def _device_or_skip(model, device):
    if device == "cpu":
        return None
    try:
        from minicnn.device import get_device
        dev = get_device(device)
    except Exception as exc:
        raise NotImplementedError(f"device '{device}' not available: {exc}") from exc
    registry = minicnn.get_registry()
    if hasattr(registry, "enable_device"):      # built-in GPU kernels load with the device
        registry.enable_device(device)
    missing = sorted({type(m).type_name for _, m in model.named_modules()
                      if isinstance(m, minicnn.Layer)
                      and registry.kernel(type(m).type_name, device) is None})
    if missing:
        raise NotImplementedError(f"no '{device}' kernel for {', '.join(missing)}")
    return dev


def _sync(device):
    if device == "cuda":
        from numba import cuda
        cuda.synchronize()


class TrainingStep:
    params = (list(MODELS), ["cpu", "cuda"])
    param_names = ["model", "device"]
    timeout = 300

    def setup(self, name, device):
        factory, batch, shape = MODELS[name]
        minicnn.manual_seed(0)
        self.model = factory(num_classes=10).train()
        dev = _device_or_skip(self.model, device)
        rng = np.random.default_rng(0)
        self.x = rng.random((batch,) + shape, dtype=np.float32)
        self.y = rng.integers(0, 10, batch).astype(np.int64)
        if dev is not None:
            self.model.to(device)
            self.x, self.y = dev.asarray(self.x), dev.asarray(self.y)
        self.device, self.batch = device, batch
        self.loss = nn.CrossEntropyLoss()
        self.opt = optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        self._step()                  # compile and allocate outside the timing

    def _step(self):
        self.loss.compute(self.model(self.x), self.y)   # not read back, as in a PyTorch step
        self.model.backward(self.loss.backward(), input_grad=False)
        self.opt.step()
        _sync(self.device)

    def time_train_step(self, name, device):
        self._step()

    def track_train_images_per_s(self, name, device):
        return self.batch / best_seconds(self._step, repeat=3)

    track_train_images_per_s.unit = "images/s"


# name -> (constructor, training images, Shapes size and channels, batch)
EPOCHS = {
    "lenet5": (zoo.lenet5, 2048, 28, 1, 64),
    "resnet20": (zoo.resnet20, 256, 32, 3, 32),
}


class TrainingEpochMemory:
    params = (list(EPOCHS),)
    param_names = ["model"]
    timeout = 600

    def setup(self, name):
        factory, n, size, channels, batch = EPOCHS[name]
        minicnn.manual_seed(0)
        self.model = factory(num_classes=10, in_channels=channels)
        self.loader = data.DataLoader(data.Shapes(n, size=size, channels=channels, seed=0),
                                      batch_size=batch, shuffle=True, seed=0)
        self.trainer = Trainer(self.model, nn.CrossEntropyLoss(),
                               optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9),
                               progress=False)
        x, y = next(iter(self.loader))
        self.trainer.train_step(x, y)   # compile outside the measurement

    def peakmem_train_epoch(self, name):
        self.trainer.fit(self.loader, epochs=1)

    def track_train_epoch_numpy_peak_mb(self, name):
        tracemalloc.start()
        try:
            self.trainer.fit(self.loader, epochs=1)
            return tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()

    track_train_epoch_numpy_peak_mb.unit = "MB"


def _train_lenet(train, val, epochs, lr):
    minicnn.manual_seed(0)
    model = zoo.lenet5(num_classes=10)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, progress=False)
    loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0)
    trainer.fit(loader, epochs=epochs)
    return trainer.evaluate(data.DataLoader(val, batch_size=256))["top1"]


class ShortTraining:
    timeout = 600
    number = 1
    repeat = 1
    rounds = 1

    def track_shapes_lenet5_top1(self):
        return _train_lenet(data.Shapes(4000, seed=0), data.Shapes(1000, seed=1), epochs=2,
                            lr=0.05)

    track_shapes_lenet5_top1.unit = "accuracy"


def _mnist_dir():
    configured = os.environ.get("MINICNN_MNIST_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


class MNISTTraining:
    timeout = 600
    number = 1
    repeat = 1
    rounds = 1

    def setup(self):
        root = _mnist_dir()
        try:
            test = data.MNIST(root, split="test")
        except minicnn.DatasetNotFoundError as exc:
            raise NotImplementedError(f"MNIST files not found: {exc}") from exc
        try:
            self.train = data.Subset(data.MNIST(root, split="train"), np.arange(6000))
            self.val = data.Subset(test, np.arange(2000))
        except minicnn.DatasetNotFoundError:   # only the test set: 6,000 to train, 2,000 to check
            self.train = data.Subset(test, np.arange(6000))
            self.val = data.Subset(test, np.arange(8000, 10000))

    def track_mnist_lenet5_top1(self):
        return _train_lenet(self.train, self.val, epochs=1, lr=0.05)

    track_mnist_lenet5_top1.unit = "accuracy"
