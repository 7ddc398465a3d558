"""ConvTranspose2d: hand example, scatter reference, adjoint of convolution, gradients, bad input"""

import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, ShapeError, nn, testing
from minicnn import functional as F
from minicnn.layers import conv_transpose_cpu

from .reference import conv_transpose as ref

X22 = np.array([[1, 2], [3, 4]], np.float32)[None, None]
K22 = np.array([[1, 2], [3, 4]], np.float32)[None, None]


def test_hand_example_stride_1_and_2():
    # stride 1: every input pixel adds x * kernel at its own position (a "full" correlation)
    np.testing.assert_array_equal(F.conv_transpose2d(X22, K22),
                                  [[[[1, 4, 4], [6, 20, 16], [9, 24, 16]]]])
    # stride 2, kernel 2: the copies tile the output without overlapping
    np.testing.assert_array_equal(F.conv_transpose2d(X22, K22, stride=2),
                                  [[[[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]]]])
    # padding 1 crops one row/column on each side; output_padding adds one at the bottom/right
    np.testing.assert_array_equal(F.conv_transpose2d(X22, K22, stride=2, padding=1),
                                  [[[[4, 6], [6, 4]]]])
    np.testing.assert_array_equal(
        F.conv_transpose2d(X22, K22, np.array([10], np.float32), stride=2, padding=1,
                           output_padding=1),
        [[[[14, 16, 18], [16, 14, 18], [22, 22, 26]]]])


GRID = [  # in, out, kernel, stride, padding, output_padding, groups, dilation, (H, W), bias
    (3, 4, 3, 1, 0, 0, 1, 1, (4, 5), True),
    (2, 3, 4, 2, 1, 0, 1, 1, (3, 3), True),
    (4, 6, 3, 2, 1, 1, 2, 1, (3, 4), False),
    (2, 2, (3, 2), (2, 3), (1, 0), (1, 2), 1, 1, (3, 2), True),
    (3, 2, 3, 1, 2, 0, 1, 2, (4, 4), True),
    (4, 4, 2, 3, 0, (2, 1), 4, (2, 1), (2, 3), True),
    (6, 3, 1, 2, 0, 1, 3, 1, (3, 3), False),
    (2, 4, 5, 3, 3, 2, 2, 1, (3, 4), True),
]


def _layer(cin, cout, k, s, p, op, g, d, bias, seed=0):
    minicnn.manual_seed(seed)
    return nn.ConvTranspose2d(cin, cout, k, s, p, op, g, bias, d)


