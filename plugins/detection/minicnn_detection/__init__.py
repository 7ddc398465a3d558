"""minicnn-detection: objects found and boxed, Faster R-CNN on minicnn.

* ops: :func:`generate_anchors` (py-faster-rcnn's numbers), :func:`box_iou`, :func:`nms`,
  :func:`batched_nms`, :func:`encode_boxes` / :func:`decode_boxes` (continuous coordinates, as
  torchvision), :func:`roi_pool` and :func:`roi_align` with the layers :class:`RoIPool` and
  :class:`RoIAlign` (numba CPU kernels, differentiable with respect to the features);
* the detector: :class:`FasterRCNN` (backbone + region proposal network + Fast R-CNN head, each a
  minicnn graph), :class:`DetectorConfig` and :func:`preset` (``"py-faster-rcnn"``,
  ``"torchvision"``, ``"small"``), :func:`train_detector`, :func:`evaluate_detector`,
  :func:`save_detector` / :func:`load_detector`;
* single-object localisation: :func:`localizer`, :func:`train_localizer`,
  :func:`evaluate_localizer`;
* metrics: :func:`voc_evaluate` (mAP@0.5, area or 11-point), :func:`coco_evaluate`
  (mAP@0.5:0.95);
* data: :class:`DetShapes` (generated), :class:`DetDigits` (MNIST digits on a canvas),
  :class:`VOCDetection`, :class:`COCODetection`; pictures: :func:`draw_boxes`,
  :func:`detection_grid`;
* the ``minicnn detect`` command (:mod:`.cli`), registered by :mod:`.plugin`.
"""

from .anchors import generate_anchors, grid_anchors, inside_anchors
from .boxes import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    nms,
    remove_small_boxes,
)
from .config import PRESETS, DetectorConfig, preset
from .datasets import (
    DIGIT_CLASSES,
    SHAPE_CLASSES,
    DetDigits,
    DetectionDataset,
    DetShapes,
    RandomHorizontalFlip,
    stack_detection,
)
from .draw import detection_grid, draw_boxes
from .localization import evaluate_localizer, localizer, predict_boxes, train_localizer
from .metrics import average_precision, coco_evaluate, voc_evaluate
from .model import (
    FasterRCNN,
    cut,
    fast_rcnn_head,
    faster_rcnn,
    faster_rcnn_backbone,
    rpn_head,
    small_backbone,
)
from .persist import load_detector, save_detector
from .readers import VOC_CLASSES, COCODetection, VOCDetection, parse_voc_xml
from .roi import RoIAlign, RoIPool, boxes_to_rois, roi_align, roi_pool
from .roi_heads import head_loss, postprocess, sample_rois
from .rpn import anchor_targets, propose, rpn_loss
from .training import cpu_threads, detect_all, evaluate_detector, train_detector

__version__ = "0.1.0"

__all__ = [
    "COCODetection", "DIGIT_CLASSES", "DetDigits", "DetShapes", "DetectionDataset",
    "DetectorConfig", "FasterRCNN", "PRESETS", "RandomHorizontalFlip", "RoIAlign", "RoIPool",
    "SHAPE_CLASSES", "VOCDetection", "VOC_CLASSES", "anchor_targets", "average_precision",
    "batched_nms", "box_area", "box_iou", "boxes_to_rois", "clip_boxes", "coco_evaluate",
    "cpu_threads", "cut", "decode_boxes", "detect_all", "detection_grid", "draw_boxes",
    "encode_boxes", "evaluate_detector", "evaluate_localizer", "fast_rcnn_head", "faster_rcnn",
    "faster_rcnn_backbone", "generate_anchors", "grid_anchors", "head_loss", "inside_anchors",
    "load_detector", "localizer", "nms", "parse_voc_xml", "postprocess", "predict_boxes",
    "preset", "propose", "remove_small_boxes", "roi_align", "roi_pool", "rpn_head", "rpn_loss",
    "sample_rois", "save_detector", "small_backbone", "stack_detection", "train_detector",
    "train_localizer", "voc_evaluate",
]
