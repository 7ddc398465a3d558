"""The style-transfer plugin on the CPU (and, with a real GPU, its CUDA kernels: ``GramCUDA``,
``ObjectiveCUDA``): the Gram matrix and the style loss (forward, and backward to the
features), and one evaluation of the whole objective (forward and backward to the image)
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


def _real_gpu():
    """numba.cuda on a real GPU, or NotImplementedError (asv: skipped; the simulator does not
    count)."""
    try:
        from minicnn.device import get_device
        get_device("cuda")
        import minicnn.cuda_device as cuda_device
    except Exception as exc:
        raise NotImplementedError(f"no CUDA device: {exc}") from exc
    if cuda_device.SIMULATOR:
        raise NotImplementedError("numba's CUDA simulator is not a GPU")
    return cuda_device.cuda


class GramCUDA:
    """The Gram matrix and the style loss on the GPU (``layers_cuda.py``), inputs already on the
    device; every timed call ends with a synchronisation."""

    params = ([(1, 64, 256, 256), (1, 512, 32, 32)],)
    param_names = ["shape"]

    def setup(self, shape):
        cuda = self.cuda = _real_gpu()
        n, c, h, w = shape
        self.x = cuda.to_device(data(shape))
        self.gram = GramMatrix().to("cuda")
        self.loss = StyleLoss().to("cuda")
        self.target = cuda.to_device(GramMatrix()(data(shape, seed=1)))
        self.gy = cuda.to_device(data((n, c, c), seed=2))
        self.time_gram_forward_backward(shape)
        self.time_style_loss_forward_backward(shape)

    def time_gram_forward(self, shape):
        self.gram(self.x)
        self.cuda.synchronize()

    def time_gram_forward_backward(self, shape):
        self.gram(self.x)
        self.gram.backward(self.gy)
        self.cuda.synchronize()

    def time_style_loss_forward_backward(self, shape):
        self.loss(self.x, self.target)
        self.loss.backward()
        self.cuda.synchronize()

    def track_gram_forward_gflops(self, shape):
        n, c, h, w = shape
        return rate(lambda: self.time_gram_forward(shape), 2 * n * c * c * h * w) / 1e9

    track_gram_forward_gflops.unit = "GFLOP/s"


class ObjectiveCUDA:
    """One evaluation of J and dJ/dimage with the random network moved to the GPU."""

    params = ([256],)
    param_names = ["size"]
    timeout = 300

    def setup(self, size):
        _real_gpu()
        rng = np.random.default_rng(0)
        net = random_features(seed=0).to("cuda")
        self.transfer = StyleTransfer(net, style_weight=1e5, tv_weight=1.0)
        content = rng.uniform(0, 1, (3, size, size)).astype(np.float32)
        style = rng.uniform(0, 1, (3, size, size)).astype(np.float32)
        self.targets = self.transfer.targets(content, style, (size, size))
        self.image = content[None].copy()
        self.transfer.evaluate(self.image, self.targets)

    def time_evaluation(self, size):
        self.transfer.evaluate(self.image, self.targets)   # copies J's terms and dJ back

    def track_evaluations_per_s(self, size):
        return rate(lambda: self.transfer.evaluate(self.image, self.targets), 1, repeat=3)

    track_evaluations_per_s.unit = "evaluations/s"
