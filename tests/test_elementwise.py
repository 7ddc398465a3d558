"""Activations, Linear, Flatten, Add and Concat: references, gradients, bad input."""

import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, InputError, ShapeError, nn, testing
from minicnn import functional as F

from .reference import elementwise as ref

ACTIVATIONS = [(nn.ReLU(), 0.0), (nn.LeakyReLU(0.2), 0.2), (nn.Sigmoid(), 0.0), (nn.Tanh(), 0.0),
               (nn.ELU(0.7), 0.7), (nn.Identity(), 0.0)]


@pytest.mark.parametrize("layer,alpha", ACTIVATIONS, ids=lambda v: type(v).__name__)
def test_activation_forward_backward(layer, alpha):
    x = testing.tie_free((2, 3, 4, 5), seed=1, high=3.0)
    testing.check_forward(layer, [x], lambda m, xs: ref.activation(layer.type_name, xs[0], alpha))
    testing.gradcheck(layer, [testing.tie_free((2, 3, 4), seed=2, high=3.0)])
    testing.check_noncontiguous(layer, [x])


def test_activation_extremes_stay_finite():
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], np.float32)
    np.testing.assert_allclose(F.sigmoid(x), [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-30)
    np.testing.assert_allclose(F.tanh(x), [[-1, -1, 0, 1, 1]])
    assert np.isfinite(F.elu(x)).all()


def test_relu_gradient_at_zero_is_zero_as_pytorch():
    relu = nn.ReLU()
    relu(np.array([[0.0, 1.0]], np.float32))
    np.testing.assert_array_equal(relu.backward(np.ones((1, 2), np.float32)), [[0.0, 1.0]])


def test_linear_reference_gradcheck_and_functional():
    minicnn.manual_seed(0)
    layer = nn.Linear(5, 3)
    x = testing.tie_free((4, 5), seed=3)
    testing.check_forward(layer, [x], lambda m, xs: ref.linear(xs[0], m.weight.data, m.bias.data))
    testing.gradcheck(layer, [x])
    np.testing.assert_allclose(F.linear(x, layer.weight.data, layer.bias.data), layer(x),
                               rtol=1e-6)
    no_bias = nn.Linear(5, 3, bias=False)
    testing.gradcheck(no_bias, [x])
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]


def test_linear_over_leading_axes_as_pytorch():
    """(N, *, in_features) in, (N, *, out_features) out: each leading position is one row."""
    minicnn.manual_seed(0)
    layer = nn.Linear(4, 3)
    x = testing.tie_free((2, 3, 5, 4), seed=4)
    testing.check_forward(layer, [x], lambda m, xs: ref.linear(xs[0].reshape(-1, 4), m.weight.data,
                                                               m.bias.data).reshape(2, 3, 5, 3))
    testing.gradcheck(layer, [testing.tie_free((2, 3, 4), seed=5)])
    testing.gradcheck(nn.Linear(4, 2, bias=False), [testing.tie_free((1, 2, 2, 4), seed=6)])
    summary = layer.summary((3, 5, 4))
    assert "(1, 3, 5, 3)" in str(summary) and summary.flops == 2 * 15 * 4 * 3


def test_linear_init_bounds_follow_pytorch():
    minicnn.manual_seed(1)
    layer = nn.Linear(400, 50)
    bound = 1 / np.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound   # really uniform over the whole range
    assert layer.weight.data.dtype == np.float32


def test_linear_bad_input():
    layer = nn.Linear(5, 3)
    with pytest.raises(ShapeError, match=r"Linear.*expected \(N, \*, 5\), received \(2, 4\)"):
        layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"Flatten.*expected \(N, \*, 5\), received \(2, 5, 1\)"):
        layer(np.zeros((2, 5, 1), np.float32))    # an image batch needs a Flatten first
    with pytest.raises(ShapeError, match=r"received \(5,\)"):
        layer(np.zeros(5, np.float32))            # no batch axis
    with pytest.raises(InputError, match=r"expected float32 data, received dtype int64"):
        layer(np.zeros((2, 5), np.int64))
    with pytest.raises(InputError, match="expected float32 to match the parameters, received "
                                         "float64"):
        layer(np.zeros((2, 5), np.float64))
    with pytest.raises(InputError, match="empty batch"):
        layer(np.zeros((0, 5), np.float32))
    with pytest.raises(ConfigError, match="Linear: in_features must be a positive integer"):
        nn.Linear(0, 3)


def test_flatten_shapes_and_gradient():
    x = testing.tie_free((2, 3, 4, 5), seed=4)
    np.testing.assert_array_equal(F.flatten(x), x.reshape(2, 60))
    np.testing.assert_array_equal(F.flatten(x, 2), x.reshape(2, 3, 20))
    np.testing.assert_array_equal(F.flatten(x, 1, 2), x.reshape(2, 12, 5))
    testing.gradcheck(nn.Flatten(), [x])
    with pytest.raises(ShapeError, match="Flatten"):
        nn.Flatten(3, 1)(x)


def test_add_and_concat():
    a, b, c = (testing.tie_free((2, 3, 2, 2), seed=s) for s in (5, 6, 7))
    np.testing.assert_allclose(F.add(a, b, c), a + b + c, rtol=1e-6)
    np.testing.assert_array_equal(F.concat([a, b], dim=1), np.concatenate([a, b], axis=1))
    np.testing.assert_array_equal(F.concat([a, c], dim=-1), np.concatenate([a, c], axis=-1))
    testing.gradcheck(nn.Add(), [a, b, c])
    testing.gradcheck(nn.Concat(dim=1), [a, testing.tie_free((2, 1, 2, 2), seed=8)])
    with pytest.raises(ShapeError, match=r"Add.*1x1 conv projection.*received \(2, 4, 2, 2\)"):
        nn.Add()([a, np.zeros((2, 4, 2, 2), np.float32)])
    with pytest.raises(ShapeError, match="Concat"):
        nn.Concat(1)([a, np.zeros((2, 1, 3, 2), np.float32)])


def test_non_finite_checks_name_the_node():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    model.check_finite = True
    with pytest.raises(minicnn.NonFiniteError, match="input 0 contains NaN"):
        model(np.array([[np.nan, 1.0]], np.float32))
    model[0].weight.data[0, 0] = np.inf
    with pytest.raises(minicnn.NonFiniteError, match="node '0' \\(Linear\\)"):
        model(np.array([[1.0, 1.0]], np.float32))


def test_nan_propagates_through_activations_as_in_pytorch():
    x = np.array([[np.nan, 1.0]], np.float32)
    for f in (F.relu, F.leaky_relu, F.sigmoid, F.tanh, F.elu):
        assert np.isnan(f(x)[0, 0]), f.__name__
