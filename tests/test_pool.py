"""Pooling: seed arithmetic, loop references over the hyper-parameter grid, gradients, bad input."""

import math

import numpy as np
import pytest

from minicnn import ConfigError, ShapeError, nn, testing
from minicnn import functional as F
from minicnn.layers import pool_cpu

from .reference import pool as ref

# a 4x4 map whose 2x2 windows hold 1..4, 5..8, 9..12, 13..16 in scrambled order
SEED = np.array([[1, 3, 8, 5],
                 [4, 2, 6, 7],
                 [12, 9, 16, 14],
                 [10, 11, 13, 15]], np.float32)[None, None]


def test_seed_arithmetic_2x2_stride_2():
    np.testing.assert_array_equal(F.max_pool2d(SEED, 2, 2), [[[[4, 8], [12, 16]]]])
    np.testing.assert_allclose(F.avg_pool2d(SEED, 2, 2), [[[[2.5, 6.5], [10.5, 14.5]]]])
    l2 = [[math.sqrt(1 + 4 + 9 + 16), math.sqrt(25 + 36 + 49 + 64)],
          [math.sqrt(81 + 100 + 121 + 144), math.sqrt(169 + 196 + 225 + 256)]]
    np.testing.assert_allclose(F.lp_pool2d(SEED, 2, 2, 2), [[l2]], rtol=1e-6)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(SEED, 1), [[[[8.5]]]])
    np.testing.assert_allclose(nn.GlobalAvgPool2d()(SEED), [[[[8.5]]]])
    # the max-pool gradient goes to each window's maximum only
    pool = nn.MaxPool2d(2)
    pool(SEED)
    gx = pool.backward(np.array([[[[1, 2], [3, 4]]]], np.float32))
    np.testing.assert_array_equal(gx, [[[[0, 0, 2, 0], [1, 0, 0, 0],
                                         [3, 0, 4, 0], [0, 0, 0, 0]]]])


def test_output_sizes_follow_pytorch_rules():
    x = np.zeros((1, 1, 5, 5), np.float32)
    assert nn.MaxPool2d(2)(x).shape == (1, 1, 2, 2)
    assert nn.MaxPool2d(2, ceil_mode=True)(x).shape == (1, 1, 3, 3)
    # ceil_mode: the last window would start in the right padding only, so it is dropped
    assert nn.MaxPool2d(2, stride=3, padding=1, ceil_mode=True)(x).shape == (1, 1, 2, 2)
    assert nn.MaxPool2d(3, stride=2, padding=1, dilation=2)(x).shape == (1, 1, 2, 2)
    assert nn.AvgPool2d((3, 1), stride=(1, 2))(x).shape == (1, 1, 3, 3)
    assert nn.AdaptiveAvgPool2d((None, 3))(x).shape == (1, 1, 5, 3)
    assert nn.AdaptiveAvgPool2d(7)(x).shape == (1, 1, 7, 7)


MAX_GRID = [  # kernel, stride, padding, dilation, ceil_mode, input (H, W)
    (2, None, 0, 1, False, (6, 6)),
    (3, 2, 1, 1, False, (7, 5)),
    (3, 2, 1, 1, True, (6, 7)),
    (2, 3, 1, 1, True, (5, 8)),
    ((3, 2), (2, 1), (1, 0), 1, False, (5, 6)),
    (3, 1, 1, 2, False, (6, 5)),
    (2, 2, 1, (2, 1), True, (7, 7)),
    (5, 1, 2, 1, True, (4, 3)),
    (1, 2, 0, 1, True, (6, 5)),
]


@pytest.mark.parametrize("k,s,p,d,ceil,hw", MAX_GRID)
def test_max_pool_reference_gradient_and_layout(k, s, p, d, ceil, hw):
    layer = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    args = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    x = testing.tie_free((2, 3) + hw, seed=1)
    testing.check_forward(layer, [x], lambda m, xs: ref.max_pool2d(xs[0], **args)[0], atol=0)
    y = layer(x)
    gy = testing.tie_free(y.shape, seed=2)
    np.testing.assert_allclose(layer.backward(gy), ref.max_pool2d_backward(x, gy, **args),
                               rtol=1e-6)
    testing.gradcheck(layer, [testing.tie_free((1, 2) + hw, seed=3)])
    testing.check_noncontiguous(layer, [x])
    np.testing.assert_array_equal(F.max_pool2d(x, k, s, p, d, ceil), y)


