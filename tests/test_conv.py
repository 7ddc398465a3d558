"""Conv1d, Conv2d, Conv3d: seed arithmetic, loop reference, gradients, bad input, functional."""

import copy

import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, ShapeError, nn, testing
from minicnn import functional as F
from minicnn.layers import conv_cpu

from .reference import conv as ref


def reference(layer):
    """check_forward's reference for a conv layer, from the layer's own hyper-parameters."""
    def run(module, xs):
        bias = None if module.bias is None else module.bias.data
        return ref.conv(xs[0], module.weight.data, bias, module.stride, module.padding,
                        module.dilation, module.groups)
    return run


# -- the seed arithmetic (design.md section 3) -----------------------------------------------------


def test_seed_cross_correlation_no_flip():
    x = np.array([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]], np.float32)
    w = np.array([[[[1, 2], [3, 4]]]], np.float32)
    np.testing.assert_array_equal(F.conv2d(x, w), [[[[37, 47], [67, 77]]]])
    layer = nn.Conv2d(1, 1, 2, bias=False)
    layer.weight.data[...] = w
    np.testing.assert_array_equal(layer(x), [[[[37, 47], [67, 77]]]])


@pytest.mark.parametrize("w,k,p,s", [(28, 5, 0, 1), (32, 3, 1, 1), (7, 3, 0, 2), (9, 3, 1, 2),
                                     (12, 5, 2, 1), (10, 4, 1, 3), (224, 11, 2, 4)])
def test_output_size_formula(w, k, p, s):
    expected = (w - k + 2 * p) // s + 1
    assert nn.Conv2d(1, 1, k, stride=s, padding=p).infer_shapes([(1, 1, w, w)]) == \
        [(1, 1, expected, expected)]
    assert nn.Conv1d(1, 2, k, stride=s, padding=p).infer_shapes([(3, 1, w)]) == [(3, 2, expected)]


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_same_padding_is_half_the_kernel_at_stride_1(k):
    same = nn.Conv2d(2, 3, k, padding="same")
    explicit = nn.Conv2d(2, 3, k, padding=(k - 1) // 2)
    explicit.weight.data[...] = same.weight.data
    explicit.bias.data[...] = same.bias.data
    x = testing.tie_free((2, 2, 6, 5), seed=4)
    assert same.infer_shapes([x.shape]) == [(2, 3, 6, 5)]
    np.testing.assert_array_equal(same(x), explicit(x))


def test_same_padding_even_kernel_puts_the_extra_right_and_bottom():
    # kernel 2: total padding 1, all of it after the input (PyTorch): last row/column see zeros
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2), np.float32)
    y = F.conv2d(x, w, padding="same")
    np.testing.assert_array_equal(y[0, 0], [[12, 16, 9], [24, 28, 15], [15, 17, 9]])


# -- forward against the loop reference across the hyper-parameter grid ----------------------------

GRID_2D = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same"),
    dict(kernel_size=(2, 3), padding="same", dilation=(3, 2)),
    dict(kernel_size=2, padding="valid", dilation=(2, 1)),
    dict(kernel_size=3, stride=3, padding=2, dilation=2),
    dict(kernel_size=3, padding=1, groups=2),
    dict(kernel_size=3, padding=1, groups=4, out=8),           # depthwise, multiplier 2
    dict(kernel_size=1),
    dict(kernel_size=1, stride=2),
    dict(kernel_size=1, padding=1, bias=False),
    dict(kernel_size=3, stride=(2, 1), bias=False),
]


def _build(cls, cin, spec):
    spec = dict(spec)
    out = spec.pop("out", 6)
    minicnn.manual_seed(0)
    return cls(cin, out, **spec)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("spec", GRID_2D, ids=str)
def test_conv2d_forward_matches_reference(spec, batch):
    layer = _build(nn.Conv2d, 4, spec)
    x = testing.tie_free((batch, 4, 7, 6), seed=1)
    testing.check_forward(layer, [x], reference(layer))


