"""Registers the built-in datasets (shapes, mnist, cifar10, image_folder) through the plugin
hook."""

from ..registry import hookimpl
from .cifar import CIFAR10
from .folder import ImageFolder
from .generated import Shapes
from .idx import MNIST


@hookimpl
def minicnn_datasets():
    return {"shapes": Shapes, "mnist": MNIST, "cifar10": CIFAR10, "image_folder": ImageFolder}