def test_max_pool_ties_first_maximum_wins_and_nan_propagates():
    pool = nn.MaxPool2d(2, stride=1)
    x = np.ones((1, 1, 3, 3), np.float32)
    pool(x)
    gx = pool.backward(np.ones((1, 1, 2, 2), np.float32))
    # every window's first element (row-major) takes the gradient
    np.testing.assert_array_equal(gx, [[[[1, 1, 0], [1, 1, 0], [0, 0, 0]]]])
    x[0, 0, 1, 1] = np.nan
    assert np.isnan(pool(x)).all()
    y = nn.MaxPool2d(2, padding=1)(-np.ones((1, 1, 2, 2), np.float32) * 5)
    np.testing.assert_array_equal(y, -5)   # padding never wins, it is -inf


def test_max_pool_windows_of_padding_only_give_minus_inf_and_no_gradient():
    """A window whose taps all fall in the padding (here width 1, dilation 2, padding 1: columns
    -1 and 1) is -inf, a constant, so it passes no gradient. PyTorch 2.13 also gives -inf but
    sends the gradient to an element outside the window; on the CPU that write can land outside
    the input (found by comparing random geometries: its backward corrupted the heap)."""
    pool = nn.MaxPool2d((1, 2), stride=(1, 2), padding=(0, 1), dilation=(1, 2))
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 1))
    y = pool(x)
    assert y.shape == (1, 2, 3, 1) and np.isneginf(y).all()
    np.testing.assert_array_equal(pool.backward(np.ones(y.shape)), np.zeros(x.shape))
    ceil = nn.MaxPool2d(2, stride=2, padding=1, dilation=2, ceil_mode=True)   # rows -1 and 1
    y = ceil(np.ones((1, 1, 1, 4)))
    assert np.isneginf(y).all()
    np.testing.assert_array_equal(ceil.backward(np.ones(y.shape)), np.zeros((1, 1, 1, 4)))


def test_max_pool_backward_is_deterministic_float64():
    pool = nn.MaxPool2d(3, stride=1, padding=1)
    x = np.random.default_rng(0).standard_normal((3, 4, 9, 9))
    gy = np.random.default_rng(1).standard_normal((3, 4, 9, 9))
    pool(x)
    first = pool.backward(gy)
    pool(x)
    np.testing.assert_array_equal(pool.backward(gy), first)
    assert first.dtype == np.float64


AVG_GRID = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, (H, W)
    (2, None, 0, False, True, None, (6, 6)),
    (3, 2, 1, False, True, None, (7, 5)),
    (3, 2, 1, False, False, None, (7, 5)),
    (3, 2, 1, True, True, None, (6, 6)),
    (3, 2, 1, True, False, None, (6, 6)),
    (2, 3, 1, True, True, None, (8, 5)),
    ((3, 2), (1, 2), (1, 1), True, False, None, (5, 7)),
    (3, 2, 1, False, True, 5, (5, 5)),
    (2, 1, 0, True, False, -3, (4, 3)),
]


@pytest.mark.parametrize("k,s,p,ceil,cip,div,hw", AVG_GRID)
def test_avg_pool_reference_gradient_and_layout(k, s, p, ceil, cip, div, hw):
    layer = nn.AvgPool2d(k, s, p, ceil, cip, div)
    x = testing.tie_free((2, 3) + hw, seed=4)
    testing.check_forward(layer, [x], lambda m, xs: ref.avg_pool2d(
        xs[0], k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div))
    testing.gradcheck(layer, [testing.tie_free((1, 2) + hw, seed=5)])
    testing.check_noncontiguous(layer, [x])
    np.testing.assert_array_equal(F.avg_pool2d(x, k, s, p, ceil, cip, div), layer(x))


LP_GRID = [  # norm_type, kernel, stride, ceil_mode, (H, W), signed input
    (2, 2, None, False, (6, 6), True),
    (2, 3, 2, True, (6, 7), True),
    (1, 2, 1, False, (4, 5), False),
    (3, (2, 3), (2, 1), False, (5, 6), False),
    (1.5, 3, 2, True, (7, 6), False),
]


