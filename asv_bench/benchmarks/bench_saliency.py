"""The saliency plugin on the CPU: CAM, Grad-CAM and the input gradient of ResNet-20 on a batch
of 32x32 images, against one plain forward pass of the same model and batch.

The plugin is a separate distribution (``plugins/saliency``); this file puts it on the path so
the benchmarks run from a checkout without installing it. Grad-CAM costs a forward pass, the
head's forward again from the node, and its backward; CAM costs a forward pass.
"""

import sys
from pathlib import Path

import minicnn

_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "saliency"
if str(_PLUGIN) not in sys.path:
    sys.path.insert(0, str(_PLUGIN))

from minicnn_saliency import cam, grad_cam, input_gradient  # noqa: E402

from ._util import data, rate  # noqa: E402

METHODS = {"forward": None, "cam": cam, "gradcam": grad_cam, "gradient": input_gradient}
BATCH, SIZE = 8, 32


class Saliency:
    params = (list(METHODS),)
    param_names = ["method"]
    timeout = 300

    def setup(self, method):
        minicnn.manual_seed(0)
        self.model = minicnn.zoo.resnet20(num_classes=10).eval()
        self.x = data((BATCH, 3, SIZE, SIZE))
        fn = METHODS[method]
        self.run = (lambda: self.model(self.x)) if fn is None else \
            (lambda: fn(self.model, self.x, target=3))
        self.run()                          # compile and allocate outside the timing

    def time_saliency(self, method):
        self.run()

    def track_images_per_s(self, method):
        return rate(self.run, BATCH)

    track_images_per_s.unit = "images/s"
