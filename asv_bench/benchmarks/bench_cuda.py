"""The CUDA backend on a real GPU: LeNet-5 training steps, a 3x3 convolution and ReLU, with inputs
already on the device. Every setup raises NotImplementedError (asv: skipped) without a GPU, and
on numba's simulator, which is far too slow to time."""

import numpy as np

from minicnn import nn, optim, zoo

from ._util import data, rate


def _cuda():
    """The cuda device, or NotImplementedError (asv skips the benchmark)."""
    import os
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise NotImplementedError("the CUDA simulator is not timed")
    from minicnn.device import get_device
    try:
        return get_device("cuda")
    except RuntimeError as exc:
        raise NotImplementedError(f"no CUDA GPU: {exc}") from None


class LeNet5Step:
    params = ([64, 256],)
    param_names = ["batch"]

    def setup(self, batch):
        self.dev = _cuda()
        self.model = zoo.lenet5().to("cuda")
        self.loss = nn.CrossEntropyLoss()
        self.opt = optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.x = self.dev.asarray(data((batch, 1, 28, 28)))
        self.y = self.dev.asarray(np.arange(batch) % 10)
        self.time_train_step(batch)    # compile and allocate outside the timing

    def time_train_step(self, batch):
        self.loss(self.model(self.x), self.y)
        self.model.backward(self.loss.backward(), input_grad=False)
        self.opt.step()
        self.dev.synchronize()

    def track_images_per_s(self, batch):
        return rate(lambda: self.time_train_step(batch), batch)

    track_images_per_s.unit = "images/s"


class Conv3x3:
    params = ([(32, 64, 56, 56)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.dev = _cuda()
        n, c, h, w = shape
        self.layer = nn.Conv2d(c, c, 3, padding=1).to("cuda")
        self.x = self.dev.asarray(data(shape))
        self.gy = self.dev.asarray(data(shape, seed=1))
        self.time_forward_backward(shape)

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)
        self.dev.synchronize()

    def track_forward_gflops(self, shape):
        n, c, h, w = shape
        return rate(lambda: self.time_forward(shape), 2 * n * c * c * 9 * h * w) / 1e9

    track_forward_gflops.unit = "GFLOP/s"


class ReLUDevice:
    params = ([(32, 64, 56, 56)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.dev = _cuda()
        self.layer = nn.ReLU().to("cuda")
        self.x = self.dev.asarray(data(shape))
        self.time_forward(shape)

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def track_forward_gbytes_per_s(self, shape):
        return rate(lambda: self.time_forward(shape), 2 * 4 * int(np.prod(shape))) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"