GRID_1D = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=2),
    dict(kernel_size=4, padding="same", dilation=2),
    dict(kernel_size=3, padding="valid", dilation=3),
    dict(kernel_size=3, padding=1, groups=2, bias=False),
    dict(kernel_size=5, padding=2, groups=4, out=4),
    dict(kernel_size=1),
    dict(kernel_size=1, stride=3),
]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("spec", GRID_1D, ids=str)
def test_conv1d_forward_matches_reference(spec, batch):
    layer = _build(nn.Conv1d, 4, spec)
    x = testing.tie_free((batch, 4, 11), seed=2)
    testing.check_forward(layer, [x], reference(layer))


GRID_3D = [
    dict(kernel_size=2),
    dict(kernel_size=(3, 2, 1), stride=(1, 2, 1), padding=(1, 0, 1)),
    dict(kernel_size=3, padding="same", dilation=(1, 2, 1)),
    dict(kernel_size=2, padding=1, groups=2, bias=False),
    dict(kernel_size=2, stride=2, dilation=(1, 1, 2), groups=2, out=2),
    dict(kernel_size=1),
]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("spec", GRID_3D, ids=str)
def test_conv3d_forward_matches_reference(spec, batch):
    layer = _build(nn.Conv3d, 2, spec)
    x = testing.tie_free((batch, 2, 4, 5, 5), seed=3)
    testing.check_forward(layer, [x], reference(layer))


def test_pointwise_conv_is_a_gemm_per_image():
    minicnn.manual_seed(5)
    layer = nn.Conv2d(6, 5, 1)
    x = testing.tie_free((3, 6, 4, 7), seed=5)
    want = np.einsum("oc,nchw->nohw", layer.weight.data[:, :, 0, 0].astype(np.float64), x) \
        + layer.bias.data[None, :, None, None]
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-6)


def test_small_tiles_split_images(monkeypatch):
    """Tiles smaller than an output row (ptile not a multiple of OW) in every direction."""
    monkeypatch.setattr(conv_cpu, "COL_BUDGET", 40)
    for spec in (dict(kernel_size=3, padding=1, stride=(1, 2)), dict(kernel_size=1)):
        layer = _build(nn.Conv2d, 2, spec)
        x = testing.tie_free((2, 2, 5, 7), seed=6)
        testing.check_forward(layer, [x], reference(layer))
        testing.gradcheck(layer, [testing.tie_free((2, 2, 4, 5), seed=7)])


# -- the Winograd F(2x2, 3x3) path (3x3, stride 1, >= WINO_MIN_CHANNELS channels per group) --------


def _uses_winograd(layer, shape):
    return conv_cpu.Conv2dCPU().geometry(layer, shape, 2).winograd


@pytest.mark.parametrize("padding,groups,shape", [(1, 1, (2, 16, 5, 6)), (0, 1, (1, 16, 6, 5)),
                                                  ("same", 2, (1, 32, 4, 5)),
                                                  (2, 1, (1, 16, 3, 4))])
def test_winograd_forward_matches_reference(padding, groups, shape):
    layer = _build(nn.Conv2d, shape[1], dict(kernel_size=3, padding=padding, groups=groups,
                                             out=16 * groups))
    assert _uses_winograd(layer, shape)
    testing.check_forward(layer, [testing.tie_free(shape, seed=20)], reference(layer))


