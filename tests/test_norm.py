"""BatchNorm1d / 2d / 3d: loop references, running statistics, gradients, bad input, state dicts."""

import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, InputError, ShapeError, nn, testing
from minicnn import functional as F

from .reference import norm as ref

CASES = [(nn.BatchNorm1d, (5, 3)), (nn.BatchNorm1d, (3, 2, 4)), (nn.BatchNorm2d, (2, 3, 3, 4)),
         (nn.BatchNorm3d, (2, 2, 2, 3, 2))]
IDS = ["1d-NC", "1d-NCL", "2d", "3d"]


def _layer(cls, channels, seed=0, **kwargs):
    layer = cls(channels, **kwargs)
    rng = np.random.default_rng(seed)
    if layer.affine:
        layer.weight.data[...] = rng.uniform(0.5, 1.5, channels)
        layer.bias.data[...] = rng.uniform(-1, 1, channels)
    if layer.track_running_stats:
        layer.running_mean[...] = rng.uniform(-1, 1, channels)
        layer.running_var[...] = rng.uniform(0.5, 2, channels)
    return layer


def _data(shape, seed=0, loc=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    # a different mean and spread per channel
    shift = loc + rng.uniform(-2, 2, (1, shape[1]) + (1,) * (len(shape) - 2))
    return (shift + scale * rng.standard_normal(shape)).astype(np.float32)


def _affine(layer):
    if not layer.affine:
        return None, None
    return layer.weight.data, layer.bias.data


@pytest.mark.parametrize("cls,shape", CASES, ids=IDS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_train_forward_matches_reference(cls, shape, affine, eps):
    layer = _layer(cls, shape[1], affine=affine, eps=eps)
    x = _data(shape, seed=1)
    testing.check_forward(layer, [x], lambda m, xs: ref.batch_norm_train(xs[0], *_affine(m), eps))


@pytest.mark.parametrize("cls,shape", CASES, ids=IDS)
@pytest.mark.parametrize("affine", [True, False])
def test_eval_forward_uses_running_stats(cls, shape, affine):
    layer = _layer(cls, shape[1], affine=affine, eps=1e-3).eval()
    x = _data(shape, seed=2)
    rm, rv = layer.running_mean.copy(), layer.running_var.copy()
    testing.check_forward(layer, [x], lambda m, xs: ref.batch_norm_eval(xs[0], rm, rv,
                                                                        *_affine(m), 1e-3))
    np.testing.assert_array_equal(layer.running_mean, rm)    # eval leaves the statistics alone
    np.testing.assert_array_equal(layer.running_var, rv)
    assert int(layer.num_batches_tracked) == 0


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_stats_after_several_steps(momentum):
    layer = nn.BatchNorm2d(3, momentum=momentum)
    rm, rv = [0.0] * 3, [1.0] * 3
    for step in range(1, 5):
        x = _data((2, 3, 3, 2), seed=10 + step, loc=step)
        layer(x)
        factor = 1.0 / step if momentum is None else momentum
        rm, rv = ref.running_update(rm, rv, x, factor)
        np.testing.assert_allclose(layer.running_mean, rm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.running_var, rv, rtol=1e-5, atol=1e-6)
        assert layer.num_batches_tracked.shape == () and int(layer.num_batches_tracked) == step
    assert layer.running_mean.dtype == np.float32
    # eval now uses exactly these statistics
    layer.eval()
    x = _data((2, 3, 3, 2), seed=99)
    np.testing.assert_allclose(layer(x), ref.batch_norm_eval(x, rm, rv, None, None, 1e-5),
                               rtol=1e-4, atol=1e-5)


def test_running_stats_updated_in_place():
    layer = nn.BatchNorm1d(4)
    mean_array, var_array = layer.running_mean, layer.running_var
    layer(_data((6, 4)))
    assert layer.running_mean is mean_array and layer.running_var is var_array
    assert not np.allclose(mean_array, 0.0) and not np.allclose(var_array, 1.0)


def test_no_tracking_uses_batch_stats_in_eval_and_has_no_buffers():
    layer = _layer(nn.BatchNorm2d, 3, track_running_stats=False)
    assert [k for k, _ in layer.named_buffers()] == []
    assert list(layer.state_dict()) == ["weight", "bias"]
    x = _data((2, 3, 2, 2), seed=4)
    train_out = layer(x)
    layer.eval()
    testing.check_forward(layer, [x], lambda m, xs: ref.batch_norm_train(xs[0], *_affine(m), 1e-5))
    np.testing.assert_allclose(layer(x), train_out, rtol=1e-6, atol=1e-6)
    testing.gradcheck(layer, [testing.tie_free((3, 3, 2, 2), seed=5)])   # through batch stats


def test_float32_large_mean_is_accurate():
    # |mean| >> std: a one-pass float32 variance would lose most digits here
    x = _data((8, 2, 16, 16), seed=6, loc=3000.0, scale=0.5)
    layer = nn.BatchNorm2d(2)
    y = layer(x)
    want = ref.batch_norm_train(x, None, None, 1e-5)
    np.testing.assert_allclose(y, want, atol=2e-3)
    mean, _, unbiased = ref.batch_stats(x)
    np.testing.assert_allclose(layer.running_var, [0.9 + 0.1 * v for v in unbiased], rtol=1e-4)
    np.testing.assert_allclose(layer.running_mean, [0.1 * m for m in mean], rtol=1e-6)


@pytest.mark.parametrize("cls,shape", CASES, ids=IDS)
def test_gradcheck_train(cls, shape):
    layer = _layer(cls, shape[1], seed=3)
    testing.gradcheck(layer, [testing.tie_free(shape, seed=7, high=2.0)], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls,shape", CASES[:3], ids=IDS[:3])
def test_gradcheck_eval(cls, shape):
    layer = _layer(cls, shape[1], seed=4).eval()
    testing.gradcheck(layer, [testing.tie_free(shape, seed=8, high=2.0)])


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 2)])
def test_gradcheck_without_affine_and_frozen(shape):
    x = testing.tie_free(shape, seed=9, high=2.0)
    testing.gradcheck(nn.BatchNorm1d(3, affine=False), [x], atol=1e-5, rtol=1e-4)
    testing.gradcheck(nn.BatchNorm1d(3, affine=False).eval(), [x])
    frozen = _layer(nn.BatchNorm1d, 3).freeze("weight")
    testing.gradcheck(frozen, [x], atol=1e-5, rtol=1e-4)
    frozen(x)
    frozen.backward(np.ones_like(x))
    assert frozen.weight.grad is None and frozen.bias.grad is not None


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 4)])
def test_parameter_gradients_without_input_gradient(shape):
    layer = _layer(nn.BatchNorm1d, 3, seed=8)
    x = _data(shape, seed=21)
    gy = _data(shape, seed=22)
    layer(x)
    assert layer.backward(gy, input_grad=False) is None
    gw, gb = layer.weight.grad.copy(), layer.bias.grad.copy()
    layer(x)
    layer.backward(gy)
    np.testing.assert_array_equal(gw, layer.weight.grad)
    np.testing.assert_array_equal(gb, layer.bias.grad)


