"""The dataset protocol and the generic datasets: arrays, subsets, random splits.

A dataset is anything with ``__len__`` and ``__getitem__(index) -> (image, label)``: ``image`` a
float32 numpy array, CHW, values in [0, 1] before normalisation, ``label`` an int.
:class:`DataLoader` takes any such object.

Subclassing :class:`Dataset` adds what the loader uses for reproducible augmentation and speed:

* implement ``__len__`` and ``load(index) -> (image, label)`` (the raw sample, before
  ``transform``);
* ``get(index, rng)`` applies ``self.transform(image, rng)``; the loader passes a generator derived
  from (seed, epoch, index), so a sample's augmentation does not depend on batching or prefetching;
* ``ds[i]`` is ``ds.get(i)``: without a generator, a random transform gets one derived from the
  index alone, so ``ds[i]`` is reproducible;
* ``get_batch(indices)`` returns ``(x float32 (N, ...) contiguous, y int64 (N,))``; array-backed
  datasets without a transform answer it with one fancy-indexing step.
"""

import operator

import numpy as np

from ..errors import InputError
from . import seeding


def _normalise_index(index, length, owner):
    try:
        index = operator.index(index)
    except TypeError:
        raise TypeError(f"{owner} indices must be integers, got {type(index).__name__}") from None
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"{owner} index {index} out of range for {length} samples")
    return index


def _label(value, where):
    try:
        return operator.index(value)
    except TypeError:
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
            return int(value)
        raise TypeError(f"{where}: the label must be an integer, got {type(value).__name__} "
                        f"{value!r}") from None


def stack_images(images, where="dataset"):
    """Stack CHW images into one float32 (N, C, H, W) contiguous array; shapes must agree."""
    if not len(images):
        raise InputError(f"{where}: cannot make a batch of no samples")
    first = np.shape(images[0])
    x = np.empty((len(images),) + first, dtype=np.float32)
    for k, image in enumerate(images):
        image = np.asarray(image)          # a transform's result: nothing checked it yet
        if image.dtype.kind not in "biuf" or image.ndim == 0:
            raise InputError(f"{where}: sample {k} of the batch is not an image array of numbers "
                             f"(it has dtype {image.dtype}, shape {image.shape}); check the "
                             f"dataset's transform")
        if np.shape(image) != first:
            raise InputError(f"{where}: sample {k} of the batch has shape {np.shape(image)}, the "
                             f"first has {first}; give the dataset a size or a Resize/RandomCrop "
                             f"transform")
        x[k] = image
    return x


def stack_samples(samples, where="dataset"):
    """Stack ``(image, label)`` pairs into ``(x float32 (N, ...) contiguous, y int64 (N,))``."""
    x = stack_images([image for image, _ in samples], where)
    y = np.array([_label(label, where) for _, label in samples], dtype=np.int64)
    return x, y


class Dataset:
    """Base class of map-style datasets (see the module docstring for the contract).

    Subclasses implement ``__len__`` and ``load(index)``; a subclass may instead override
    ``__getitem__`` (then ``get`` ignores the generator and returns ``self[index]``).
    """

    transform = None

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def load(self, index):
        """The raw sample ``(image, label)`` at a valid non-negative index, before ``transform``."""
        raise NotImplementedError(f"{type(self).__name__} must implement load(index) or "
                                  f"__getitem__")

    def has_transform(self):
        """Whether samples go through a (possibly random) transform."""
        return self.transform is not None

    def get(self, index, rng=None):
        """Sample ``index`` with the transform applied using ``rng`` (a
        ``numpy.random.Generator``)."""
        if type(self).__getitem__ is not Dataset.__getitem__:
            return self[index]
        index = _normalise_index(index, len(self), type(self).__name__)
        image, label = self.load(index)
        if self.transform is not None:
            if rng is None:
                rng = seeding.derive(seeding.SAMPLE, 0, 0, index)
            image = self.transform(image, rng)
        return image, label

    def __getitem__(self, index):
        return self.get(index)

    def get_batch(self, indices, rngs=None):
        """Samples ``indices`` stacked: ``(x float32 (N, ...), y int64 (N,))``; ``rngs`` one per
        sample."""
        rngs = [None] * len(indices) if rngs is None else rngs
        samples = [self.get(int(i), r) for i, r in zip(indices, rngs, strict=True)]
        return stack_samples(samples, type(self).__name__)

    def __iter__(self):
        for i in range(len(self)):
            yield self.get(i)

    def __repr__(self):
        return f"{type(self).__name__}({len(self)} samples)"


