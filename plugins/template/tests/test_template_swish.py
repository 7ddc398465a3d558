"""Swish: forward against a loop reference, float64 gradients, bad inputs, layouts, determinism,
the functional form, model files, and minicnn's conformance suite."""

import math
import re

import minicnn
import numpy as np
import pytest
from minicnn import ConfigError, ShapeError, conformance, testing
from minicnn.registry import Registry, set_registry

from minicnn_swish import Swish, plugin, swish


@pytest.fixture(autouse=True)
def registry():
    """A fresh registry (built-ins, no entry points) with the plugin registered, made current."""
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="swish")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def loop_reference(layer, inputs):
    """y[n, c, ...] = x * sigmoid(beta[c] x), one element at a time, float64."""
    (x,) = inputs
    x = np.asarray(x, np.float64)
    beta = np.asarray(layer.beta.data, np.float64)
    y = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        v = float(x[index])
        y[index] = v / (1.0 + math.exp(-float(beta[index[1]]) * v))
    return [y]


SHAPES = [(2, 3), (2, 3, 5), (2, 3, 4, 4), (1, 3, 2, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_the_loop_reference(shape):
    layer = Swish(3, beta=(0.5, 1.0, 2.5))
    x = testing.tie_free(shape, seed=1, high=4.0)
    testing.check_forward(layer, [x], loop_reference)


def test_known_values_and_silu():
    y = Swish(1)(np.array([[0.0], [1.0], [-1.0], [40.0], [-40.0]], np.float32))
    want = [0.0, 1 / (1 + math.exp(-1)), -1 / (1 + math.exp(1)), 40.0, -40 * math.exp(-40)]
    np.testing.assert_allclose(y[:, 0], want, rtol=1e-6, atol=1e-30)
    x = np.array([[-3.0, 0.5]], np.float32).reshape(1, 1, 2)
    np.testing.assert_allclose(swish(x), x / (1 + np.exp(-x)), rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 2), (2, 2, 3, 3)])
def test_gradcheck_float64(shape):
    layer = Swish(2, beta=(0.7, 1.6))
    testing.gradcheck(layer, [testing.tie_free(shape, seed=2, high=3.0)])


def test_frozen_beta_gets_no_gradient_and_input_gradient_is_right():
    layer = Swish(2, beta=1.3, learnable=False)
    assert not layer.beta.requires_grad
    testing.gradcheck(layer, [testing.tie_free((2, 2, 3), seed=3)])
    layer(testing.tie_free((2, 2, 3), seed=3))
    layer.backward(np.ones((2, 2, 3), np.float32))
    assert layer.beta.grad is None


def test_beta_gradient_by_hand():
    """dy/dbeta_c = sum over n and positions of gy x^2 s (1 - s)."""
    layer = Swish(2, beta=(0.5, 2.0)).double()
    x = testing.tie_free((3, 2, 4), seed=4, dtype=np.float64)
    gy = testing.tie_free((3, 2, 4), seed=5, dtype=np.float64)
    layer(x)
    layer.backward(gy)
    for c, b in enumerate((0.5, 2.0)):
        v = x[:, c]
        s = 1 / (1 + np.exp(-b * v))
        np.testing.assert_allclose(layer.beta.grad[c], np.sum(gy[:, c] * v * v * s * (1 - s)),
                                   rtol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_features=0), "Swish: num_features must be a positive integer, got 0"),
    (dict(num_features=True), "Swish: num_features must be a positive integer"),
    (dict(num_features=3, beta=(1.0, 2.0)), "Swish: beta must be a number or 3 numbers"),
    (dict(num_features=2, beta=float("inf")), "Swish: beta must be finite"),
])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Swish(**kwargs)


@pytest.mark.parametrize("shape", [(2, 4, 5), (6,)])
def test_bad_input_shapes_name_the_layer(shape):
    with pytest.raises(ShapeError, match=r"\(Swish\): input channels .*expected \(N, 3, \*\), "
                                         r"received shape " + re.escape(str(shape))):
        Swish(3)(np.ones(shape, np.float32))


def test_noncontiguous_inputs():
    x = testing.tie_free((2, 3, 4, 5), seed=6)
    testing.check_noncontiguous(Swish(3, beta=(0.5, 1, 2)), [x])
    testing.check_noncontiguous(Swish(5), [np.ascontiguousarray(x.transpose(0, 3, 1, 2))])


def test_repeated_runs_are_bit_identical_on_a_threaded_size():
    layer = Swish(16, beta=np.linspace(0.5, 2, 16))
    x = testing.tie_free((8, 16, 32, 32), seed=7)
    gy = testing.tie_free((8, 16, 32, 32), seed=8)
    first = (layer(x).copy(), layer.backward(gy).copy(), layer.beta.grad.copy())
    second = (layer(x), layer.backward(gy), layer.beta.grad)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


def test_functional_form_matches_the_layer():
    x = testing.tie_free((2, 3, 4), seed=9)
    beta = np.array([0.25, 1.0, 3.0])
    np.testing.assert_array_equal(swish(x, beta), Swish(3, beta=beta, learnable=False)(x))
    np.testing.assert_allclose(swish(x.astype(np.float64), beta),
                               loop_reference(Swish(3, beta=beta), [x])[0], rtol=1e-12)
    with pytest.raises(ShapeError, match="swish: the input must be"):
        swish(np.ones(3, np.float32))


def test_trains_and_round_trips_through_a_model_file(tmp_path):
    minicnn.manual_seed(0)
    model = minicnn.Sequential(minicnn.nn.Linear(4, 3), Swish(3))
    x = testing.tie_free((5, 4), seed=10)
    model(x)
    model.backward(np.ones((5, 3), np.float32))
    assert np.abs(model[1].beta.grad).sum() > 0
    minicnn.save(model, tmp_path / "m.mcnn")
    back = minicnn.load(tmp_path / "m.mcnn")
    assert isinstance(back[1], Swish) and back[1].config() == model[1].config()
    np.testing.assert_array_equal(back(x), model(x))


def test_conformance_suite_passes(registry):
    report = conformance.check_plugin("swish", registry)
    (layer,) = report.layers
    assert layer.type_name == "Swish" and layer.cases_from == "7 (class)"
    assert layer.failed == [], report.format()
    assert layer.not_checked in ([], ["cuda"])         # cuda: when there is no GPU (simulator)
    assert not any(layer.partial(c) for c in conformance.CHECKS)
