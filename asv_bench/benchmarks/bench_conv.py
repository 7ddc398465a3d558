"""Conv2d on the CPU: LeNet's convolutions, a large 3x3 convolution, a 1x1 ("network in network").

GFLOP/s counts 2 * N * out * prod(out_spatial) * in/groups * prod(kernel) per forward
(``Conv2d.flops``) and three times that for forward + backward (input and weight gradients).
"""

from minicnn import nn

from ._util import data, rate

# name -> (input shape, out_channels, kernel, padding)
SHAPES = {
    "lenet_conv1": ((64, 1, 28, 28), 20, 5, 0),
    "lenet_conv2": ((64, 20, 12, 12), 50, 5, 0),
    "3x3_128": ((32, 128, 28, 28), 128, 3, 1),
    "1x1_256_64": ((32, 256, 14, 14), 64, 1, 0),
}


class Conv2dCPU:
    params = (list(SHAPES),)
    param_names = ["case"]

    def setup(self, case):
        shape, out, kernel, padding = SHAPES[case]
        self.layer = nn.Conv2d(shape[1], out, kernel, padding=padding)
        self.x = data(shape)
        y = self.layer(self.x)
        self.gy = data(y.shape, seed=1)
        self.layer.backward(self.gy)   # compile and allocate outside the timing
        self.flops = self.layer.flops([shape], [y.shape])

    def time_forward(self, case):
        self.layer(self.x)

    def time_forward_backward(self, case):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def _forward_backward(self):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gflops(self, case):
        return rate(lambda: self.layer(self.x), self.flops) / 1e9

    track_forward_gflops.unit = "GFLOP/s"

    def track_forward_backward_gflops(self, case):
        return rate(self._forward_backward, 3 * self.flops) / 1e9

    track_forward_backward_gflops.unit = "GFLOP/s"
