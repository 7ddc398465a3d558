"""Detector hyper-parameters and the presets that reproduce py-faster-rcnn's and torchvision's
defaults.

:class:`DetectorConfig` holds every number the detector uses; :func:`preset` returns one of
:data:`PRESETS` with overrides:

* ``"py-faster-rcnn"``: ``lib/fast_rcnn/config.py`` (end-to-end training): anchors base 16,
  ratios 0.5/1/2, scales 8/16/32 at stride 16; RPN IoU 0.7/0.3, 256 anchors an image at most
  half positive, anchors across the border ignored, smooth L1 sigma 3; proposals 12000/2000
  before/after NMS 0.7 in training, 6000/300 at test, minimum size 16; 128 ROIs an image, 25%
  foreground at IoU >= 0.5, background in [0.1, 0.5), target stds 0.1/0.1/0.2/0.2 (weights
  10/10/5/5), head sigma 1; 7x7 max ROI pooling; test NMS 0.3, score threshold 0.05, 100
  detections; SGD lr 0.001, momentum 0.9, weight decay 0.0005, one image a batch.
* ``"torchvision"``: ``fasterrcnn_resnet50_fpn``'s arguments on a single feature level: RPN
  2000/2000 proposals in training, 1000/1000 at test, NMS 0.7, minimum size 0.001, no border
  rule; 512 ROIs an image, 25% foreground at 0.5, background below 0.5; smooth L1 beta 1/9
  (sigma 3) in both losses; ROI Align 7x7, sampling ratio 2, ``aligned=False``
  (``MultiScaleRoIAlign``); test NMS 0.5, score 0.05, 100 detections; SGD lr 0.02, momentum
  0.9, weight decay 1e-4 (the reference scripts, 16 images a batch). Anchors 32 to 512 pixels.
* ``"small"``: the generated-data setting of ``minicnn detect train`` (64x64 images, stride 8,
  anchors of about 12, 20 and 28 pixels, fewer proposals and ROIs, a 4x4 ROI Align).
"""

import dataclasses
from dataclasses import dataclass


@dataclass
class DetectorConfig:
    num_classes: int = 3                      # object classes, background excluded
    class_names: tuple | None = None          # index 0 the background
    # anchors (py-faster-rcnn's generate_anchors) and the backbone's stride
    anchor_base_size: float = 16
    anchor_ratios: tuple = (0.5, 1, 2)
    anchor_scales: tuple = (8, 16, 32)
    feature_stride: int = 16
    # RPN
    rpn_channels: int | None = None           # the 3x3 conv's width (None: the feature width)
    rpn_positive_iou: float = 0.7
    rpn_negative_iou: float = 0.3
    rpn_batch_size: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_allowed_border: float | None = 0.0    # None: keep anchors across the border
    rpn_sigma: float = 3.0
    rpn_pre_nms_top_n_train: int = 12000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 6000
    rpn_post_nms_top_n_test: int = 300
    rpn_nms_thresh: float = 0.7
    rpn_min_size: float = 16.0
    # Fast R-CNN head
    pooling: str = "pool"                     # "pool" (RoIPool) or "align" (RoIAlign)
    pool_size: int = 7
    sampling_ratio: int = -1
    aligned: bool = True
    head_hidden: tuple = (4096, 4096)
    roi_batch_size: int = 128
    roi_fg_fraction: float = 0.25
    roi_fg_iou: float = 0.5
    roi_bg_iou_hi: float = 0.5
    roi_bg_iou_lo: float = 0.1
    bbox_reg_weights: tuple = (10.0, 10.0, 5.0, 5.0)
    head_sigma: float = 1.0
    # inference
    score_thresh: float = 0.05
    nms_thresh: float = 0.3
    detections_per_img: int = 100
    # images: (x - mean) / std per channel, images in [0, 1]
    image_mean: tuple = (0.485, 0.456, 0.406)
    image_std: tuple = (0.229, 0.224, 0.225)
    # training defaults
    optimizer: str = "sgd"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 1

    def replace(self, **changes):
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"DetectorConfig: unknown settings {unknown}")
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()
                      if k in names})


PRESETS = {
    "py-faster-rcnn": {},
    "torchvision": dict(
        anchor_base_size=16, anchor_scales=(2, 4, 8, 16, 32), rpn_allowed_border=None,
        rpn_pre_nms_top_n_train=2000, rpn_post_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=1000, rpn_min_size=1e-3,
        pooling="align", pool_size=7, sampling_ratio=2, aligned=False, head_hidden=(1024, 1024),
        roi_batch_size=512, roi_bg_iou_lo=0.0, head_sigma=3.0, nms_thresh=0.5, lr=0.02,
        weight_decay=1e-4, batch_size=2),
    "small": dict(
        anchor_base_size=8, anchor_scales=(1.5, 2.5, 3.5), feature_stride=8,
        rpn_batch_size=64, rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=96,
        rpn_pre_nms_top_n_test=600, rpn_post_nms_top_n_test=48, rpn_min_size=2.0,
        pooling="align", pool_size=4, sampling_ratio=2, aligned=True, head_hidden=(128, 128),
        roi_batch_size=48, roi_bg_iou_lo=0.0, nms_thresh=0.3, optimizer="adam", lr=2e-3,
        weight_decay=0.0, batch_size=8),
}


def preset(name="small", **overrides):
    """The :class:`DetectorConfig` of preset ``name`` (see the module docstring), with
    ``overrides``."""
    if name not in PRESETS:
        raise ValueError(f"unknown detector preset {name!r}; known: {sorted(PRESETS)}")
    return DetectorConfig().replace(**PRESETS[name]).replace(**overrides)
