"""Batch norm, softmax and dropout on the CPU: time and memory throughput."""

from minicnn import nn

from ._util import data, rate


class BatchNorm:
    params = ([(32, 64, 56, 56)], ["train", "eval"])
    param_names = ["shape", "mode"]

    def setup(self, shape, mode):
        self.layer = nn.BatchNorm2d(shape[1])
        self.layer.train(mode == "train")
        self.x = data(shape)
        self.gy = data(shape, seed=1)
        self.layer(self.x)
        self.layer.backward(self.gy)   # compile and allocate outside the timing

    def time_forward(self, shape, mode):
        self.layer(self.x)

    def time_forward_backward(self, shape, mode):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gbytes_per_s(self, shape, mode):
        # train: x read twice for the statistics and once more to normalise, y written once
        passes = 4 if mode == "train" else 2
        return rate(lambda: self.layer(self.x), passes * self.x.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"

    def track_backward_gbytes_per_s(self, shape, mode):
        # x and gy read for the sums and again for gx, gx written
        passes = 5 if mode == "train" else 3
        return rate(lambda: self.layer.backward(self.gy), passes * self.x.nbytes) / 1e9

    track_backward_gbytes_per_s.unit = "GB/s"


class Softmax:
    params = (["Softmax", "LogSoftmax"], [((256, 1000), -1), ((32, 64, 56, 56), 1)])
    param_names = ["layer", "shape_dim"]

    def setup(self, layer, shape_dim):
        shape, dim = shape_dim
        self.layer = getattr(nn, layer)(dim)
        self.x = data(shape)
        self.gy = data(shape, seed=1)
        self.layer(self.x)
        self.layer.backward(self.gy)

    def time_forward(self, layer, shape_dim):
        self.layer(self.x)

    def time_forward_backward(self, layer, shape_dim):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gbytes_per_s(self, layer, shape_dim):
        return rate(lambda: self.layer(self.x), 2 * self.x.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"


class Dropout:
    params = (["Dropout", "Dropout2d"], [(32, 64, 56, 56)])
    param_names = ["layer", "shape"]

    def setup(self, layer, shape):
        self.layer = getattr(nn, layer)(0.5)
        self.x = data(shape)
        self.gy = data(shape, seed=1)
        self.layer(self.x)
        self.layer.backward(self.gy)

    def time_forward(self, layer, shape):
        self.layer(self.x)

    def time_forward_backward(self, layer, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gbytes_per_s(self, layer, shape):
        return rate(lambda: self.layer(self.x), 2 * self.x.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"
