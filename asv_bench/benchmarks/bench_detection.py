"""The detection plugin on the CPU: ROI pool / ROI Align, NMS, and a whole Faster R-CNN step.

The plugin is a separate distribution (``plugins/detection``); this file puts it on the path so
the benchmarks run from a checkout without installing it.

* ``RoIOps``: 256 ROIs (2 images x 128, the Fast R-CNN head's sampling) on a ``(2, 64, 38, 50)``
  map (a 600x800 image at stride 16), 7x7 output, spatial scale 1/16; forward, forward +
  backward (input gradient), and ROIs per second;
* ``NMS``: 2,000 and 12,000 random boxes (clustered, as proposals are), IoU 0.7;
* ``DetectionStep``: one training step of ``faster_rcnn(3)`` (the ``small`` preset) on 8 64x64
  images (forward, anchor and ROI targets, both losses, backward; no optimiser step), and
  inference on the same 8 images; images per second.
* ``RoIOpsCUDA``: ``RoIOps`` on the ``"cuda"`` device (the CUDA kernels of ``roi_cuda.py``),
  inputs already on the device, synchronised after each call. Its setup raises
  NotImplementedError (asv: skipped) without a GPU, and on numba's simulator (far too slow to
  time).
* ``DetectionStepCUDA``: ``DetectionStep`` with the detector moved by ``to("cuda")``: the networks
  run on the GPU; anchor and ROI targets, NMS and the losses stay numpy code on the host and take
  the device outputs through ``to_numpy`` (see the plugin README), so this measures the mix a
  user gets. Skipped like ``RoIOpsCUDA``.
"""

import sys
from pathlib import Path

import numpy as np

import minicnn

_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "detection"
if str(_PLUGIN) not in sys.path:
    sys.path.insert(0, str(_PLUGIN))

from minicnn_detection import DetShapes, RoIAlign, RoIPool, faster_rcnn, nms  # noqa: E402
from minicnn_detection.plugin import ensure_registered  # noqa: E402

from ._util import cuda_device_or_skip, data, rate  # noqa: E402


def _rois(n_images, per_image, height, width, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [width * 0.8, height * 0.8], (n_images * per_image, 2))
    wh = rng.uniform(16, [width * 0.5, height * 0.5], (n_images * per_image, 2))
    batch = np.repeat(np.arange(n_images), per_image)[:, None]
    return np.concatenate([batch, xy, np.minimum(xy + wh, [width, height])], 1).astype(np.float32)


class RoIOps:
    params = (["roi_pool", "roi_align"],)
    param_names = ["op"]
    timeout = 120

    def setup(self, op):
        ensure_registered()
        self.layer = RoIPool(7, 1 / 16) if op == "roi_pool" else RoIAlign(7, 1 / 16, 2, True)
        self.x = data((2, 64, 38, 50))
        self.rois = _rois(2, 128, 600, 800)
        y = self.layer([self.x, self.rois])          # compile and allocate outside the timing
        self.gy = data(y.shape, seed=1)
        self.layer.backward(self.gy)

    def _forward_backward(self):
        self.layer([self.x, self.rois])
        self.layer.backward(self.gy)

    def time_forward(self, op):
        self.layer([self.x, self.rois])

    def time_forward_backward(self, op):
        self._forward_backward()

    def track_forward_rois_per_s(self, op):
        return rate(lambda: self.layer([self.x, self.rois]), len(self.rois))

    track_forward_rois_per_s.unit = "ROIs/s"

    def track_forward_backward_rois_per_s(self, op):
        return rate(self._forward_backward, len(self.rois))

    track_forward_backward_rois_per_s.unit = "ROIs/s"


class RoIOpsCUDA:
    params = (["roi_pool", "roi_align"],)
    param_names = ["op"]
    timeout = 120

    def setup(self, op):
        self.dev = cuda_device_or_skip()
        ensure_registered()
        layer = RoIPool(7, 1 / 16) if op == "roi_pool" else RoIAlign(7, 1 / 16, 2, True)
        self.layer = layer.to("cuda")
        self.x = self.dev.asarray(data((2, 64, 38, 50)))
        self.rois = self.dev.asarray(_rois(2, 128, 600, 800))
        y = self.layer([self.x, self.rois])          # compile and allocate outside the timing
        self.gy = self.dev.asarray(data(y.shape, seed=1))
        self.layer.backward(self.gy)
        self.dev.synchronize()

    def time_forward(self, op):
        self.layer([self.x, self.rois])
        self.dev.synchronize()

    def time_forward_backward(self, op):
        self.layer([self.x, self.rois])
        self.layer.backward(self.gy)
        self.dev.synchronize()

    def track_forward_rois_per_s(self, op):
        return rate(lambda: self.time_forward(op), 256)

    track_forward_rois_per_s.unit = "ROIs/s"

    def track_forward_backward_rois_per_s(self, op):
        return rate(lambda: self.time_forward_backward(op), 256)

    track_forward_backward_rois_per_s.unit = "ROIs/s"


class NMS:
    params = ([2000, 12000],)
    param_names = ["boxes"]
    timeout = 120

    def setup(self, n):
        rng = np.random.default_rng(0)
        centres = rng.uniform(0, 800, (n // 20, 2))            # proposals cluster on objects
        xy = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 12, (n, 2))
        wh = rng.uniform(20, 200, (n, 2))
        self.boxes = np.concatenate([xy, xy + wh], 1)
        self.scores = rng.random(n)
        nms(self.boxes[:10], self.scores[:10], 0.7)

    def time_nms(self, n):
        nms(self.boxes, self.scores, 0.7)

    def track_boxes_per_s(self, n):
        return rate(lambda: nms(self.boxes, self.scores, 0.7), n)

    track_boxes_per_s.unit = "boxes/s"


class DetectionStep:
    timeout = 300

    def setup(self):
        minicnn.manual_seed(0)
        self.detector = faster_rcnn(3)
        self.x, self.targets = DetShapes(8, 64, seed=0).get_batch(np.arange(8))
        self.detector.forward_backward(self.x, self.targets)
        self.detector.detect(self.x)

    def time_train_step(self):
        self.detector.forward_backward(self.x, self.targets)

    def time_detect(self):
        self.detector.detect(self.x)

    def track_train_images_per_s(self):
        return rate(lambda: self.detector.forward_backward(self.x, self.targets), 8)

    track_train_images_per_s.unit = "images/s"

    def track_detect_images_per_s(self):
        return rate(lambda: self.detector.detect(self.x), 8)

    track_detect_images_per_s.unit = "images/s"


class DetectionStepCUDA(DetectionStep):
    def setup(self):
        cuda_device_or_skip()
        minicnn.manual_seed(0)
        self.detector = faster_rcnn(3).to("cuda")
        self.x, self.targets = DetShapes(8, 64, seed=0).get_batch(np.arange(8))
        self.detector.forward_backward(self.x, self.targets)   # compile, allocate
        self.detector.detect(self.x)