def test_many_channels_span_several_blocks():
    # (N, C) input runs blocks of 64 channels per task: 150 channels make a partial last block
    layer = _layer(nn.BatchNorm1d, 150, seed=9)
    x = _data((4, 150), seed=23)
    testing.check_forward(layer, [x], lambda m, xs: ref.batch_norm_train(xs[0], *_affine(m), 1e-5))
    testing.gradcheck(layer, [testing.tie_free((4, 150), seed=24)], atol=1e-5, rtol=1e-4,
                      max_elements=40)
    layer.eval()
    rm, rv = layer.running_mean.copy(), layer.running_var.copy()
    testing.check_forward(layer, [x], lambda m, xs: ref.batch_norm_eval(xs[0], rm, rv,
                                                                        *_affine(m), 1e-5))


def test_train_backward_matches_closed_form():
    layer = _layer(nn.BatchNorm2d, 2, seed=5)
    x = _data((3, 2, 2, 3), seed=11).astype(np.float64)
    layer.double()
    gy = np.random.default_rng(12).standard_normal(x.shape)
    layer(x)
    gx = layer.backward(gy)
    axes = (0, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + 1e-5)
    w = layer.weight.data.reshape(1, -1, 1, 1)
    want = w / np.sqrt(var + 1e-5) * (gy - gy.mean(axis=axes, keepdims=True)
                                      - xhat * (gy * xhat).mean(axis=axes, keepdims=True))
    np.testing.assert_allclose(gx, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, (gy * xhat).sum(axis=axes), rtol=1e-10)
    np.testing.assert_allclose(layer.bias.grad, gy.sum(axis=axes), rtol=1e-10)


def test_eval_backward_is_affine_only():
    layer = _layer(nn.BatchNorm1d, 3, seed=6).eval()
    x = _data((4, 3), seed=13)
    layer(x)
    gy = np.random.default_rng(14).standard_normal(x.shape).astype(np.float32)
    gx = layer.backward(gy)
    k = layer.weight.data / np.sqrt(layer.running_var + 1e-5)
    np.testing.assert_allclose(gx, gy * k, rtol=1e-6)


