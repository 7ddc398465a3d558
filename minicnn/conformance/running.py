"""Running a layer inside the suite: the registry under check made current, layers built from a
case with a fixed seed, inputs made from a case, forward and backward through the executor."""

import contextlib
import copy

import numpy as np

from .. import random as minicnn_random
from .. import testing
from ..registry import set_registry
from .cases import input_kind


@contextlib.contextmanager
def current(registry):
    """Make ``registry`` the process-wide one (the executor and minicnn.save look kernels up there)
    and keep minicnn's random stream as it was (the suite seeds it for every layer it builds)."""
    previous_registry = set_registry(registry)
    try:
        with minicnn_random.preserved():
            yield
    finally:
        set_registry(previous_registry)


def build(cls, case, seed=0):
    """The case's layer, its initial weights drawn from a stream seeded with ``seed``."""
    minicnn_random.manual_seed(seed)
    layer = cls(*case.args, **case.kwargs)
    layer.train(case.train)
    return layer


def make_inputs(layer, case, seed=0):
    """The case's inputs: its own, or tie-free floats and integer indices of its shapes."""
    if case.inputs is not None:
        made = case.inputs(seed) if callable(case.inputs) else case.inputs
        return [np.ascontiguousarray(x) for x in made]
    rng = np.random.default_rng(seed)
    xs = []
    for i, shape in enumerate(case.shapes):
        if input_kind(layer, i) == "index":
            xs.append(rng.integers(0, case.index_high, shape).astype(np.int64))
        else:
            xs.append(testing.tie_free(shape, seed=seed + i))
    return xs


def run(layer, xs):
    """The layer's outputs for inputs ``xs`` (a list), through its executor."""
    return layer._get_executor().forward(list(xs))


def rng_layers(module):
    """The modules that draw from their own generator (Dropout)."""
    return [m for _, m in module.named_modules() if hasattr(m, "rng")]


def forward_backward(layer, xs, rngs):
    """Outputs, input gradients and parameter gradients (copies) of one forward and backward
    pass, with the random layers' generators set to copies of ``rngs`` first."""
    for m, state in zip(rng_layers(layer), rngs, strict=True):
        m.rng = copy.deepcopy(state)
    ys = [np.array(y) for y in run(layer, xs)]
    gys = [np.linspace(-1, 1, y.size).reshape(y.shape).astype(y.dtype) if y.ndim else 1.0
           for y in ys]
    gxs = layer._get_executor().backward(gys)
    grads = [np.array(p.grad) for _, p in layer.named_parameters() if p.grad is not None]
    return ys + [np.array(g) for g in gxs if g is not None] + grads


def same(a, b):
    """True when two lists of arrays are equal element for element (NaN equal to NaN)."""
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(a, b, strict=True))


def error_text(exc):
    return f"{type(exc).__name__}: {exc}"
