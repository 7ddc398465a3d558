"""Dropout (inverted): Dropout (elements), Dropout1d / Dropout2d (whole channels).

In training mode each element (or each (sample, channel) plane) is kept with probability 1 - p and
scaled by 1 / (1 - p), else zeroed: ``y = x * keep / (1 - p)``, so the expectation of y is x; p = 1
gives zeros. In eval mode the layer is the identity. Backward multiplies by the same mask and scale.

Each layer draws from its own generator ``self.rng`` (spawned from minicnn's generator when built,
so ``minicnn.manual_seed`` makes training reproducible): one 64-bit seed per training forward, from
which the kernel hashes the mask (see ``dropout_cpu``); ``minicnn.testing.gradcheck`` restores
``rng`` between evaluations so every evaluation sees the same mask. Eval mode draws nothing.
"""

import numpy as np

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..random import spawn
from ..registry import hookimpl
from .checks import probability


class Dropout(Layer):
    """Zero each element with probability ``p`` in training, scaling the rest by 1 / (1 - p).

    ``inplace`` is accepted for PyTorch compatibility and ignored (kernels never alias).
    ``generator`` (keyword only, a ``numpy.random.Generator``) replaces the spawned generator.
    """

    channelwise = False

    def __init__(self, p=0.5, inplace=False, *, generator=None):
        super().__init__()
        name = type(self).__name__
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)):
            raise ConfigError(f"{name}: p must be a number in [0, 1], got {p!r}")
        self.p = probability(name, "p", p)
        self.inplace = bool(inplace)
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise ConfigError(f"{name}: generator must be a numpy.random.Generator, "
                              f"got {type(generator).__name__}")
        self.rng = spawn() if generator is None else generator

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]

    def flops(self, in_shapes, out_shapes):
        return int(np.prod(in_shapes[0])) if self.training else 0

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class _FeatureDropout(Dropout):
    channelwise = True
    ranks = (4,)
    layout = "(N, C, H, W)"

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        if len(shape) not in self.ranks:
            raise ShapeError(f"{type(self).__name__} zeroes whole channels of {self.layout} input",
                             expected=f"{self.ranks[0]} axes {self.layout}",
                             received=f"shape {shape}")
        return [shape]


class Dropout1d(_FeatureDropout):
    """Zero whole channels of (N, C, L) input with probability ``p``, each sample apart."""

    ranks = (3,)
    layout = "(N, C, L)"


class Dropout2d(_FeatureDropout):
    """Zero whole channels of (N, C, H, W) input with probability ``p``, each sample apart."""

    ranks = (4,)
    layout = "(N, C, H, W)"


@hookimpl
def minicnn_layers():
    return [Dropout, Dropout1d, Dropout2d]


def _run_once(cls, x, p, training, seed):
    from .functional_util import build
    generator = None if seed is None else np.random.default_rng(seed)
    if generator is None and not training:
        generator = np.random.default_rng(0)   # never drawn from: eval leaves minicnn's stream
    layer = build(cls, p, generator=generator)
    layer.train(bool(training))
    return layer(x)


def dropout(x, p=0.5, training=True, seed=None):
    """Inverted dropout of every element; ``seed`` gives a fixed mask, else minicnn's generator is
    used (and advanced, so reproducible after ``minicnn.manual_seed``)."""
    return _run_once(Dropout, x, p, training, seed)


def dropout1d(x, p=0.5, training=True, seed=None):
    """Channel dropout of (N, C, L) input (see :func:`dropout`)."""
    return _run_once(Dropout1d, x, p, training, seed)


def dropout2d(x, p=0.5, training=True, seed=None):
    """Channel dropout of (N, C, H, W) input (see :func:`dropout`)."""
    return _run_once(Dropout2d, x, p, training, seed)


FUNCTIONAL = ["dropout", "dropout1d", "dropout2d"]
