"""The segmentation plugin on the CPU: U-Net and FCN-8s at 64x64, images per second.

The plugin is a separate distribution (``plugins/segmentation``); this file puts it on the path so
the benchmarks run from a checkout without installing it. ``time_forward`` runs the model in eval
mode; ``time_forward_backward`` one training step's forward, per-pixel cross-entropy and backward
(parameter gradients only).
"""

import copy
import sys
from pathlib import Path

import numpy as np

import minicnn
from minicnn import nn

_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "segmentation"
if str(_PLUGIN) not in sys.path:
    sys.path.insert(0, str(_PLUGIN))

from minicnn_segmentation import fcn8s, unet  # noqa: E402

from ._util import data, rate  # noqa: E402

# name -> (constructor, keyword arguments)
MODELS = {
    "unet_base16_depth3": (unet, dict(base=16, depth=3)),
    "fcn8s_width8": (fcn8s, dict(width=8)),
}
BATCH, SIZE, CLASSES = 16, 64, 4


class Segmentation:
    params = (list(MODELS),)
    param_names = ["model"]
    timeout = 300

    def setup(self, model):
        factory, kwargs = MODELS[model]
        minicnn.manual_seed(0)
        self.train = factory(num_classes=CLASSES, in_channels=3, **kwargs).train()
        self.infer = copy.deepcopy(self.train).eval()
        self.loss = nn.CrossEntropyLoss(ignore_index=255)
        self.x = data((BATCH, 3, SIZE, SIZE))
        self.y = np.random.default_rng(1).integers(0, CLASSES, (BATCH, SIZE, SIZE))
        self.infer(self.x)                 # compile and allocate outside the timing
        self._step()

    def _step(self):
        self.loss(self.train(self.x), self.y)
        self.train.backward(self.loss.backward(), input_grad=False)

    def time_forward(self, model):
        self.infer(self.x)

    def time_forward_backward(self, model):
        self._step()

    def track_forward_images_per_s(self, model):
        return rate(lambda: self.infer(self.x), BATCH)

    track_forward_images_per_s.unit = "images/s"

    def track_forward_backward_images_per_s(self, model):
        return rate(self._step, BATCH)

    track_forward_backward_images_per_s.unit = "images/s"
