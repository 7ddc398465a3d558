"""The style-transfer plugin on the CPU: the Gram matrix and the style loss (forward, and backward
to the features), and one evaluation of the whole objective (forward and backward to the image)
with the random-weight feature network, which needs no weights file.

The plugin is a separate distribution (``plugins/style_transfer``); this file puts it on the path
so the benchmarks run from a checkout without installing it, and registers it in minicnn's
registry (its layers' kernels must be found there).
"""

import sys
from pathlib import Path

import numpy as np

_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "style_transfer"
if str(_PLUGIN) not in sys.path:
    sys.path.insert(0, str(_PLUGIN))

from minicnn_style_transfer import (  # noqa: E402
    GramMatrix,
    StyleLoss,
    StyleTransfer,
    ensure_registered,
    random_features,
)

from ._util import data, rate  # noqa: E402

ensure_registered()


class Gram:
    """Feature maps (N, C, H, W) of conv1_1 and conv4_1 of VGG-19 on a 256x256 image."""

    params = ([(1, 64, 256, 256), (1, 512, 32, 32)],)
    param_names = ["shape"]

    def setup(self, shape):
        n, c, h, w = shape
        self.x = data(shape)
        self.gram = GramMatrix()
        self.loss = StyleLoss()
        self.target = self.gram(data(shape, seed=1))
        self.gy = data((n, c, c), seed=2)
        self.gram(self.x)
        self.gram.backward(self.gy)      # compile and allocate outside the timing
        self.loss(self.x, self.target)
        self.loss.backward()

    def time_gram_forward(self, shape):
        self.gram(self.x)

    def time_gram_forward_backward(self, shape):
        self.gram(self.x)
        self.gram.backward(self.gy)

    def time_style_loss_forward_backward(self, shape):
        self.loss(self.x, self.target)
        self.loss.backward()

    def track_gram_forward_gflops(self, shape):
        n, c, h, w = shape
        return rate(lambda: self.gram(self.x), 2 * n * c * c * h * w) / 1e9

    track_gram_forward_gflops.unit = "GFLOP/s"

    def track_style_loss_forward_backward_gflops(self, shape):
        n, c, h, w = shape

        def step():
            self.loss(self.x, self.target)
            self.loss.backward()

        return rate(step, 4 * n * c * c * h * w) / 1e9

    track_style_loss_forward_backward_gflops.unit = "GFLOP/s"


class Objective:
    """One evaluation of J and dJ/dimage: the Gatys layers of the random network, TV included."""

    params = ([128, 256],)
    param_names = ["size"]
    timeout = 300

    def setup(self, size):
        rng = np.random.default_rng(0)
        self.transfer = StyleTransfer(random_features(seed=0), style_weight=1e5, tv_weight=1.0)
        content = rng.uniform(0, 1, (3, size, size)).astype(np.float32)
        style = rng.uniform(0, 1, (3, size, size)).astype(np.float32)
        self.targets = self.transfer.targets(content, style, (size, size))
        self.image = content[None].copy()
        self.transfer.evaluate(self.image, self.targets)

    def time_evaluation(self, size):
        self.transfer.evaluate(self.image, self.targets)

    def track_evaluations_per_s(self, size):
        return rate(lambda: self.transfer.evaluate(self.image, self.targets), 1, repeat=3)

    track_evaluations_per_s.unit = "evaluations/s"