class ArrayBacked(Dataset):
    """A dataset held in memory as ``images (N, ...)`` (uint8 is scaled by 1/255, anything else cast
    to float32) and ``labels`` (int64)."""

    def __init__(self, images, labels, transform=None, name=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        name = name or type(self).__name__
        if images.ndim < 2:
            raise InputError(f"{name}: images must be an array (N, ...) of at least 2 dimensions, "
                             f"got shape {images.shape}")
        if images.dtype.kind not in "uif" or images.dtype == np.bool_:
            raise InputError(f"{name}: images must be numeric (uint8 or float), got {images.dtype}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise InputError(f"{name}: labels must be a 1-D integer array, got shape "
                             f"{labels.shape} dtype {labels.dtype}")
        if len(images) != len(labels):
            raise InputError(f"{name}: {len(images)} images but {len(labels)} labels")
        if transform is not None and not callable(transform):
            raise TypeError(f"{name}: transform must be callable(image, rng), got {transform!r}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def _to_float(self, images):
        if self.images.dtype == np.uint8:
            return images.astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(images, dtype=np.float32)

    def load(self, index):
        return self._to_float(self.images[index]), int(self.labels[index])

    def get_batch(self, indices, rngs=None):
        indices = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"{type(self).__name__} indices must be in [-{n}, {n}), got "
                             f"{indices.min()}..{indices.max()}")
        x = np.ascontiguousarray(self._to_float(self.images[indices]))
        y = self.labels[indices]
        if self.transform is None:
            return x, y
        if rngs is None:                          # as get(i) without a generator
            rngs = [seeding.derive(seeding.SAMPLE, 0, 0, int(i) % n) for i in indices]
        if len(rngs) != len(indices):
            raise ValueError(f"{len(rngs)} generators for {len(indices)} samples")
        images = [self.transform(x[k], rngs[k]) for k in range(len(indices))]
        return stack_images(images, type(self).__name__), y

    def arrays(self):
        """All samples at once, untransformed: ``(x float32 (N, ...), y int64 (N,))``."""
        return self._to_float(self.images), self.labels.copy()


class ArrayDataset(ArrayBacked):
    """Samples from arrays: ``x (N, C, H, W)`` (uint8 is scaled by 1/255; floats and other integer
    types are cast to float32 as they are) and integer labels ``y (N,)``; ``transform(image, rng)``
    is applied per sample."""

    def __init__(self, x, y, transform=None):
        super().__init__(x, y, transform)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (transforms are the parent's)."""

    def __init__(self, dataset, indices):
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise TypeError(f"Subset indices must be a 1-D sequence of integers, got shape "
                            f"{indices.shape} dtype {indices.dtype}")
        indices = indices.astype(np.int64)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset indices must be in [-{n}, {n}) for a dataset of {n} samples")
        self.dataset = dataset
        self.indices = np.where(indices < 0, indices + n, indices)

    def __len__(self):
        return len(self.indices)

    def has_transform(self):
        return has_transform(self.dataset)

    def get(self, index, rng=None):
        index = _normalise_index(index, len(self), "Subset")
        return fetch(self.dataset, int(self.indices[index]), rng)

    def get_batch(self, indices, rngs=None):
        mapped = self.indices[np.asarray(indices, dtype=np.int64)]
        if isinstance(self.dataset, Dataset):
            return self.dataset.get_batch(mapped, rngs)
        return stack_samples([self.dataset[int(i)] for i in mapped], "Subset")

    @property
    def classes(self):
        return self.dataset.classes


def has_transform(dataset):
    """Whether a dataset (ours, or any object with ``transform``) applies a transform."""
    if isinstance(dataset, Dataset):
        return dataset.has_transform()
    return getattr(dataset, "transform", None) is not None


def fetch(dataset, index, rng=None):
    """``dataset.get(index, rng)`` for our datasets, ``dataset[index]`` for any other."""
    if isinstance(dataset, Dataset):
        return dataset.get(index, rng)
    return dataset[index]


def _split_lengths(lengths, n):
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split needs at least one length")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in lengths):
        counts = [int(v) for v in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n:
            raise ValueError(f"random_split lengths {counts} must be non-negative and sum to the "
                             f"dataset's {n} samples")
        return counts
    fractions = [float(v) for v in lengths]
    if any(not 0 <= f <= 1 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"random_split fractions {fractions} must be in [0, 1] and sum to 1 "
                         f"(or give integer lengths summing to {n})")
    counts = [int(np.floor(n * f)) for f in fractions]
    for k in range(n - sum(counts)):      # the remainder goes round-robin, as in PyTorch
        counts[k % len(counts)] += 1
    return counts


def random_split(dataset, lengths, seed=None):
    """Split ``dataset`` into non-overlapping :class:`Subset` of the given ``lengths`` (integers
    summing to ``len(dataset)``, or fractions summing to 1) after a permutation drawn from
    ``seed``."""
    n = len(dataset)
    counts = _split_lengths(lengths, n)
    seed = seeding.check_seed(seed)
    order = seeding.derive(seeding.SPLIT, seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
