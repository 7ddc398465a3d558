"""The plugin module minicnn loads from the entry point ``detection`` (group ``minicnn``): the
layers ``RoIPool`` and ``RoIAlign`` with their CPU kernels (and their CUDA kernels once the
``"cuda"`` device is used), the zoo models ``localizer`` and ``detection_backbone`` (minicnn
graphs; a :class:`FasterRCNN` is three of them and is not a zoo entry), the datasets
``detshapes``, ``detdigits``, ``voc_detection`` and ``coco_detection``, and the ``minicnn
detect`` command."""

import minicnn


@minicnn.hookimpl
def minicnn_layers():
    from .roi import RoIAlign, RoIPool
    return [RoIPool, RoIAlign]


@minicnn.hookimpl
def minicnn_kernels():
    from .roi_cpu import RoIAlignCPU, RoIPoolCPU
    return [RoIPoolCPU, RoIAlignCPU]


@minicnn.hookimpl
def minicnn_device_kernels(device):
    """GPU kernels of the ROI layers, asked for when minicnn first uses the ``"cuda"`` device
    (``model.to("cuda")``): only then is :mod:`.roi_cuda` (and numba.cuda) imported."""
    if device != "cuda":
        return []
    from .roi_cuda import RoIAlignCUDA, RoIPoolCUDA
    return [RoIPoolCUDA, RoIAlignCUDA]


@minicnn.hookimpl
def minicnn_models():
    from .localization import localizer
    from .model import faster_rcnn_backbone
    return {"detection_backbone": faster_rcnn_backbone, "localizer": localizer}


@minicnn.hookimpl
def minicnn_datasets():
    from .datasets import DetDigits, DetShapes
    from .readers import COCODetection, VOCDetection
    return {"detshapes": DetShapes, "detdigits": DetDigits, "voc_detection": VOCDetection,
            "coco_detection": COCODetection}


@minicnn.hookimpl
def minicnn_commands():
    from .cli import command
    return [command()]


def ensure_registered():
    """Register this plugin in minicnn's current registry unless its layers are there already
    (an installed plugin is loaded from its entry point; this covers a checkout, or a registry
    built with ``MINICNN_DISABLE_PLUGIN_AUTOLOAD=1``)."""
    import sys
    registry = minicnn.get_registry()
    if "RoIAlign" not in registry.layers:
        registry.register(sys.modules[__name__], name="detection")
    return registry
