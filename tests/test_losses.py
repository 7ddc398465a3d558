"""Losses: loop references, gradchecks, stability, ignore_index, label smoothing, bad inputs."""

import math

import numba
import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, InputError, ShapeError, get_registry, losses_cpu, nn, testing
from minicnn import functional as F

from .reference import losses as ref


def _targets(shape, n_class, seed=0, ignore=None, every=4):
    """Integer class targets; every ``every``-th position set to ``ignore`` (when given)."""
    t = np.random.default_rng(seed).integers(0, n_class, size=shape).astype(np.int64)
    if ignore is not None:
        t.reshape(-1)[::every] = ignore
    return t


def _class_weights(n_class, seed=3):
    return np.random.default_rng(seed).uniform(0.5, 2.0, n_class)


# -- CrossEntropyLoss / NLLLoss -------------------------------------------------------------------

CLASS_SHAPES = [(5, 4), (2, 3, 3, 2)]


@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("ignore", [None, -100, 1])
def test_cross_entropy_reference_and_gradcheck(shape, use_weight, reduction, smoothing, ignore):
    n_class = shape[1]
    ignore_index = -100 if ignore is None else ignore
    weight = _class_weights(n_class) if use_weight else None
    x = testing.tie_free(shape, seed=1, low=0.1, high=3.0)
    t = _targets((shape[0],) + shape[2:], n_class, seed=2, ignore=ignore)
    loss = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=smoothing)

    def reference(module, inputs):
        return ref.cross_entropy(inputs[0], inputs[1], weight, ignore_index, reduction, smoothing)

    testing.check_forward(loss, [x, t], reference)                              # float32
    testing.check_forward(loss, [x.astype(np.float64), t], reference, atol=1e-12, rtol=1e-12)
    testing.gradcheck(loss, [x, t])


@pytest.mark.parametrize("shape", CLASS_SHAPES)
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ignore", [None, 2])
def test_nll_reference_and_gradcheck(shape, use_weight, reduction, ignore):
    n_class = shape[1]
    ignore_index = -100 if ignore is None else ignore
    weight = _class_weights(n_class) if use_weight else None
    x = testing.tie_free(shape, seed=4)
    t = _targets((shape[0],) + shape[2:], n_class, seed=5, ignore=ignore)
    loss = nn.NLLLoss(weight=weight, ignore_index=ignore_index, reduction=reduction)

    def reference(module, inputs):
        return ref.nll_loss(inputs[0], inputs[1], weight, ignore_index, reduction)

    testing.check_forward(loss, [x.astype(np.float64), t], reference, atol=1e-12, rtol=1e-12)
    testing.gradcheck(loss, [x, t])


def test_cross_entropy_backward_is_softmax_minus_onehot():
    x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = np.array([2, 0])
    loss = nn.CrossEntropyLoss()
    loss(x, t)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    expected = (p - np.eye(3)[t]) / 2
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss.backward(3.0), 3.0 * expected, rtol=1e-13, atol=1e-15)
    loss_sum = nn.CrossEntropyLoss(reduction="sum")
    loss_sum(x, t)
    np.testing.assert_allclose(loss_sum.backward(), p - np.eye(3)[t], rtol=1e-13, atol=1e-15)


def test_nll_after_log_softmax_equals_cross_entropy():
    x = testing.tie_free((6, 5), seed=7, dtype=np.float64)
    t = _targets((6,), 5, seed=8)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    assert F.nll_loss(logp, t) == pytest.approx(F.cross_entropy(x, t), rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_stable_for_huge_logits(dtype):
    x = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], dtype)
    loss = nn.CrossEntropyLoss(reduction="sum")
    assert loss(x, np.array([1, 0, 0])) == 1e4 + 0.0 + 2e4   # exact: exp underflows to 0
    g = loss.backward()
    assert np.isfinite(g).all()
    np.testing.assert_array_equal(g, np.array([[1, -1, 0], [0, 0, 0], [-1, 1, 0]], dtype))
    low = np.full((2, 4), -1e4, dtype)
    value = nn.CrossEntropyLoss()(low, np.array([0, 3]))
    assert value == pytest.approx(math.log(4), rel=1e-6 if dtype == np.float32 else 1e-14)
    assert F.cross_entropy(np.array([[-1e4, 1e4]], dtype), np.array([0])) == 2e4