@pytest.mark.parametrize("cin,cout,k,s,p,op,g,d,hw,bias", GRID)
def test_reference_adjoint_gradient_layout_functional(cin, cout, k, s, p, op, g, d, hw, bias):
    layer = _layer(cin, cout, k, s, p, op, g, d, bias)
    args = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    x = testing.tie_free((3, cin) + hw, seed=1)
    b = layer.bias.data if bias else None
    testing.check_forward(layer, [x], lambda m, xs: ref.conv_transpose2d(
        xs[0], m.weight.data, b, **args))
    # adjoint: <conv_transpose(x), v> == <x, conv(v)> with the same weight, and the data gradient
    # of conv_transpose is exactly that convolution
    y = layer(x)
    v = testing.tie_free(y.shape, seed=2, dtype=np.float64)
    conv_v = ref.conv2d(v, layer.weight.data, stride=s, padding=p, groups=g, dilation=d)
    assert conv_v.shape == x.shape
    out = y.astype(np.float64) - (0 if b is None else b.astype(np.float64)[None, :, None, None])
    np.testing.assert_allclose(np.sum(out * v), np.sum(x * conv_v), rtol=1e-5)
    np.testing.assert_allclose(layer.backward(v.astype(np.float32)), conv_v, rtol=1e-4,
                               atol=1e-5)
    testing.gradcheck(layer, [testing.tie_free((2, cin) + hw, seed=3)])
    testing.check_noncontiguous(layer, [x])
    np.testing.assert_allclose(F.conv_transpose2d(x, layer.weight.data, b, s, p, op, g, d), y,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("path", ["serial", "parallel"])
def test_batch_chunks_frozen_weights_and_determinism(path, monkeypatch):
    if path == "parallel":    # one chunk of images per thread, partial weight gradients summed
        monkeypatch.setattr(conv_transpose_cpu, "SERIAL_BELOW", 0)
    layer = _layer(4, 6, 3, 2, 1, 1, 2, 1, True, seed=3)
    x = testing.tie_free((7, 4, 5, 4), seed=4)      # 7 images over the thread chunks
    y = layer(x)
    gy = testing.tie_free(y.shape, seed=5)
    gx = layer.backward(gy)
    gw, gb = layer.weight.grad.copy(), layer.bias.grad.copy()
    np.testing.assert_allclose(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5)
    # the weight gradient is the correlation of inputs and output gradients
    xr, gyr = x.astype(np.float64), gy.astype(np.float64)
    want = np.zeros(gw.shape)
    for ci in range(4):
        for co in range(3):
            oc = (ci // 2) * 3 + co
            for a in range(3):
                for c in range(3):
                    for i in range(5):
                        for j in range(4):
                            oh, ow = 2 * i - 1 + a, 2 * j - 1 + c
                            if 0 <= oh < y.shape[2] and 0 <= ow < y.shape[3]:
                                want[ci, co, a, c] += np.dot(xr[:, ci, i, j], gyr[:, oc, oh, ow])
    np.testing.assert_allclose(gw, want, rtol=1e-4, atol=1e-5)
    for _ in range(2):   # bit-identical on repeat
        layer(x)
        np.testing.assert_array_equal(layer.backward(gy), gx)
        np.testing.assert_array_equal(layer.weight.grad, gw)
    layer.freeze("weight")
    layer(x)
    assert layer.backward(gy, input_grad=False) is None
    assert layer.weight.grad is None
    np.testing.assert_array_equal(layer.bias.grad, gb)
    layer.unfreeze()
    layer.freeze("bias")
    layer(x)
    np.testing.assert_array_equal(layer.backward(gy), gx)
    np.testing.assert_array_equal(layer.weight.grad, gw)


def test_float64_and_float32_agree():
    layer = _layer(3, 4, 3, 2, 1, 1, 1, 1, True, seed=6)
    x = testing.tie_free((2, 3, 4, 4), seed=7, dtype=np.float64)
    y32 = layer(x.astype(np.float32))
    y64 = layer.double()(x)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


def test_init_follows_pytorch():
    minicnn.manual_seed(0)
    layer = nn.ConvTranspose2d(8, 12, (3, 2), groups=2)
    assert layer.weight.shape == (8, 6, 3, 2) and layer.bias.shape == (12,)
    bound = 1 / np.sqrt(6 * 3 * 2)       # fan_in = weight.shape[1] * kH * kW
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound
    assert nn.ConvTranspose2d(2, 2, 2, bias=False).bias is None
    assert layer.flops([(5, 8, 4, 4)], [(5, 12, 6, 5)]) == 2 * 5 * 8 * 6 * 6 * 16
    assert repr(layer) == ("ConvTranspose2d(8, 12, kernel_size=(3, 2), stride=(1, 1), "
                           "padding=(0, 0), groups=2, bias=True)")


def test_bad_hyper_parameters():
    with pytest.raises(ConfigError, match=r"ConvTranspose2d: output_padding must be smaller than "
                                          r"either stride or dilation, got output_padding="
                                          r"\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    nn.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1, dilation=2)   # allowed by dilation
    with pytest.raises(ConfigError, match=r"ConvTranspose2d: in_channels \(3\) and out_channels "
                                          r"\(4\) must both be divisible by groups \(2\)"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)
    with pytest.raises(ConfigError, match=r"ConvTranspose2d: stride must be >= 1, got \(0, 0\)"):
        nn.ConvTranspose2d(2, 2, 3, stride=0)
    with pytest.raises(ConfigError, match="ConvTranspose2d: padding must be >= 0"):
        nn.ConvTranspose2d(2, 2, 3, padding=-1)
    with pytest.raises(ConfigError, match="ConvTranspose2d: kernel_size must be >= 1"):
        nn.ConvTranspose2d(2, 2, 0)
    with pytest.raises(ConfigError, match="ConvTranspose2d: out_channels must be a positive"):
        nn.ConvTranspose2d(2, 0, 3)
    with pytest.raises(ConfigError, match="ConvTranspose2d: only padding_mode='zeros'"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_bad_input_shapes():
    layer = nn.ConvTranspose2d(3, 2, 3)
    with pytest.raises(ShapeError, match=r"\(ConvTranspose2d\): wrong number of input channels; "
                                         r"expected \(N, 3, H, W\), received \(1, 4, 5, 5\)"):
        layer(np.zeros((1, 4, 5, 5), np.float32))
    with pytest.raises(ShapeError, match=r"\(ConvTranspose2d\): input \(N, C, H, W\) has the "
                                         r"wrong number of axes; expected 4 axes"):
        layer(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ShapeError, match=r"\(ConvTranspose2d\): the padding \(2, 2\) removes the "
                                         r"whole output \(computed output size \(-2, -2\)\)"):
        nn.ConvTranspose2d(1, 1, 1, padding=2)(np.zeros((1, 1, 2, 2), np.float32))