@pytest.mark.parametrize("p,k,s,ceil,hw,signed", LP_GRID)
def test_lp_pool_reference_gradient_and_layout(p, k, s, ceil, hw, signed):
    layer = nn.LPPool2d(p, k, s, ceil)

    def data(shape, seed):
        x = testing.tie_free(shape, seed=seed)
        return x if signed else np.abs(x)

    x = data((2, 3) + hw, 6)
    testing.check_forward(layer, [x], lambda m, xs: ref.lp_pool2d(xs[0], p, k, s, ceil))
    testing.gradcheck(layer, [data((1, 2) + hw, 7)])
    testing.check_noncontiguous(layer, [x])
    np.testing.assert_array_equal(F.lp_pool2d(x, p, k, s, ceil), layer(x))


def test_lp_pool_is_the_window_power_sum_and_zero_windows_have_zero_gradient():
    x = np.abs(testing.tie_free((1, 2, 6, 6), seed=8, dtype=np.float64))
    for p in (1, 2, 3, 2.5):
        np.testing.assert_allclose(F.lp_pool2d(x, p, (2, 3), (2, 3)),
                                   ref.lp_window_sum(x, p, (2, 3), (2, 3)), rtol=1e-12)
    pool = nn.LPPool2d(2, 2)
    x = np.ones((1, 1, 4, 4), np.float32)
    x[:2, :, :2, :2] = 0.0      # one all-zero window
    y = pool(x)
    assert y[0, 0, 0, 0] == 0.0
    gx = pool.backward(np.ones_like(y))
    assert np.isfinite(gx).all()
    np.testing.assert_array_equal(gx[0, 0, :2, :2], 0.0)
    np.testing.assert_allclose(gx[0, 0, 2:, 2:], 0.5)   # d sqrt(sum x^2) / dx = x / y = 1 / 2


ADAPTIVE_GRID = [((5, 7), 3), ((5, 7), (2, None)), ((4, 4), (4, 4)), ((3, 5), (5, 2)),
                 ((7, 7), 1), ((6, 9), (None, 4))]


@pytest.mark.parametrize("hw,size", ADAPTIVE_GRID)
def test_adaptive_avg_pool_reference_gradient_and_layout(hw, size):
    layer = nn.AdaptiveAvgPool2d(size)
    x = testing.tie_free((2, 3) + hw, seed=9)
    testing.check_forward(layer, [x], lambda m, xs: ref.adaptive_avg_pool2d(xs[0], size))
    testing.gradcheck(layer, [testing.tie_free((1, 2) + hw, seed=10)])
    testing.check_noncontiguous(layer, [x])
    np.testing.assert_array_equal(F.adaptive_avg_pool2d(x, size), layer(x))


def test_global_avg_pool_keeps_four_axes_and_feeds_flatten():
    x = testing.tie_free((2, 5, 3, 4), seed=11)
    gap = nn.GlobalAvgPool2d()
    y = gap(x)
    assert y.shape == (2, 5, 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-6)
    testing.gradcheck(gap, [testing.tie_free((2, 2, 3, 3), seed=12)])
    model = nn.Sequential(nn.GlobalAvgPool2d(), nn.Flatten())
    assert model(x).shape == (2, 5)


PARALLEL_CASES = [lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda: nn.MaxPool2d(2),
                  lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
                  lambda: nn.LPPool2d(2, 2), lambda: nn.AdaptiveAvgPool2d((3, None)),
                  lambda: nn.GlobalAvgPool2d()]


@pytest.mark.parametrize("make", PARALLEL_CASES)
def test_parallel_path_matches_serial_path_exactly(make, monkeypatch):
    x = testing.tie_free((3, 5, 9, 8), seed=14)
    layer = make()
    y_serial = layer(x)
    gy = testing.tie_free(y_serial.shape, seed=15)
    gx_serial = layer.backward(gy)
    monkeypatch.setattr(pool_cpu, "SERIAL_BELOW", 0)   # every call now takes the prange driver
    layer = make()
    np.testing.assert_array_equal(layer(x), y_serial)
    np.testing.assert_array_equal(layer.backward(gy), gx_serial)
    if isinstance(layer, nn.MaxPool2d):
        np.testing.assert_array_equal(y_serial, ref.max_pool2d(
            x, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
            layer.ceil_mode)[0])


