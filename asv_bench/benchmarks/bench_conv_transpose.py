"""ConvTranspose2d on the CPU: time and GFLOP/s (the DCGAN-style 2x upsampling: k4, s2, p1)."""

import minicnn
from minicnn import nn

from ._util import data, rate


class ConvTranspose2dUpsample:
    params = ([(16, 64, 16, 16, 32)],)
    param_names = ["n_cin_h_w_cout"]

    def setup(self, shape):
        n, cin, h, w, cout = shape
        minicnn.manual_seed(0)
        self.layer = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.x = data((n, cin, h, w))
        y = self.layer(self.x)
        self.gy = data(y.shape, seed=1)
        self.layer.backward(self.gy)   # compile and allocate outside the timing
        self.flops = self.layer.flops([self.x.shape], [y.shape])

    def time_forward(self, shape):
        self.layer(self.x)

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)

    def track_forward_gflops(self, shape):
        return rate(lambda: self.layer(self.x), self.flops) / 1e9

    track_forward_gflops.unit = "GFLOP/s"

    def track_forward_backward_gflops(self, shape):
        def step():
            self.layer(self.x)
            self.layer.backward(self.gy)
        return rate(step, 3 * self.flops) / 1e9

    track_forward_backward_gflops.unit = "GFLOP/s"
