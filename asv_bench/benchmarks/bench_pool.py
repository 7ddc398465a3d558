"""Pooling on the CPU: time and memory throughput (the layers are memory-bound)."""

from minicnn import nn

from ._util import data, rate


class Pool2x2:
    params = (["MaxPool2d", "AvgPool2d"], [(32, 64, 56, 56)])
    param_names = ["layer", "shape"]

    def setup(self, layer, shape):
        self.layer = getattr(nn, layer)(2, 2)
        self.x = data(shape)
        self.y = self.layer(self.x)
        self.gy = data(self.y.shape, seed=1)
        self.layer.backward(self.gy)   # compile and allocate outside the timing

    def time_forward(self, layer, shape):
        self.layer(self.x)

    def time_forward_backward(self, layer, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gbytes_per_s(self, layer, shape):
        # input read once, output written once (the max pool's arg-max indices not counted)
        return rate(lambda: self.layer(self.x), self.x.nbytes + self.y.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"


class AdaptiveAvgPoolTo1:
    params = ([(32, 512, 7, 7)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.layer = nn.AdaptiveAvgPool2d(1)
        self.x = data(shape)
        self.y = self.layer(self.x)
        self.gy = data(self.y.shape, seed=1)
        self.layer.backward(self.gy)

    def time_forward(self, shape):
        self.layer(self.x)

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gbytes_per_s(self, shape):
        return rate(lambda: self.layer(self.x), self.x.nbytes + self.y.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"
