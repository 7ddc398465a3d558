"""Helpers for the one-shot functional forms (``minicnn.functional``)."""

import numpy as np

from ..random import no_init


def build(layer_cls, *args, **kwargs):
    """A layer built without drawing random initial weights."""
    with no_init():
        return layer_cls(*args, **kwargs)


def run(layer, inputs, **params):
    """Set the layer's parameters to the given arrays (None leaves one out), then run it once."""
    for name, value in params.items():
        if value is not None:
            layer._params[name].data = np.ascontiguousarray(value)
    return layer(list(inputs))