def test_float32_and_float64_agree():
    x64 = testing.tie_free((2, 3, 7, 7), seed=13, dtype=np.float64)
    x32 = x64.astype(np.float32)
    for layer in (nn.MaxPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
                  nn.LPPool2d(2, 3, 2), nn.AdaptiveAvgPool2d((3, 2))):
        y32, y64 = layer(x32), layer(x64)
        assert y32.dtype == np.float32 and y64.dtype == np.float64
        np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


def test_bad_hyper_parameters():
    with pytest.raises(ConfigError, match=r"MaxPool2d: padding must be at most half of "
                                          r"kernel_size, got padding=\(2, 2\), "
                                          r"kernel_size=\(3, 3\)"):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(ConfigError, match=r"MaxPool2d: stride must be >= 1, got \(0, 0\)"):
        nn.MaxPool2d(2, stride=0)
    with pytest.raises(ConfigError, match=r"AvgPool2d: kernel_size must be >= 1"):
        nn.AvgPool2d(0)
    with pytest.raises(ConfigError, match=r"MaxPool2d: dilation must be >= 1"):
        nn.MaxPool2d(2, dilation=0)
    with pytest.raises(ConfigError, match=r"MaxPool2d: padding must be >= 0"):
        nn.MaxPool2d(2, padding=-1)
    with pytest.raises(ConfigError, match="MaxPool2d: kernel_size must be an int or a tuple"):
        nn.MaxPool2d((2, 2, 2))
    with pytest.raises(ConfigError, match="MaxPool2d: return_indices=True is not supported"):
        nn.MaxPool2d(2, return_indices=True)
    with pytest.raises(ConfigError, match="AvgPool2d: divisor_override must be a non-zero"):
        nn.AvgPool2d(2, divisor_override=0)
    with pytest.raises(ConfigError, match="LPPool2d: norm_type must be a finite number > 0"):
        nn.LPPool2d(0, 2)
    with pytest.raises(ConfigError, match="LPPool2d: norm_type"):
        nn.LPPool2d(float("inf"), 2)
    with pytest.raises(ConfigError, match="AdaptiveAvgPool2d: output_size must be a positive"):
        nn.AdaptiveAvgPool2d(0)
    with pytest.raises(ConfigError, match="AdaptiveAvgPool2d: output_size"):
        nn.AdaptiveAvgPool2d((2, 2, 2))


def test_bad_input_shapes():
    with pytest.raises(ShapeError, match=r"\(MaxPool2d\): the pooling window \(3, 3\) .* larger "
                                         r"than the padded input; expected H >= 3 and W >= 3, "
                                         r"received \(1, 1, 2, 2\)"):
        nn.MaxPool2d(3, padding=1, dilation=2)(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ShapeError, match=r"\(AvgPool2d\).*larger than the padded input; "
                                         r"expected H >= 4 and W >= 2, received \(2, 3, 3, 5\)"):
        nn.AvgPool2d((4, 2))(np.zeros((2, 3, 3, 5), np.float32))
    with pytest.raises(ShapeError, match=r"\(LPPool2d\).*expected H >= 3"):
        nn.LPPool2d(2, 3)(np.zeros((1, 1, 2, 8), np.float32))
    for layer in (nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.GlobalAvgPool2d()):
        with pytest.raises(ShapeError, match=rf"\({layer.type_name}\): input \(N, C, H, W\) has "
                                             r"the wrong number of axes; expected 4 axes, "
                                             r"received shape \(2, 4, 4\)"):
            layer(np.zeros((2, 4, 4), np.float32))


def test_reprs_and_flops():
    assert repr(nn.MaxPool2d(2)) == ("MaxPool2d(kernel_size=(2, 2), stride=(2, 2), "
                                     "padding=(0, 0), dilation=(1, 1), ceil_mode=False)")
    assert "count_include_pad=False" in repr(nn.AvgPool2d(2, count_include_pad=False))
    assert repr(nn.LPPool2d(2, 3)).startswith("LPPool2d(norm_type=2, kernel_size=(3, 3)")
    assert repr(nn.AdaptiveAvgPool2d((2, None))) == "AdaptiveAvgPool2d(output_size=(2, None))"
    assert nn.MaxPool2d(2).flops([(1, 3, 4, 4)], [(1, 3, 2, 2)]) == 12 * 4
