"""The plugin module minicnn loads from the entry point ``segmentation`` (group ``minicnn``):
models ``fcn8s`` and ``unet``, datasets ``segshapes`` and ``voc_segmentation``, and the
``minicnn segment`` command."""

import minicnn


@minicnn.hookimpl
def minicnn_models():
    from .models import MODELS
    return dict(MODELS)


@minicnn.hookimpl
def minicnn_datasets():
    from .datasets import SegShapes
    from .voc import VOCSegmentation
    return {"segshapes": SegShapes, "voc_segmentation": VOCSegmentation}


@minicnn.hookimpl
def minicnn_commands():
    from .cli import command
    return [command()]
