"""Convolutions over random geometries (Conv1d/2d/3d and ConvTranspose2d; strides, dilations,
paddings, groups, odd sizes mixed per axis) in float64: the forward against the loop references,
the backward by the adjoint identity. ``y - b`` is linear in x and in w, so for any x' and w'
``<A x', gy> = <x', gx>`` and ``<A(w') x, gy> = <w', gw>`` must hold, and the bias gradient is gy
summed over everything but the channels. The combinations the hand-picked cases leave out."""

import numpy as np
import pytest

from minicnn import nn

from .reference import conv as ref
from .reference import conv_transpose as ref_t

CASES = 60


def _geometry(rng, dims=(1, 2, 3), groups=(1, 1, 2, 3)):
    """(a random layer, its input's spatial size); ``dims`` and ``groups``: the choices."""
    dims = int(rng.choice(dims))
    transposed = dims == 2 and rng.random() < 0.35
    groups = int(rng.choice(groups))
    cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    k = tuple(int(v) for v in rng.integers(1, 4, dims))
    s = tuple(int(v) for v in rng.integers(1, 4, dims))
    d = tuple(int(v) for v in rng.integers(1, 3, dims))
    p = tuple(int(rng.integers(0, d[i] * (k[i] - 1) // 2 + 1)) for i in range(dims))
    spec = dict(stride=s, padding=p, dilation=d, groups=groups, bias=bool(rng.random() < 0.7))
    if transposed:
        # output_padding below max(stride, dilation), as PyTorch requires; every size >= 1 here
        spec["output_padding"] = tuple(int(rng.integers(0, max(s[i], d[i]))) for i in range(2))
        size = tuple(int(v) for v in rng.integers(2, 6, dims))
        return nn.ConvTranspose2d(cin, cout, k, **spec), size
    size = tuple(d[i] * (k[i] - 1) + 1 - 2 * p[i] + int(rng.integers(0, 7)) for i in range(dims))
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](cin, cout, k, **spec), size


def _linear_part(layer, x, w):
    """The layer's output without its bias, for any input x and weight w (the references)."""
    if isinstance(layer, nn.ConvTranspose2d):
        return ref_t.conv_transpose2d(x, w, None, layer.stride, layer.padding,
                                      layer.output_padding, layer.groups, layer.dilation)
    return ref.conv(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)


@pytest.mark.parametrize("seed", range(CASES))
def test_random_geometry_forward_and_adjoint_backward(seed):
    rng = np.random.default_rng(seed)
    layer, size = _geometry(rng)
    layer = layer.double()
    x = rng.standard_normal((int(rng.integers(1, 4)), layer.in_channels) + size)
    w = layer.weight.data
    y = layer(x)
    want = _linear_part(layer, x, w)
    if layer.bias is not None:
        want = want + layer.bias.data.reshape((1, -1) + (1,) * len(size))
    assert y.shape == want.shape, layer
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10, err_msg=repr(layer))
    gy = rng.standard_normal(y.shape)
    gx = layer.backward(gy)
    x2, w2 = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    lhs_x, lhs_w = np.vdot(_linear_part(layer, x2, w), gy), np.vdot(_linear_part(layer, x, w2), gy)
    np.testing.assert_allclose(np.vdot(x2, gx), lhs_x, rtol=1e-10, atol=1e-10, err_msg=repr(layer))
    np.testing.assert_allclose(np.vdot(w2, layer.weight.grad), lhs_w, rtol=1e-10, atol=1e-10,
                               err_msg=repr(layer))
    if layer.bias is not None:
        channels_out = (0,) + tuple(range(2, y.ndim))
        np.testing.assert_allclose(layer.bias.grad, gy.sum(axis=channels_out), rtol=1e-10,
                                   atol=1e-10, err_msg=repr(layer))