def test_ignored_positions_get_zero_gradient():
    x = testing.tie_free((6, 4), seed=9, dtype=np.float64)
    t = np.array([0, -100, 3, -100, 1, 2])
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    value = loss(x, t)
    g = loss.backward()
    assert np.all(g[[1, 3]] == 0.0)
    assert np.all(np.abs(g[[0, 2, 4, 5]]) > 0)
    kept = [0, 2, 4, 5]
    assert value == pytest.approx(F.cross_entropy(x[kept], t[kept], label_smoothing=0.1),
                                  rel=1e-13)
    # per-pixel: ignored pixels of a segmentation map
    xs = testing.tie_free((2, 3, 2, 2), seed=10, dtype=np.float64)
    ts = np.array([[[0, 255], [2, 1]], [[255, 255], [1, 0]]])
    seg = nn.CrossEntropyLoss(ignore_index=255)
    seg(xs, ts)
    gs = seg.backward()
    mask = np.broadcast_to((ts == 255)[:, None], gs.shape)
    assert np.all(gs[mask] == 0.0) and np.all(gs[~mask] != 0.0)


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient():
    loss = nn.CrossEntropyLoss()
    x = np.ones((2, 3))
    assert math.isnan(loss(x, np.array([-100, -100])))
    assert np.all(loss.backward() == 0.0)
    assert nn.CrossEntropyLoss(reduction="sum")(x, np.array([-100, -100])) == 0.0


def test_label_smoothing_hand_formula():
    x = np.array([[1.0, 2.0, 3.0]])
    logp = x[0] - math.log(math.e + math.e ** 2 + math.e ** 3)
    eps = 0.2
    expected = -(1 - eps) * logp[0] - eps / 3 * (logp[0] + logp[1] + logp[2])
    assert F.cross_entropy(x, np.array([0]), label_smoothing=eps) == pytest.approx(expected,
                                                                                   rel=1e-14)
    w = np.array([2.0, 0.5, 1.0])
    expected_w = ((1 - eps) * -w[0] * logp[0] - eps / 3 * (w * logp).sum()) / w[0]
    got = F.cross_entropy(x, np.array([0]), w, label_smoothing=eps)
    assert got == pytest.approx(expected_w, rel=1e-14)


def test_weighted_mean_divides_by_sum_of_target_weights():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    w = np.array([1.0, 3.0])
    # every row costs log 2; weighted mean = (1 + 3 + 3) log 2 / (1 + 3 + 3) = log 2
    assert F.cross_entropy(x, np.array([0, 1, 1]), w) == pytest.approx(math.log(2), rel=1e-14)
    assert F.cross_entropy(x, np.array([0, 1, 1]), w, reduction="sum") == pytest.approx(
        7 * math.log(2), rel=1e-14)


@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.NLLLoss])
def test_targets_out_of_range(cls):
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(InputError, match=rf"{cls.__name__}.*target value 4 .*\[0, 4\).*C = 4"):
        cls()(x, np.array([0, 4, 1]))
    with pytest.raises(InputError, match=rf"{cls.__name__}.*target value -1 "):
        cls()(x, np.array([0, -1, 1]))
    with pytest.raises(InputError, match="target value -100"):
        cls(ignore_index=2)(x, np.array([0, -100, 2]))
    assert np.isfinite(cls()(x, np.array([0, -100, 3])))
    with pytest.raises(InputError, match="integer class indices"):
        cls()(x, np.array([0.0, 1.0, 2.0]))


