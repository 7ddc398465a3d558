"""Generators derived from a seed and a few small integers (epoch, sample index...).

Each derived generator is a Philox stream whose 128-bit key packs the 64-bit seed, a purpose tag and
the integers, so two different (purpose, seed, epoch, index) tuples never share a stream, no hashing
is needed, and making one costs a few microseconds (the loader makes one per sample).
"""

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from .. import random as _random

SHUFFLE = 1    # the loader's permutation of epoch k
SAMPLE = 2     # a sample's augmentation in epoch k
SPLIT = 3      # random_split
GENERATE = 4   # generated datasets

_MAX_SEED = 2**64


def check_seed(seed, what="seed"):
    """A seed as a non-negative Python int below 2**64; None draws one from minicnn's generator.

    Drawing from :func:`minicnn.random.generator` makes ``minicnn.manual_seed`` govern unseeded
    loaders too, as ``torch.manual_seed`` governs PyTorch's.
    """
    if seed is None:
        return int(_random.generator().integers(0, 2**63 - 1))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{what} must be an int or None, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(f"{what} must be in [0, 2**64), got {seed}")
    return seed


class _PhiloxKey(ISeedSequence):
    """Hands Philox its 128-bit key directly (``Philox(key=...)`` would first gather OS entropy
    for a seed it then ignores, which doubles the cost of a generator)."""

    __slots__ = ("words",)

    def __init__(self, words):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 2 or np.dtype(dtype) != np.uint64:    # what Philox asks for its key
            raise ValueError("a Philox key gives exactly two uint64 words")
        return np.array(self.words, dtype=np.uint64)


def derive(tag, seed, epoch=0, index=0):
    """The generator for (tag, seed, epoch, index); ``epoch < 2**28`` and ``index < 2**32``."""
    if not 0 <= epoch < 2**28 or not 0 <= index < 2**32:
        raise ValueError(f"epoch {epoch} or index {index} out of range for a derived generator")
    words = ((tag << 60) | (epoch << 32) | index, seed)
    return np.random.Generator(np.random.Philox(_PhiloxKey(words)))
