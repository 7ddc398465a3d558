"""minicnn's random numbers: one seedable generator for weight initialisation and dropout masks.

``minicnn.manual_seed(s)`` makes everything created or drawn afterwards reproducible, as
``torch.manual_seed`` does. Layers that draw during training (Dropout) take their own generator from
this one when they are built, so that two models never share a random stream by accident.
"""

import contextlib

import numpy as np

_generator = np.random.default_rng()
_skip_init = False


def manual_seed(seed):
    """Reseed minicnn's generator."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    """The current generator (weight initialisation draws from it)."""
    return _generator


def spawn():
    """A new independent generator derived from the current one."""
    return np.random.default_rng(_generator.integers(0, 2**63 - 1))


def uniform_init(shape, bound, dtype=np.float32):
    """U(-bound, bound) weights, PyTorch's default for convolutions and linear layers."""
    if _skip_init:
        return np.zeros(shape, dtype=dtype)
    return _generator.uniform(-bound, bound, size=shape).astype(dtype)


@contextlib.contextmanager
def no_init():
    """Build layers without drawing initial weights (the functional forms overwrite them anyway), so
    that ``F.conv2d`` neither wastes time nor moves the random stream."""
    global _skip_init
    previous, _skip_init = _skip_init, True
    try:
        yield
    finally:
        _skip_init = previous