def test_class_loss_shape_errors():
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*target shape \(4,\).*target shape "
                                         r"\(3,\)"):
        loss(np.zeros((4, 5), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ShapeError, match=r"\(2, 4, 4\).*\(2, 4, 5\)"):
        loss(np.zeros((2, 3, 4, 4), np.float32), np.zeros((2, 4, 5), np.int64))
    with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\(N, C, \.\.\.\)"):
        loss(np.zeros(4, np.float32), np.zeros(4, np.int64))
    with pytest.raises(ShapeError, match="3 classes.*weight of 2 entries"):
        nn.NLLLoss(weight=np.ones(2))(np.zeros((4, 3), np.float32), np.zeros(4, np.int64))


def test_config_errors():
    with pytest.raises(ConfigError, match="CrossEntropyLoss.*reduction"):
        nn.CrossEntropyLoss(reduction="none")
    with pytest.raises(ConfigError, match="CrossEntropyLoss.*label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ConfigError, match="NLLLoss.*weight must be a 1-D"):
        nn.NLLLoss(weight=np.ones((2, 2)))
    with pytest.raises(ConfigError, match="ignore_index"):
        nn.CrossEntropyLoss(ignore_index=1.5)
    with pytest.raises(ConfigError, match="SmoothL1Loss.*beta"):
        nn.SmoothL1Loss(beta=-1.0)
    with pytest.raises(ConfigError, match="MSELoss.*reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ConfigError, match="BCEWithLogitsLoss.*pos_weight must be finite"):
        nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, np.inf]))


# -- element-wise losses --------------------------------------------------------------------------

ELEMENT_SHAPES = [(3, 4), (2, 3, 2, 2)]


def _pred_target(shape, seed=0):
    """A prediction and a target whose differences stay >= 0.05 away from 0 and from 1 and 0.5."""
    x = testing.tie_free(shape, seed=seed, low=0.1, high=2.0)
    offset = testing.tie_free(shape, seed=seed + 1, low=0.05, high=2.3)
    d = np.abs(offset)
    assert np.min(np.abs(d - 1.0)) > 1e-3 and np.min(np.abs(d - 0.5)) > 1e-3
    return x, (x + offset).astype(np.float32)


CASES = [
    ("MSELoss", {}, ref.mse_loss),
    ("L1Loss", {}, ref.l1_loss),
    ("SmoothL1Loss", {"beta": 1.0}, ref.smooth_l1_loss),
    ("SmoothL1Loss", {"beta": 0.5}, ref.smooth_l1_loss),
    ("SmoothL1Loss", {"beta": 0.0}, ref.smooth_l1_loss),
]


@pytest.mark.parametrize("shape", ELEMENT_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name,kwargs,reference", CASES)
def test_regression_losses(shape, reduction, name, kwargs, reference):
    x, y = _pred_target(shape)
    loss = getattr(nn, name)(reduction=reduction, **kwargs)

    def oracle(module, inputs):
        if name == "SmoothL1Loss" and kwargs["beta"] == 0.0:
            return ref.l1_loss(*inputs, reduction)   # PyTorch: beta = 0 is exactly L1
        return reference(*inputs, reduction, **kwargs)

    testing.check_forward(loss, [x, y], oracle)
    testing.check_forward(loss, [x.astype(np.float64), y.astype(np.float64)], oracle,
                          atol=1e-12, rtol=1e-12)
    testing.gradcheck(loss, [x, y])


def _probabilities(shape, seed):
    return (0.1 + 0.8 * np.random.default_rng(seed).random(shape)).astype(np.float32)


@pytest.mark.parametrize("shape", ELEMENT_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_bce_with_logits(shape, reduction, weighted, pos_weighted):
    x = testing.tie_free(shape, seed=11, low=0.05, high=4.0)
    y = _probabilities(shape, 12)   # soft labels in (0, 1)
    rng = np.random.default_rng(13)
    weight = rng.uniform(0.5, 2.0, shape[1:]) if weighted else None
    pos_weight = rng.uniform(0.5, 3.0, (shape[1],) + (1,) * (len(shape) - 2)) \
        if pos_weighted else None
    loss = nn.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)

    def oracle(module, inputs):
        return ref.binary_cross_entropy_with_logits(*inputs, weight, reduction, pos_weight)

    testing.check_forward(loss, [x, y], oracle)
    testing.check_forward(loss, [x.astype(np.float64), y.astype(np.float64)], oracle,
                          atol=1e-12, rtol=1e-12)
    testing.gradcheck(loss, [x, y])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_stable_for_huge_logits(dtype):
    x = np.array([1e4, -1e4, 1e4, -1e4], dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0], dtype)
    loss = nn.BCEWithLogitsLoss(reduction="sum")
    assert loss(x, y) == 2e4
    g = loss.backward()
    np.testing.assert_array_equal(g, np.array([1.0, -1.0, 0.0, 0.0], dtype))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(reduction, weighted):
    shape = (3, 4)
    x, y = _probabilities(shape, 14), _probabilities(shape, 15)
    weight = np.random.default_rng(16).uniform(0.5, 2.0, (1, 4)) if weighted else None
    loss = nn.BCELoss(weight=weight, reduction=reduction)
    testing.check_forward(loss, [x, y], lambda m, ins: ref.binary_cross_entropy(
        *ins, weight, reduction))
    testing.gradcheck(loss, [x, y])
    # a certain wrong prediction costs 100 (PyTorch clamps the log at -100)
    assert F.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]),
                                  reduction="sum") == 200.0
    with pytest.raises(InputError, match=r"BCELoss.*\[0, 1\]"):
        loss(x + 1.0, y)