@pytest.mark.parametrize("padding,groups,shape", [
    (1, 1, (3, 16, 9, 7)), (0, 2, (2, 32, 6, 8)), (2, 1, (1, 16, 5, 5)), ((0, 2), 1, (2, 16, 4, 7)),
])
def test_winograd_matches_im2col_path(monkeypatch, padding, groups, shape):
    """Forward, input, weight and bias gradients agree with the im2col kernels (float64)."""
    layer = _build(nn.Conv2d, shape[1], dict(kernel_size=3, padding=padding, groups=groups,
                                             out=24 * groups)).double()
    other = copy.deepcopy(layer)
    x = testing.tie_free(shape, seed=21, dtype=np.float64)
    assert _uses_winograd(layer, shape)
    y = layer(x)
    gy = testing.tie_free(y.shape, seed=22, dtype=np.float64)
    gx = layer.backward(gy)
    monkeypatch.setattr(conv_cpu, "WINOGRAD", False)
    assert not _uses_winograd(other, shape)
    np.testing.assert_allclose(y, other(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, other.backward(gy), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, other.weight.grad, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(layer.bias.grad, other.bias.grad, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("cin,shape,spec", [
    (3, (2, 3, 5, 4), dict(kernel_size=3, padding=1, out=4)),
    (2, (1, 2, 6, 5), dict(kernel_size=3, out=3)),
    (4, (1, 4, 3, 3), dict(kernel_size=3, padding=2, groups=2, out=2)),
    (2, (1, 2, 4, 5), dict(kernel_size=3, padding="same", out=2, bias=False)),
])
def test_winograd_gradcheck(monkeypatch, cin, shape, spec):
    monkeypatch.setattr(conv_cpu, "WINO_MIN_CHANNELS", 1)   # tiny channel counts take the path too
    layer = _build(nn.Conv2d, cin, spec)
    assert _uses_winograd(layer, shape)
    testing.gradcheck(layer, [testing.tie_free(shape, seed=23)])


# -- gradients (float64 central differences) -------------------------------------------------------

GRAD_CASES = [
    (nn.Conv1d, 4, (2, 4, 7), dict(kernel_size=3, stride=2, padding=1, groups=2)),
    (nn.Conv1d, 2, (1, 2, 6), dict(kernel_size=2, padding="same", dilation=3)),
    (nn.Conv2d, 4, (2, 4, 5, 5), dict(kernel_size=3, padding=1, groups=2, out=4)),
    (nn.Conv2d, 3, (1, 3, 5, 6), dict(kernel_size=(2, 3), stride=(2, 1), dilation=(1, 2))),
    (nn.Conv2d, 4, (2, 4, 3, 3), dict(kernel_size=3, padding="same", groups=4, out=4)),
    (nn.Conv2d, 3, (2, 3, 3, 4), dict(kernel_size=1, out=2)),
    (nn.Conv2d, 2, (2, 2, 4, 4), dict(kernel_size=2, padding="same", out=2, bias=False)),
    (nn.Conv3d, 2, (2, 2, 3, 4, 3), dict(kernel_size=2, padding=(1, 0, 1), out=3)),
    (nn.Conv3d, 2, (1, 2, 3, 3, 4), dict(kernel_size=(1, 2, 3), stride=2, groups=2, out=2)),
]


@pytest.mark.parametrize("cls,cin,shape,spec", GRAD_CASES,
                         ids=[f"{c.__name__}-{s}" for c, _, _, s in GRAD_CASES])
def test_gradcheck(cls, cin, shape, spec):
    layer = _build(cls, cin, spec)
    testing.gradcheck(layer, [testing.tie_free(shape, seed=8)])


def test_frozen_weight_skips_its_gradient_and_keeps_input_gradient():
    minicnn.manual_seed(1)
    layer = nn.Conv2d(3, 4, 3, padding=1)
    x = testing.tie_free((2, 3, 5, 5), seed=9)
    gy = testing.tie_free((2, 4, 5, 5), seed=10)
    layer(x)
    gx_full = layer.backward(gy)
    layer.weight.requires_grad = False
    layer.weight.grad = None
    layer(x)
    gx_frozen = layer.backward(gy)
    assert layer.weight.grad is None
    assert layer.bias.grad is not None
    np.testing.assert_array_equal(gx_frozen, gx_full)
    testing.gradcheck(layer, [x])     # input and bias only


def test_input_gradient_only():
    minicnn.manual_seed(2)
    layer = nn.Conv1d(2, 3, 3)
    layer.freeze()
    testing.gradcheck(layer, [testing.tie_free((2, 2, 6), seed=11)])
    assert layer.weight.grad is None and layer.bias.grad is None


@pytest.mark.parametrize("cin,cout", [(4, 6), (16, 16)], ids=["im2col", "winograd"])
def test_gradients_are_bit_reproducible(cin, cout):
    minicnn.manual_seed(3)
    layer = nn.Conv2d(cin, cout, 3, padding=1)
    x = testing.tie_free((5, cin, 9, 9), seed=12)
    gy = testing.tie_free((5, cout, 9, 9), seed=13)
    grads = []
    for _ in range(3):
        layer(x)
        gx = layer.backward(gy)
        grads.append((gx.copy(), layer.weight.grad.copy(), layer.bias.grad.copy()))
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


# -- dtypes, layouts, functional forms -------------------------------------------------------------


def test_float32_close_to_float64():
    minicnn.manual_seed(4)
    layer = nn.Conv2d(16, 12, 3, padding=1, groups=2)
    x = testing.tie_free((3, 16, 10, 9), seed=14)
    y32 = layer(x)
    assert y32.dtype == np.float32
    double = copy.deepcopy(layer).double()
    y64 = double(x.astype(np.float64))
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    gy = testing.tie_free(y32.shape, seed=15)
    g32 = layer.backward(gy)
    g64 = double.backward(gy.astype(np.float64))
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad, double.weight.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls,shape", [(nn.Conv1d, (2, 4, 9)), (nn.Conv2d, (2, 4, 6, 5)),
                                       (nn.Conv3d, (2, 4, 3, 4, 5))])
def test_noncontiguous_input(cls, shape):
    layer = _build(cls, 4, dict(kernel_size=2, padding=1, groups=2))
    testing.check_noncontiguous(layer, [testing.tie_free(shape, seed=16)])


@pytest.mark.parametrize("cls,fn,shape", [(nn.Conv1d, F.conv1d, (2, 4, 9)),
                                          (nn.Conv2d, F.conv2d, (2, 4, 6, 5)),
                                          (nn.Conv3d, F.conv3d, (2, 4, 3, 4, 5))])
def test_functional_matches_layer(cls, fn, shape):
    layer = _build(cls, 4, dict(kernel_size=2, stride=2, padding=1, dilation=1, groups=2))
    x = testing.tie_free(shape, seed=17)
    want = layer(x)
    got = fn(x, layer.weight.data, layer.bias.data, stride=2, padding=1, groups=2)
    np.testing.assert_array_equal(got, want)
    no_bias = fn(x, layer.weight.data, None, stride=2, padding=1, groups=2)
    np.testing.assert_allclose(no_bias + layer.bias.data.reshape((1, -1) + (1,) * (x.ndim - 2)),
                               want, rtol=1e-6, atol=1e-6)


def test_functional_does_not_consume_the_random_stream():
    minicnn.manual_seed(0)
    first = nn.Conv2d(2, 2, 3).weight.data.copy()
    minicnn.manual_seed(0)
    F.conv2d(np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32))
    np.testing.assert_array_equal(nn.Conv2d(2, 2, 3).weight.data, first)


