"""ROI pooling layers: a fixed-size feature map for each region of interest.

Both layers take two inputs, ``features (N, C, H, W)`` and ``rois (K, 5)`` rows of
``(batch index, x1, y1, x2, y2)`` in image coordinates, and return ``(K, C, PH, PW)``. They are
differentiable with respect to the features (the gradient flows back to the backbone); the ROI
coordinates get no gradient (``differentiable_inputs = (True, False)``), as in torchvision.

* :class:`RoIPool` (Fast R-CNN's max ROI pooling, torchvision's ``roi_pool``): the box is scaled
  by ``spatial_scale`` and rounded to whole cells (half away from zero), ``roi_w = max(x2 - x1 +
  1, 1)``; bin ``(i, j)`` covers rows ``[floor(i roi_h / PH), ceil((i + 1) roi_h / PH))`` (offset
  by y1, clipped to the map) and likewise columns; its output is the maximum, 0 for an empty bin.
  The backward adds each output gradient at its arg-max. The rounding misplaces boxes by up to
  half a cell (8 pixels at stride 16).
* :class:`RoIAlign` (Mask R-CNN's, torchvision's ``roi_align``): no rounding; with
  ``aligned=True`` (the default here; torchvision's default is False) the box is shifted by -0.5
  cell so that pixel centres line up. Each bin averages ``gh x gw`` bilinear samples at regular
  positions, ``gh = sampling_ratio`` or, when ``sampling_ratio <= 0``, ``ceil(roi_h / PH)``.
  A sample outside ``[-1, H] x [-1, W]`` counts as 0; inside, coordinates are clamped to the map.
  With ``aligned=False`` the box is at least 1x1 cell. A box of zero or negative size with
  ``aligned=True`` gives zeros (no samples), as in torchvision.

Batch indices must be whole numbers in ``[0, N)`` and coordinates finite (``InputError``
otherwise). Zero ROIs: the functional forms return an empty ``(0, C, PH, PW)`` array; a model
input with zero rows is refused by minicnn's executor (an empty batch).

CPU kernels: :mod:`.roi_cpu` (numba). A GPU twin, ``roi_cuda.py`` with kernels registered for
``device = "cuda"``, can be added beside it without touching these classes.

``minicnn check-plugin detection`` (the conformance suite) checks both layers on their
``conformance_cases()`` and compares the kernels with ``reference_forward``: the slow float64 loops
of :mod:`.references`, transcribed from torchvision's CPU kernels.
"""

import math

import numpy as np
from minicnn import ConfigError, InputError, Layer, ShapeError, testing

from . import references

FUNCTIONAL = ["roi_pool", "roi_align"]


def _output_size(layer, value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        value = tuple(value)
    except TypeError:
        value = None
    if value is None or len(value) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"{layer}: output_size must be a positive int or a pair of positive "
                          f"ints, got {value!r}")
    return int(value[0]), int(value[1])