def test_elementwise_shape_mismatch_names_both_shapes():
    for cls in (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.BCEWithLogitsLoss, nn.BCELoss):
        with pytest.raises(ShapeError, match=rf"{cls.__name__}.*\(2, 3\).*\(3, 2\)"):
            cls()(np.full((2, 3), 0.5, np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ShapeError, match=r"pos_weight.*\(2, 3\).*\(4,\)"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(4))(np.zeros((2, 3), np.float32),
                                                    np.zeros((2, 3), np.float32))


# -- layouts, functional forms, registry, determinism ---------------------------------------------

def test_noncontiguous_inputs():
    x = testing.tie_free((4, 5), seed=17)
    testing.check_noncontiguous(nn.CrossEntropyLoss(label_smoothing=0.1), [x, _targets((4,), 5)])
    testing.check_noncontiguous(nn.NLLLoss(), [x, _targets((4,), 5)])
    xs, ys = _pred_target((2, 3, 2))
    for loss in (nn.MSELoss(), nn.SmoothL1Loss(), nn.BCEWithLogitsLoss(pos_weight=np.ones((3, 1)))):
        testing.check_noncontiguous(loss, [xs, ys])


def test_functional_forms_match_layers():
    x = testing.tie_free((4, 3, 2), seed=18)
    t = _targets((4, 2), 3, seed=19, ignore=-100)
    w = _class_weights(3)
    assert F.cross_entropy(x, t, w, label_smoothing=0.1, reduction="sum") == \
        nn.CrossEntropyLoss(w, reduction="sum", label_smoothing=0.1)(x, t)
    assert F.nll_loss(x, t, ignore_index=-100) == nn.NLLLoss()(x, t)
    xs, ys = _pred_target((3, 4))
    assert F.mse_loss(xs, ys) == nn.MSELoss()(xs, ys)
    assert F.l1_loss(xs, ys, reduction="sum") == nn.L1Loss("sum")(xs, ys)
    assert F.smooth_l1_loss(xs, ys, beta=0.5) == nn.SmoothL1Loss(beta=0.5)(xs, ys)
    pw = np.full(4, 2.0)
    assert F.binary_cross_entropy_with_logits(xs, ys, pos_weight=pw) == \
        nn.BCEWithLogitsLoss(pos_weight=pw)(xs, ys)
    assert isinstance(F.mse_loss(xs, ys), float)


def test_losses_are_registered_with_cpu_kernels():
    registry = get_registry()
    for name in ("CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss",
                 "BCEWithLogitsLoss", "BCELoss"):
        assert name in registry.losses and name in registry.layers
        assert registry.kernel(name, "cpu") is not None


def test_float32_matches_float64():
    x = testing.tie_free((8, 10), seed=20)
    t = _targets((8,), 10, seed=21)
    assert F.cross_entropy(x, t) == pytest.approx(F.cross_entropy(x.astype(np.float64), t),
                                                  rel=1e-6)


def test_large_inputs_deterministic_across_thread_counts():
    rng = np.random.default_rng(22)
    x = rng.standard_normal((4000, 10))          # 3 chunks of rows, parallel kernels
    t = rng.integers(0, 10, 4000)
    xe, ye = rng.standard_normal(50001), rng.standard_normal(50001)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    want_ce = -logp[np.arange(4000), t].mean()
    threads = numba.get_num_threads()
    results = []
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            loss = nn.CrossEntropyLoss()
            value = loss(x, t)
            results.append((value, loss.backward(), F.mse_loss(xe, ye), F.l1_loss(xe, ye)))
    finally:
        numba.set_num_threads(threads)
    for other in results[1:]:
        assert other[0] == results[0][0] and other[2] == results[0][2]
        np.testing.assert_array_equal(other[1], results[0][1])
    assert results[0][0] == pytest.approx(want_ce, rel=1e-12)
    assert results[0][2] == pytest.approx(np.mean((xe - ye) ** 2), rel=1e-12)
    assert results[0][3] == pytest.approx(np.mean(np.abs(xe - ye)), rel=1e-12)


def test_serial_and_parallel_kernels_agree_exactly(monkeypatch):
    x = testing.tie_free((7, 5, 3), seed=23, dtype=np.float64)
    t = _targets((7, 3), 5, seed=24, ignore=-100)
    xe, ye = _pred_target((9, 5), seed=25)

    def run():
        ce = nn.CrossEntropyLoss(label_smoothing=0.1)
        bce = nn.BCEWithLogitsLoss(pos_weight=np.full(5, 2.0))
        return ce(x, t), ce.backward(), bce(xe, ye), bce.backward()

    serial = run()
    monkeypatch.setattr(losses_cpu, "PARALLEL_MIN", 1)
    parallel = run()
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_compute_returns_the_unread_value_and_backward_follows_it():
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 5, 4)
    loss = nn.CrossEntropyLoss()
    called = loss(x, t)
    g_called = loss.backward()
    value = loss.compute([x, t])
    assert isinstance(value, np.ndarray) and value.shape == ()
    assert float(value) == called
    np.testing.assert_array_equal(loss.backward(), g_called)
    with pytest.raises(TypeError, match="compute runs on arrays"):
        loss.compute(minicnn.Input((5,)), minicnn.Input((), kind="index"))