def test_functional_float64():
    x = testing.tie_free((1, 2, 5), seed=18, dtype=np.float64)
    w = testing.tie_free((3, 2, 2), seed=19, dtype=np.float64)
    b = np.array([0.5, -1.0, 2.0])
    y = F.conv1d(x, w, b, padding="same")
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref.conv(x, w, b, padding="same"), rtol=1e-12)


# -- parameters, init, FLOPs, repr ----------------------------------------------------------------


def test_parameters_follow_pytorch():
    minicnn.manual_seed(6)
    layer = nn.Conv2d(8, 16, (3, 5), groups=2)
    assert layer.weight.shape == (16, 4, 3, 5) and layer.bias.shape == (16,)
    bound = 1 / np.sqrt(4 * 3 * 5)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound
    assert [name for name, _ in nn.Conv3d(1, 2, 2, bias=False).named_parameters()] == ["weight"]
    assert nn.Conv1d(2, 4, 3).weight.shape == (4, 2, 3)
    assert nn.Conv3d(2, 4, (1, 2, 3)).weight.shape == (4, 2, 1, 2, 3)


def test_flops_and_repr():
    layer = nn.Conv2d(20, 50, 5)
    out = layer.infer_shapes([(64, 20, 12, 12)])
    assert out == [(64, 50, 8, 8)]
    assert layer.flops([(64, 20, 12, 12)], out) == 2 * 64 * 50 * 64 * 20 * 25
    grouped = nn.Conv1d(4, 6, 3, groups=2)
    assert grouped.flops([(2, 4, 10)], [(2, 6, 8)]) == 2 * 2 * 6 * 8 * 2 * 3
    text = repr(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False))
    assert text == "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    assert repr(nn.Conv1d(4, 4, 3, padding="same", groups=2)) == \
        "Conv1d(4, 4, kernel_size=(3,), stride=(1,), padding='same', groups=2)"