def _spatial_scale(layer, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{layer}: spatial_scale must be a positive number (feature cells per "
                          f"image pixel, e.g. 1/16), got {value!r}")
    return float(value)


class _RoILayer(Layer):
    num_inputs = 2
    input_kinds = ("float", "float")
    differentiable_inputs = (True, False)   # no gradient for the box coordinates

    def infer_shapes(self, in_shapes):
        self.check_inputs(in_shapes)
        features, rois = (tuple(s) for s in in_shapes)
        self.check_rank(features, 4, "features (N, C, H, W)")
        if len(rois) != 2 or rois[1] != 5:
            raise ShapeError(f"{self.type_name}: rois must be (K, 5) rows of (batch index, x1, "
                             f"y1, x2, y2)", expected="(K, 5)", received=f"shape {rois}")
        return [(rois[0], features[1]) + self.output_size]

    def extra_repr(self):
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"

    @classmethod
    def conformance_cases(cls):
        """For ``minicnn check-plugin detection``: two configurations on a (2, 3, 6, 7) map with
        four boxes inside the image (spatial scale 0.5), and hyper-parameters and inputs that must
        be refused (a batch index outside the batch, a coordinate that is not finite)."""
        return [
            {"args": (2,), "kwargs": {"spatial_scale": 0.5}, "inputs": _conformance_inputs},
            {"args": ((3, 2),), "kwargs": {"spatial_scale": 0.5}, "inputs": _conformance_inputs},
            {"args": (0,), "raises": "ConfigError", "match": "output_size"},
            {"args": ((2, 2, 2),), "raises": "ConfigError", "match": "output_size"},
            {"args": (2,), "kwargs": {"spatial_scale": -1.0}, "raises": "ConfigError",
             "match": "spatial_scale"},
            {"args": (2,), "shapes": [(2, 3, 6, 7), (4, 4)], "raises": "ShapeError",
             "match": "rois must be"},
            {"args": (2,), "shapes": [(2, 3, 6), (4, 5)], "raises": "ShapeError"},
            {"args": (2,), "inputs": _bad_rois("batch"), "raises": "InputError",
             "match": "batch index", "label": "(2) on a box of batch index 2 in a batch of 2"},
            {"args": (2,), "inputs": _bad_rois("nan"), "raises": "InputError",
             "match": "not finite", "label": "(2) on a box with a NaN coordinate"},
        ]


def _conformance_inputs(seed):
    """Tie-free features and four boxes (image coordinates, twice the map's) for both images."""
    rng = np.random.default_rng(seed)
    features = testing.tie_free((2, 3, 6, 7), seed=seed)
    x1, y1 = rng.uniform(0, 8, 4), rng.uniform(0, 6, 4)
    rois = np.stack([np.array([0.0, 1.0, 1.0, 0.0]), x1, y1,
                     x1 + rng.uniform(2, 6, 4), y1 + rng.uniform(2, 6, 4)], axis=1)
    return [features, rois.astype(features.dtype)]


def _bad_rois(what):
    """``inputs(seed)`` of an error case: the conformance inputs with the last box's batch index
    out of range (``"batch"``) or its x2 NaN (``"nan"``)."""
    def make(seed):
        features, rois = _conformance_inputs(seed)
        if what == "batch":
            rois[-1, 0] = features.shape[0]
        else:
            rois[-1, 3] = np.nan
        return [features, rois]
    return make


class RoIPool(_RoILayer):
    """Max ROI pooling (Fast R-CNN): ``features (N, C, H, W)``, ``rois (K, 5)`` ->
    ``(K, C, PH, PW)``; see the module docstring for the bins."""

    def __init__(self, output_size, spatial_scale=1.0):
        super().__init__()
        self.output_size = _output_size("RoIPool", output_size)
        self.spatial_scale = _spatial_scale("RoIPool", spatial_scale)

    def flops(self, in_shapes, out_shapes):
        k, c, ph, pw = out_shapes[0]
        return k * c * ph * pw * 4      # nominal: about four comparisons a bin

    def reference_forward(self, features, rois):
        """torchvision's roi_pool in plain loops, float64 (:func:`.references.roi_pool`)."""
        return references.roi_pool(features, rois, self.output_size, self.spatial_scale)[0]


class RoIAlign(_RoILayer):
    """ROI Align (bilinear, no quantisation): ``features (N, C, H, W)``, ``rois (K, 5)`` ->
    ``(K, C, PH, PW)``; see the module docstring for the sampling."""

    def __init__(self, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True):
        super().__init__()
        self.output_size = _output_size("RoIAlign", output_size)
        self.spatial_scale = _spatial_scale("RoIAlign", spatial_scale)
        if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, (int, np.integer)):
            raise ConfigError(f"RoIAlign: sampling_ratio must be an int (<= 0: adaptive, "
                              f"ceil(roi size / output size)), got {sampling_ratio!r}")
        self.sampling_ratio = int(sampling_ratio)
        if not isinstance(aligned, (bool, np.bool_)):
            raise ConfigError(f"RoIAlign: aligned must be True or False, got {aligned!r}")
        self.aligned = bool(aligned)

    @classmethod
    def conformance_cases(cls):
        """The shared cases, torchvision's unaligned boxes with a fixed sampling grid, and the
        refused ``sampling_ratio`` / ``aligned`` values."""
        return super().conformance_cases() + [
            {"args": ((2, 3),), "kwargs": {"spatial_scale": 0.5, "sampling_ratio": 2,
                                           "aligned": False}, "inputs": _conformance_inputs},
            {"args": (2,), "kwargs": {"sampling_ratio": 1.5}, "raises": "ConfigError",
             "match": "sampling_ratio must be an int"},
            {"args": (2,), "kwargs": {"aligned": "yes"}, "raises": "ConfigError",
             "match": "aligned must be True or False"},
        ]

    def flops(self, in_shapes, out_shapes):
        k, c, ph, pw = out_shapes[0]
        samples = self.sampling_ratio ** 2 if self.sampling_ratio > 0 else 4   # nominal
        return k * c * ph * pw * samples * 8      # 4 multiplies and 4 adds a sample

    def extra_repr(self):
        return (super().extra_repr() + f", sampling_ratio={self.sampling_ratio}, "
                f"aligned={self.aligned}")

    def reference_forward(self, features, rois):
        """torchvision's roi_align in plain loops, float64 (:func:`.references.roi_align`)."""
        return references.roi_align(features, rois, self.output_size, self.spatial_scale,
                                    self.sampling_ratio, self.aligned)