def test_a_one_input_loss_applies_to_a_single_symbol():
    """A plugin's loss may take only the prediction (a penalty): ``loss(symbol)`` builds a node."""
    from minicnn.kernel import Kernel
    from minicnn.registry import Registry, get_registry, hookimpl, set_registry

    class SquarePenalty(minicnn.Loss):
        num_inputs = 1
        differentiable_inputs = (True,)

        def infer_shapes(self, in_shapes):
            return [()]

    class SquarePenaltyCPU(Kernel):
        layer, device = "SquarePenalty", "cpu"

        def forward(self, layer, xs, ys, ws):
            ys[0][...] = (xs[0] ** 2).sum()

        def backward(self, layer, xs, ys, gys, gxs, ws, grads):
            if gxs[0] is not None:
                gxs[0][...] = 2 * xs[0] * gys[0]

    class Plugin:
        @hookimpl
        def minicnn_layers(self):
            return [SquarePenalty]

        @hookimpl
        def minicnn_kernels(self):
            return [SquarePenaltyCPU]

    registry = Registry(load_entry_points=False)
    registry.register(Plugin(), name="penalty")
    previous = set_registry(registry)
    try:
        assert get_registry() is registry
        x = minicnn.Input((3,))
        model = minicnn.Model(x, SquarePenalty()(x))
        data = np.array([[1.0, 2.0, 3.0]], np.float32)
        np.testing.assert_allclose(model(data), 14.0)
        assert SquarePenalty()(data) == pytest.approx(14.0)
    finally:
        set_registry(previous)
