"""Element-wise activations and Linear on the CPU: time and memory throughput."""

from minicnn import nn

from ._util import data, rate


class Activations:
    params = (["ReLU", "Sigmoid", "Tanh", "LeakyReLU"], [(32, 64, 56, 56)])
    param_names = ["layer", "shape"]

    def setup(self, layer, shape):
        self.layer = getattr(nn, layer)()
        self.x = data(shape)
        self.gy = data(shape, seed=1)
        self.layer(self.x)
        self.layer.backward(self.gy)   # compile and allocate outside the timing

    def time_forward(self, layer, shape):
        self.layer(self.x)

    def time_forward_backward(self, layer, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gbytes_per_s(self, layer, shape):
        return rate(lambda: self.layer(self.x), 2 * self.x.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"

class LinearLayer:
    params = ([(64, 800, 500), (256, 4096, 1000)],)
    param_names = ["batch_in_out"]

    def setup(self, shape):
        n, i, o = shape
        self.layer = nn.Linear(i, o)
        self.x = data((n, i))
        self.gy = data((n, o), seed=1)
        self.layer(self.x)
        self.layer.backward(self.gy)

    def time_forward(self, shape):
        self.layer(self.x)

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gflops(self, shape):
        n, i, o = shape
        return rate(lambda: self.layer(self.x), 2 * n * i * o) / 1e9

    track_forward_gflops.unit = "GFLOP/s"

