"""minicnn-segmentation: a class for every pixel.

* models: :func:`fcn8s` (FCN-8s: VGG-like backbone, 1x1 classifier, bilinear-initialised
  transposed convolutions with skip fusion) and :func:`unet`;
* metrics: :func:`confusion_matrix`, :func:`iou_per_class`, :func:`mean_iou`,
  :func:`pixel_accuracy`, :class:`SegmentationMetrics` (ignore label 255);
* data: :class:`SegShapes` (generated shapes on textured backgrounds), :class:`VOCSegmentation`
  (Pascal VOC palette masks), :class:`MaskDataset` (batches that minicnn's DataLoader stacks);
* training: :func:`train_segmentation`, :func:`evaluate_segmentation`, :func:`predict_masks`;
* pictures: :func:`overlay`, :func:`save_mask_png`, :func:`colorize`, :data:`VOC_PALETTE`;
* the ``minicnn segment`` command (:mod:`.cli`), registered by :mod:`.plugin`.
"""

from .datasets import (
    IGNORE_INDEX,
    SHAPE_CLASSES,
    MaskDataset,
    RandomHorizontalFlip,
    SegShapes,
    as_mask_dataset,
    stack_pairs,
)
from .metrics import (
    SegmentationMetrics,
    class_accuracy,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)
from .models import bilinear_kernel, bilinear_upsampling, fcn8s, size_multiple, unet
from .palette import VOC_PALETTE, colorize, overlay, overlay_grid, save_mask_png, voc_palette
from .training import (
    cpu_threads,
    evaluate_segmentation,
    make_loader,
    predict_logits,
    predict_masks,
    train_segmentation,
)
from .voc import VOC_CLASSES, VOCSegmentation, load_mask

__version__ = "0.1.0"

__all__ = [
    "IGNORE_INDEX", "SHAPE_CLASSES", "VOC_CLASSES", "VOC_PALETTE", "MaskDataset",
    "RandomHorizontalFlip", "SegShapes", "SegmentationMetrics", "VOCSegmentation",
    "as_mask_dataset", "bilinear_kernel", "bilinear_upsampling", "class_accuracy", "colorize",
    "confusion_matrix", "cpu_threads", "evaluate_segmentation", "fcn8s", "iou_per_class",
    "load_mask", "make_loader", "mean_iou", "overlay", "overlay_grid", "pixel_accuracy",
    "predict_logits", "predict_masks", "save_mask_png", "size_multiple", "stack_pairs",
    "train_segmentation", "unet", "voc_palette",
]
