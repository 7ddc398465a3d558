"""Softmax and LogSoftmax: loop references on every axis, gradients, extremes, bad input."""

import numpy as np
import pytest

from minicnn import ConfigError, ShapeError, nn, testing
from minicnn import functional as F

from .reference import softmax as ref

GRID = [((4, 5), None), ((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
        ((2, 3, 4), 0), ((2, 3, 2, 3), None), ((2, 3, 2, 3), 2), ((2, 3, 2, 3), -1),
        ((1, 2, 700), 1)]   # inner = 700 spans two parallel chunks of inner positions


def _axis(dim, rank):
    return (1 if dim is None else dim) % rank


@pytest.mark.parametrize("cls,log", [(nn.Softmax, False), (nn.LogSoftmax, True)],
                         ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", GRID, ids=[f"{s}-{d}" for s, d in GRID])
def test_forward_matches_reference(cls, log, shape, dim):
    layer = cls(dim)
    x = testing.tie_free(shape, seed=1, high=4.0)
    testing.check_forward(layer, [x], lambda m, xs: ref.softmax(xs[0], _axis(dim, len(shape)), log),
                          atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls", [nn.Softmax, nn.LogSoftmax])
@pytest.mark.parametrize("shape,dim", GRID[:9], ids=[f"{s}-{d}" for s, d in GRID[:9]])
def test_gradcheck(cls, shape, dim):
    testing.gradcheck(cls(dim), [testing.tie_free(shape, seed=2, high=3.0)])


def test_large_rows_float32_accuracy():
    x = np.random.default_rng(3).standard_normal((3, 1000)).astype(np.float32) * 10
    np.testing.assert_allclose(F.softmax(x, -1), ref.softmax(x, 1), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(F.log_softmax(x, -1), ref.softmax(x, 1, log=True), rtol=1e-5,
                               atol=1e-4)


def test_huge_logits_stay_finite():
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], np.float32)
    np.testing.assert_allclose(F.softmax(x, 1), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x, 1),
                               [[0, -1e4, -2e4], [-np.log(3)] * 3], rtol=1e-6)
    for cls in (nn.Softmax, nn.LogSoftmax):
        layer = cls(1)
        y = layer(x)
        g = layer.backward(np.ones_like(x))
        assert np.isfinite(y).all() and np.isfinite(g).all()
    y4 = F.softmax(np.full((1, 3, 2, 2), 3e4, np.float32), 1)   # NCHW, dim 1
    np.testing.assert_allclose(y4, 1 / 3, rtol=1e-6)


def test_identities():
    x = testing.tie_free((3, 4, 5), seed=4, high=5.0, dtype=np.float64)
    for dim in (0, 1, 2):
        s = F.softmax(x, dim)
        np.testing.assert_allclose(s.sum(axis=dim), 1.0, rtol=1e-12)
        np.testing.assert_allclose(np.exp(F.log_softmax(x, dim)), s, rtol=1e-12)
        np.testing.assert_allclose(F.softmax(x + 100.0, dim), s, rtol=1e-12)   # shift invariant


def test_backward_closed_form():
    x = testing.tie_free((2, 3, 4), seed=5, high=3.0, dtype=np.float64)
    gy = np.random.default_rng(6).standard_normal(x.shape)
    sm, lsm = nn.Softmax(1), nn.LogSoftmax(1)
    y = sm(x)
    np.testing.assert_allclose(sm.backward(gy), y * (gy - (gy * y).sum(1, keepdims=True)),
                               rtol=1e-12, atol=1e-15)
    lsm(x)
    np.testing.assert_allclose(lsm.backward(gy), gy - y * gy.sum(1, keepdims=True), rtol=1e-12,
                               atol=1e-15)


def test_bad_dim():
    with pytest.raises(ShapeError, match=r"Softmax: dim 2 is out of range.*\[-2, 1\].*\(4, 5\)"):
        nn.Softmax(2)(np.ones((4, 5), np.float32))
    with pytest.raises(ShapeError, match=r"LogSoftmax: dim -4 is out of range"):
        F.log_softmax(np.ones((4, 5, 2), np.float32), -4)
    with pytest.raises(ShapeError, match=r"Softmax: dim None is out of range.*dim=1"):
        nn.Softmax()(np.ones((4,), np.float32))
    for dim in ("1", 1.0, True):
        with pytest.raises(ConfigError, match="Softmax: dim must be an int or None"):
            nn.Softmax(dim)


def test_noncontiguous_input():
    x = testing.tie_free((3, 4, 5), seed=7)
    testing.check_noncontiguous(nn.Softmax(1), [x], atol=1e-7)
    testing.check_noncontiguous(nn.LogSoftmax(-1), [x], atol=1e-6)


def test_functional_matches_layer_and_repr():
    x = testing.tie_free((3, 4, 2), seed=8)
    np.testing.assert_array_equal(F.softmax(x, 1), nn.Softmax(1)(x))
    np.testing.assert_array_equal(F.log_softmax(x, -1), nn.LogSoftmax(-1)(x))
    np.testing.assert_array_equal(F.softmax(x), nn.Softmax(1)(x))   # None means axis 1
    assert repr(nn.Softmax(-1)) == "Softmax(dim=-1)"
    assert repr(nn.LogSoftmax()) == "LogSoftmax(dim=None)"
