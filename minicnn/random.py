"""minicnn's random numbers: one seedable generator for weight initialisation and dropout masks.

``minicnn.manual_seed(s)`` makes everything created or drawn afterwards reproducible, as
``torch.manual_seed`` does. Layers that draw during training (Dropout) take their own generator from
this one when they are built, so that two models never share a random stream by accident.

``get_state()`` / ``set_state(state)`` save and restore the stream (as ``torch.get_rng_state`` and
``torch.set_rng_state`` do), and ``with preserved():`` restores it when the block ends, so code that
must seed or draw (a test, a check) leaves the caller's stream where it was::

    with minicnn.random.preserved():
        minicnn.manual_seed(0)
        layer = minicnn.nn.Conv2d(3, 8, 3)   # the same weights every time
    # the caller's stream is where it was
"""

import contextlib
import copy

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


def get_state():
    """A snapshot of minicnn's random stream, for :func:`set_state`: a dict (picklable, a deep copy,
    so later draws do not change it). Generators already taken with :func:`spawn` (a Dropout
    layer's) are not part of it."""
    return copy.deepcopy(_generator.bit_generator.state)


def set_state(state):
    """Put minicnn's random stream back where :func:`get_state` saw it: the draws that follow are
    the ones that followed then."""
    global _generator
    try:
        kind = getattr(np.random, state["bit_generator"])     # "PCG64"...
        if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
            raise TypeError(f"{state['bit_generator']!r} is not a numpy bit generator")
        bit_generator = kind()
        bit_generator.state = copy.deepcopy(state)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise ValueError(f"minicnn.random.set_state: not a state from get_state() ({exc!r})") \
            from exc
    _generator = np.random.Generator(bit_generator)


@contextlib.contextmanager
def preserved():
    """Run a block and then restore minicnn's random stream as it was before it (also when the
    block raises), whatever the block seeded or drew."""
    state = get_state()
    try:
        yield
    finally:
        set_state(state)


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