# -- bad hyper-parameters and bad input ------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), "Conv2d: in_channels .*groups"),
    (dict(in_channels=4, out_channels=3, kernel_size=3, groups=2), "Conv2d: out_channels .*groups"),
    (dict(in_channels=4, out_channels=4, kernel_size=0), "Conv2d: kernel_size"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, stride=0), "Conv2d: stride"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, dilation=0), "Conv2d: dilation"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding=-1), "Conv2d: padding"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding="full"), "Conv2d: padding"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding="same"),
     "Conv2d: padding='same' requires stride 1"),
    (dict(in_channels=4, out_channels=4, kernel_size=(3, 3, 3)), "Conv2d: kernel_size"),
    (dict(in_channels=0, out_channels=4, kernel_size=3), "Conv2d: in_channels"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="reflect"),
     "Conv2d: padding_mode 'reflect' is not supported; supported: 'zeros'"),
])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        nn.Conv2d(**kwargs)


def test_bad_hyper_parameters_name_the_layer():
    with pytest.raises(ConfigError, match="Conv1d: stride"):
        nn.Conv1d(1, 1, 3, stride=0)
    with pytest.raises(ConfigError, match="Conv3d: groups"):
        nn.Conv3d(2, 2, 3, groups=0)


def test_wrong_rank():
    with pytest.raises(ShapeError, match=r"Conv2d.*expected 4 axes.*received shape \(2, 3, 8\)"):
        nn.Conv2d(3, 4, 3)(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ShapeError, match=r"Conv1d.*expected 3 axes"):
        nn.Conv1d(3, 4, 3)(np.zeros((2, 3, 8, 8), np.float32))


def test_wrong_channel_count():
    with pytest.raises(ShapeError, match=r"Conv3d.*channels.*expected \(N, 3, \.\.\.\).*"
                                         r"received shape \(1, 2, 4, 4, 4\)"):
        nn.Conv3d(3, 4, 2)(np.zeros((1, 2, 4, 4, 4), np.float32))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError, match=r"Conv2d kernel \(dilated size 5\) is larger than the "
                                         r"padded input \(size 4\).*expected.*received"):
        nn.Conv2d(1, 1, 5)(np.zeros((1, 1, 4, 9), np.float32))
    with pytest.raises(ShapeError, match=r"dilated size 7"):
        nn.Conv1d(1, 1, 3, dilation=3, padding=1)(np.zeros((1, 1, 4), np.float32))
    # just fits once padded
    assert nn.Conv2d(1, 1, 5, padding=1)(np.zeros((1, 1, 3, 3), np.float32)).shape == (1, 1, 1, 1)