def boxes_to_rois(boxes):
    """Per-image box lists ``[(L0, 4), (L1, 4), ...]`` as one ``(sum L, 5)`` rois array whose
    first column is the image index."""
    parts = []
    for i, b in enumerate(boxes):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        parts.append(np.concatenate([np.full((len(b), 1), float(i)), b], axis=1))
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 5))


def _prepare(where, features, rois):
    x = np.asarray(features)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    if x.ndim != 4:
        raise InputError(f"{where}: features must be (N, C, H, W), got shape {x.shape}")
    if isinstance(rois, (list, tuple)) and (not rois or np.ndim(rois[0]) == 2):
        rois = boxes_to_rois(rois)
    r = np.asarray(rois, dtype=x.dtype)
    if r.size == 0:
        r = r.reshape(0, 5)
    if r.ndim != 2 or r.shape[1] != 5:
        raise InputError(f"{where}: rois must be (K, 5) rows of (batch index, x1, y1, x2, y2), "
                         f"got shape {r.shape}")
    return np.ascontiguousarray(x), np.ascontiguousarray(r)


def _run(layer, where, features, rois):
    from .plugin import ensure_registered
    ensure_registered()
    x, r = _prepare(where, features, rois)
    if r.shape[0] == 0:
        return np.zeros((0, x.shape[1]) + layer.output_size, dtype=x.dtype)
    return layer([x, r])


def roi_pool(features, rois, output_size, spatial_scale=1.0):
    """Max ROI pooling, torchvision's ``roi_pool``: ``(K, C, PH, PW)`` from ``features (N, C, H,
    W)`` and ``rois (K, 5)`` (or a list of per-image ``(L, 4)`` boxes)."""
    return _run(RoIPool(output_size, spatial_scale), "roi_pool", features, rois)


def roi_align(features, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True):
    """ROI Align, torchvision's ``roi_align`` (but ``aligned=True`` by default): ``(K, C, PH,
    PW)`` from ``features (N, C, H, W)`` and ``rois (K, 5)`` (or a list of per-image boxes)."""
    return _run(RoIAlign(output_size, spatial_scale, sampling_ratio, aligned), "roi_align",
                features, rois)

