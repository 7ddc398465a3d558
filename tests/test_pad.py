"""ConstantPad2d / ZeroPad2d: loop reference, gradients, -inf fill, cropping, bad input, functional.

The pad family is not in ``BUILTIN_PLUGINS`` yet, so these tests register it on a fresh registry.
"""

import numpy as np
import pytest

from minicnn import ConfigError, ShapeError, testing
from minicnn.layers import pad as pad_family
from minicnn.layers import pad_cpu
from minicnn.layers.pad import ConstantPad2d, ZeroPad2d
from minicnn.registry import Registry, set_registry

from .reference import pad as ref


@pytest.fixture(autouse=True)
def pad_registry():
    registry = Registry(load_entry_points=False)
    if "ConstantPad2d" not in registry.layers:
        registry.register(pad_family, name="minicnn.layers.pad")
        registry.register(pad_cpu, name="minicnn.layers.pad_cpu")
    previous = set_registry(registry)
    yield registry
    set_registry(previous)


GRID = [0, 2, (1, 0, 0, 1), (0, 2, 3, 1), (-1, 2, 1, -2), (2, -1, -1, 0)]


@pytest.mark.parametrize("padding", GRID, ids=str)
@pytest.mark.parametrize("value", [0.0, 1.5, -np.inf])
def test_forward_matches_loop_reference(padding, value):
    layer = ConstantPad2d(padding, value)
    x = testing.tie_free((2, 3, 4, 5), seed=1)
    if np.isfinite(value):
        testing.check_forward(layer, [x], lambda m, xs: ref.constant_pad2d(xs[0], padding, value))
        testing.check_noncontiguous(layer, [x])
    else:   # testing's closeness check takes inf - inf for a difference: compare exactly instead
        np.testing.assert_array_equal(layer(x), ref.constant_pad2d(x, padding, value))
        np.testing.assert_array_equal(layer(np.asfortranarray(x)), layer(x))


def test_three_axis_input_and_float64():
    layer = ConstantPad2d((1, 2, 0, 1), -2.0)
    x = testing.tie_free((3, 4, 2), seed=2, dtype=np.float64)
    y = layer(x)
    assert y.dtype == np.float64 and y.shape == (3, 5, 5)
    np.testing.assert_array_equal(y, ref.constant_pad2d(x, (1, 2, 0, 1), -2.0))


@pytest.mark.parametrize("padding", [(1, 2, 0, 3), (-1, 1, 2, -1)], ids=str)
def test_gradcheck(padding):
    testing.gradcheck(ConstantPad2d(padding, 0.7), [testing.tie_free((2, 2, 4, 3), seed=3)])


def test_backward_sums_nothing_and_crops_to_zero():
    layer = ConstantPad2d((-1, 0, 1, 0), 9.0)      # crop one column on the left, one row on top
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    y = layer(x)
    np.testing.assert_array_equal(y[0, 0], [[9, 9], [1, 2], [4, 5]])
    gx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(gx[0, 0], [[0, 1, 1], [0, 1, 1]])


def test_zero_pad_and_max_pool_padding_semantics():
    x = testing.tie_free((1, 2, 3, 3), seed=4)
    np.testing.assert_array_equal(ZeroPad2d(1)(x), np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))))
    y = ConstantPad2d((0, 1, 0, 1), -np.inf)(x)     # TensorFlow's "same" 2x2 stride-1 max pool
    assert np.isneginf(y[:, :, -1, :]).all() and np.isneginf(y[:, :, :, -1]).all()
    assert ZeroPad2d((1, 2, 3, 4)).config() == {"padding": (1, 2, 3, 4)}


def test_functional_matches_layer():
    x = testing.tie_free((2, 3, 4, 4), seed=5)
    np.testing.assert_array_equal(pad_family.pad(x, (1, 0, 2, 1), value=3.0),
                                  ConstantPad2d((1, 0, 2, 1), 3.0)(x))
    np.testing.assert_array_equal(pad_family.pad(x, (1, 2)), ZeroPad2d((1, 2, 0, 0))(x))
    with pytest.raises(ConfigError, match="only mode='constant'"):
        pad_family.pad(x, (1, 1), mode="reflect")


def test_bad_input_and_bad_hyper_parameters():
    with pytest.raises(ShapeError, match=r"ConstantPad2d.*expected \(N, C, H, W\) or \(C, H, W\), "
                                         r"received shape \(2, 3\)"):
        ConstantPad2d(1, 0.0)(np.zeros((2, 3), np.float32))
    with pytest.raises(ShapeError, match=r"crops the input away; expected H > 4"):
        ConstantPad2d((0, 0, -2, -2), 0.0)(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ConfigError, match="ConstantPad2d: padding must be"):
        ConstantPad2d((1, 2, 3), 0.0)
    with pytest.raises(ConfigError, match="ZeroPad2d: padding must be"):
        ZeroPad2d(1.5)
    with pytest.raises(ConfigError, match="value must be a number"):
        ConstantPad2d(1, float("nan"))
