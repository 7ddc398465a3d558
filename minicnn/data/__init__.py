"""Datasets, loaders and augmentations.

* :class:`Dataset` (the protocol: ``__len__``, ``__getitem__`` -> ``(image CHW float32, label
  int)``), :class:`ArrayDataset`, :class:`Subset`, :func:`random_split`;
* file formats: :func:`read_idx` / :func:`write_idx` and :class:`MNIST`, :class:`CIFAR10` (binary
  batches), :class:`ImageFolder` and :func:`load_image` (safe Pillow loading);
* :class:`Shapes`, a generated dataset that needs no download;
* :class:`DataLoader`: reproducible shuffling and augmentation, background prefetch;
* :mod:`minicnn.data.transforms`: ``t(image, rng)`` augmentations composed with ``Compose``.

Errors: :class:`DataFormatError` (a malformed, truncated or hostile file, named in the message) and
:class:`DatasetNotFoundError` (missing files, all named).
"""

from . import transforms
from .cifar import CIFAR10
from .dataset import ArrayDataset, Dataset, Subset, random_split
from .errors import DataFormatError, DatasetNotFoundError
from .folder import ImageFolder
from .generated import Shapes
from .idx import MNIST, read_idx, write_idx
from .images import array_to_image, image_to_array, load_image, save_image
from .loader import DataLoader

__all__ = [
    "CIFAR10", "ArrayDataset", "DataFormatError", "DataLoader", "Dataset", "DatasetNotFoundError",
    "ImageFolder", "MNIST", "Shapes", "Subset", "array_to_image", "image_to_array", "load_image",
    "random_split", "read_idx", "save_image", "transforms", "write_idx",
]
