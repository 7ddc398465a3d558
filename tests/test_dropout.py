"""Dropout, Dropout1d, Dropout2d: mask statistics, scale, randomness, gradients, eval, bad input."""

import copy

import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, ShapeError, nn, testing
from minicnn import functional as F

from .reference import dropout as ref


def _expected(layer, x, rng, mask_shape=None):
    """What the layer must output given its generator's state ``rng``: one 64-bit seed drawn from
    it, then the reference's hashed mask (rounded to x's dtype as the kernel's output is)."""
    seed = copy.deepcopy(rng).integers(0, 2 ** 64, dtype=np.uint64)
    out = ref.dropout(x, layer.p, seed, x.shape if mask_shape is None else mask_shape)
    return out.astype(x.dtype)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_mask_statistics_and_exact_scale(p):
    layer = nn.Dropout(p)
    x = np.random.default_rng(0).uniform(0.5, 2.0, (400, 500)).astype(np.float32)
    y = layer(x)
    kept = y != 0
    # 200,000 draws: the kept fraction's standard deviation is below 0.0012
    assert abs(kept.mean() - (1 - p)) < 0.006
    # neighbours, rows and consecutive calls are independent: pairs kept at the rate (1 - p)^2
    assert abs((kept[:, 1:] & kept[:, :-1]).mean() - (1 - p) ** 2) < 0.006
    assert abs((kept[1:] & kept[:-1]).mean() - (1 - p) ** 2) < 0.006
    assert abs((kept & (layer(x) != 0)).mean() - (1 - p) ** 2) < 0.006
    want = (x[kept].astype(np.float64) / (1 - p)).astype(np.float32)
    np.testing.assert_array_equal(y[kept], want)
    np.testing.assert_allclose(y[kept] / x[kept], 1 / (1 - p), rtol=1e-6)


def test_output_is_the_mask_drawn_from_layer_rng():
    for dtype in (np.float32, np.float64):
        layer = nn.Dropout(0.4)
        x = testing.tie_free((3, 4, 5), seed=1, dtype=dtype)
        rng = copy.deepcopy(layer.rng)
        np.testing.assert_array_equal(layer(x), _expected(layer, x, rng))


def test_consecutive_calls_draw_different_masks():
    layer = nn.Dropout(0.5)
    x = np.ones((50, 40), np.float32)
    a = layer(x).copy()
    b = layer(x)
    assert not np.array_equal(a, b)
    # two layers built one after the other have independent streams
    assert not np.array_equal(nn.Dropout(0.5)(x), nn.Dropout(0.5)(x))


def test_reproducible_from_manual_seed():
    x = np.ones((30, 30), np.float32)
    minicnn.manual_seed(123)
    a = nn.Dropout(0.5)(x)
    fa = F.dropout(x, 0.5)
    minicnn.manual_seed(123)
    b = nn.Dropout(0.5)(x)
    fb = F.dropout(x, 0.5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(a, fa)


def test_backward_uses_the_forward_mask():
    layer = nn.Dropout(0.3)
    x = testing.tie_free((6, 7), seed=2)
    y = layer(x)
    gy = testing.tie_free((6, 7), seed=3)
    gx = layer.backward(gy)
    kept = y != 0
    np.testing.assert_array_equal(gx != 0, kept)
    np.testing.assert_array_equal(gx[kept], (gy[kept].astype(np.float64) / 0.7).astype(np.float32))
    # backward twice gives the same (no new draw)
    np.testing.assert_array_equal(layer.backward(gy), gx)


@pytest.mark.parametrize("cls,shape", [(nn.Dropout, (3, 4, 2)), (nn.Dropout1d, (3, 4, 3)),
                                       (nn.Dropout2d, (2, 3, 2, 2))])
def test_gradcheck_train_and_eval(cls, shape):
    x = testing.tie_free(shape, seed=4)
    layer = cls(0.4)
    testing.gradcheck(layer, [x])
    testing.gradcheck(layer.eval(), [x])


def test_eval_is_identity():
    layer = nn.Dropout(0.7).eval()
    x = testing.tie_free((4, 5), seed=5)
    state = copy.deepcopy(layer.rng.bit_generator.state)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(x * 2), x * 2)
    assert layer.rng.bit_generator.state == state          # no draw in eval
    np.testing.assert_array_equal(F.dropout(x, 0.7, training=False), x)
    minicnn.manual_seed(2)
    F.dropout(x, 0.7, training=False)    # eval draws nothing from minicnn's generator
    a = nn.Dropout(0.5)(x)
    minicnn.manual_seed(2)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x), a)