def test_single_value_per_channel_in_training_is_an_error():
    with pytest.raises(InputError, match="BatchNorm1d: Expected more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.ones((1, 3), np.float32))
    with pytest.raises(InputError, match="more than 1 value per channel when training"):
        nn.BatchNorm2d(3)(np.ones((1, 3, 1, 1), np.float32))
    layer = nn.BatchNorm1d(3).eval()      # eval uses the running stats: fine
    np.testing.assert_allclose(layer(np.full((1, 3), 2.0, np.float32)), 2.0 / np.sqrt(1 + 1e-5),
                               rtol=1e-6)
    assert np.all(nn.BatchNorm1d(3)(np.ones((1, 3, 2), np.float32)) == 0.0)   # N * L = 2 is fine


def test_bad_input_shapes():
    with pytest.raises(ShapeError, match=r"BatchNorm2d.*channel.*expected 4 channels, received 3"):
        nn.BatchNorm2d(4)(np.ones((2, 3, 2, 2), np.float32))
    with pytest.raises(ShapeError, match=r"BatchNorm2d.*\(N, C, H, W\).*shape \(2, 4\)"):
        nn.BatchNorm2d(4)(np.ones((2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"BatchNorm1d.*\(N, 4\) or \(N, 4, L\).*2, 4, 2, 2"):
        nn.BatchNorm1d(4)(np.ones((2, 4, 2, 2), np.float32))
    with pytest.raises(ShapeError, match=r"BatchNorm1d.*expected 4 channels, received 5"):
        nn.BatchNorm1d(4)(np.ones((2, 5), np.float32))
    with pytest.raises(ShapeError, match=r"BatchNorm3d"):
        nn.BatchNorm3d(4)(np.ones((2, 4, 2, 2), np.float32))


@pytest.mark.parametrize("kwargs,match", [
    ({"num_features": 0}, "num_features must be a positive integer"),
    ({"num_features": 2.5}, "num_features"),
    ({"num_features": 3, "eps": -1e-5}, "eps must be a number >= 0"),
    ({"num_features": 3, "eps": "1"}, "eps"),
    ({"num_features": 3, "momentum": 1.5}, r"momentum must be in \[0, 1\]"),
    ({"num_features": 3, "momentum": -0.1}, "momentum"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match="BatchNorm2d: " + match):
        nn.BatchNorm2d(**kwargs)


def test_noncontiguous_input():
    layer = _layer(nn.BatchNorm2d, 3)
    testing.check_noncontiguous(layer, [_data((2, 3, 4, 3), seed=15)], atol=1e-6)
    testing.check_noncontiguous(layer.eval(), [_data((2, 3, 4, 3), seed=16)])


def test_functional_matches_layer():
    x = _data((4, 3, 2, 2), seed=17)
    layer = _layer(nn.BatchNorm2d, 3, seed=7)
    rm, rv = layer.running_mean.copy(), layer.running_var.copy()
    w, b = layer.weight.data.copy(), layer.bias.data.copy()
    # eval
    np.testing.assert_array_equal(F.batch_norm(x, rm, rv, w, b, training=False),
                                  layer.eval()(x))
    # training: the given running statistics are updated in place, as the layer's are
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2)
    layer.momentum = 0.2
    np.testing.assert_array_equal(y, layer.train()(x))
    np.testing.assert_allclose(rm, layer.running_mean, rtol=1e-6)
    np.testing.assert_allclose(rv, layer.running_var, rtol=1e-6)
    # no statistics, no affine
    np.testing.assert_allclose(F.batch_norm(x, None, None, training=True),
                               ref.batch_norm_train(x, None, None, 1e-5), atol=1e-5)
    # float64 running stats with float32 data are still updated in place
    rm64 = np.zeros(3)
    F.batch_norm(x, rm64, np.ones(3), training=True)
    np.testing.assert_allclose(rm64, [0.1 * m for m in ref.batch_stats(x)[0]], rtol=1e-5)
    with pytest.raises(ConfigError, match="required when training=False"):
        F.batch_norm(x, None, None, training=False)


def test_state_dict_keys_and_round_trip():
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked"]
    x = _data((2, 2, 4, 4), seed=18)
    for _ in range(3):
        model(x)
    state = model.state_dict()
    assert state["1.num_batches_tracked"].shape == () and int(state["1.num_batches_tracked"]) == 3
    assert state["1.num_batches_tracked"].dtype == np.int64
    other = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
    other.load_state_dict(state)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    np.testing.assert_array_equal(other.eval()(x), model.eval()(x))
    model.double()
    assert model.state_dict()["1.running_var"].dtype == np.float64
    assert model.state_dict()["1.num_batches_tracked"].dtype == np.int64


def test_deterministic_and_repr():
    layer = _layer(nn.BatchNorm2d, 4)
    x = _data((3, 4, 5, 5), seed=19)
    gy = _data((3, 4, 5, 5), seed=20)
    y1 = layer(x).copy()
    g1 = layer.backward(gy).copy()
    w1 = layer.weight.grad.copy()
    y2 = layer(x)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1, layer.backward(gy))
    np.testing.assert_array_equal(w1, layer.weight.grad)
    assert repr(nn.BatchNorm1d(3)) == ("BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, "
                                       "track_running_stats=True)")
