"""Weight initialisations of the reference implementations (torchvision's ``nn.init`` calls).

Every draw comes from ``minicnn.random.generator()`` (looked up at call time), so
``minicnn.manual_seed(s)`` before building a model makes its weights reproducible. Draws are made in
float32 directly, which keeps VGG's 100M-weight classifier cheap to build. Inside
``minicnn.random.no_init()`` nothing is drawn (the weights stay as the layers were built: zeros),
so a model whose weights will be loaded from a file builds in a fraction of the time.
"""

import math

import numpy as np

from .. import nn
from .. import random as _random


def _drawing():
    return not _random._skip_init


def generator():
    return _random.generator()


def _set(param, values):
    param.data = np.ascontiguousarray(values, dtype=param.data.dtype)


def _fans(shape):
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def kaiming_normal(param, mode="fan_in", gain=None):
    """N(0, std^2), std = gain / sqrt(fan); gain None is ReLU's sqrt(2) (He et al. 2015)."""
    if not _drawing():
        return
    gain = math.sqrt(2.0) if gain is None else gain
    fan_in, fan_out = _fans(param.data.shape)
    std = gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    _set(param, generator().standard_normal(param.data.shape, dtype=np.float32) * std)


def normal(param, std):
    if not _drawing():
        return
    _set(param, generator().standard_normal(param.data.shape, dtype=np.float32) * std)


def uniform_default(param, fan_in):
    """PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for conv / linear weights and biases."""
    if not _drawing():
        return
    bound = 1.0 / math.sqrt(fan_in)
    _set(param, (generator().random(param.data.shape, dtype=np.float32) * 2 - 1) * bound)


def constant(param, value):
    _set(param, np.full(param.data.shape, value, dtype=np.float32))


def init_modules(model, conv=None, linear=None):
    """Apply torchvision-style initialisation to every layer of ``model``, in module-tree order.

    ``conv(layer)`` / ``linear(layer)`` initialise Conv2d / Linear layers (None: leave them as
    built); batch norms always get weight 1 and bias 0.
    """
    for _, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and conv is not None:
            conv(module)
        elif isinstance(module, nn.Linear) and linear is not None:
            linear(module)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
            constant(module.weight, 1.0)
            constant(module.bias, 0.0)
    return model


def conv_kaiming_fan_out(layer):
    """ResNet / VGG convolutions: kaiming normal, fan_out, ReLU gain; bias 0."""
    kaiming_normal(layer.weight, mode="fan_out")
    if layer.bias is not None:
        constant(layer.bias, 0.0)


def conv_default(layer):
    """PyTorch's default Conv2d initialisation (for layers built under ``no_init``)."""
    fan_in = layer.weight.data[0].size
    uniform_default(layer.weight, fan_in)
    if layer.bias is not None:
        uniform_default(layer.bias, fan_in)


def linear_default(layer):
    """PyTorch's default Linear initialisation (for layers built under ``no_init``)."""
    uniform_default(layer.weight, layer.in_features)
    if layer.bias is not None:
        uniform_default(layer.bias, layer.in_features)