def test_p_zero_and_one():
    x = testing.tie_free((5, 6), seed=6)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    one = nn.Dropout(1.0)
    y = one(x)
    assert np.all(y == 0) and np.isfinite(y).all()
    assert np.all(one.backward(np.ones_like(x)) == 0)
    assert np.all(F.dropout2d(np.ones((2, 3, 2, 2), np.float32), 1.0) == 0)


@pytest.mark.parametrize("cls,shape", [(nn.Dropout2d, (8, 50, 3, 3)), (nn.Dropout1d, (8, 50, 4))])
def test_channel_dropout_zeroes_whole_channels(cls, shape):
    layer = cls(0.5)
    x = np.random.default_rng(7).uniform(0.5, 1.5, shape).astype(np.float32)
    rng = copy.deepcopy(layer.rng)
    y = layer(x)
    np.testing.assert_array_equal(y, _expected(layer, x, rng, shape[:2]))
    planes = (y != 0).reshape(shape[0], shape[1], -1)
    assert np.all(planes.all(axis=2) | ~planes.any(axis=2))   # each plane all kept or all zero
    assert 0.35 < planes[:, :, 0].mean() < 0.65
    gx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(gx != 0, y != 0)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", None, True])
def test_bad_p(p):
    with pytest.raises(ConfigError, match="Dropout: p must"):
        nn.Dropout(p)
    with pytest.raises(ConfigError, match="Dropout2d: p must"):
        nn.Dropout2d(p)


def test_bad_input_and_generator():
    with pytest.raises(ShapeError, match=r"Dropout2d.*\(N, C, H, W\).*received shape \(2, 3\)"):
        nn.Dropout2d(0.5)(np.ones((2, 3), np.float32))
    with pytest.raises(ShapeError, match=r"Dropout1d.*\(N, C, L\).*received shape \(2, 3, 4, 4\)"):
        nn.Dropout1d(0.5)(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(ConfigError, match="Dropout: generator must be a numpy.random.Generator"):
        nn.Dropout(0.5, generator=3)


def test_noncontiguous_input():
    x = testing.tie_free((4, 6), seed=8)
    strided = np.zeros((4, 6, 2), np.float32)
    strided[..., 0] = x
    layer = nn.Dropout(0.5)
    rng = copy.deepcopy(layer.rng)
    got = layer(strided[..., 0])
    np.testing.assert_array_equal(got, _expected(layer, x, rng))
    testing.check_noncontiguous(layer.eval(), [x])


def test_functional_matches_layer():
    x = testing.tie_free((5, 4, 3, 3), seed=9)
    for fn, cls in ((F.dropout, nn.Dropout), (F.dropout2d, nn.Dropout2d)):
        want = cls(0.3, generator=np.random.default_rng(42))(x)
        np.testing.assert_array_equal(fn(x, 0.3, seed=42), want)
        np.testing.assert_array_equal(fn(x, 0.3, seed=42), fn(x, 0.3, seed=42))
    # a seeded call does not move minicnn's generator
    minicnn.manual_seed(5)
    F.dropout(x, 0.3, seed=1)
    a = nn.Dropout(0.5)(x)
    minicnn.manual_seed(5)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x), a)
    with pytest.raises(ConfigError, match="p must be in"):
        F.dropout(x, 2.0)
    assert F.dropout1d(np.ones((2, 3, 4), np.float32), 0.5, seed=0).shape == (2, 3, 4)
