"""GramMatrix, StyleLoss, ContentLoss, TotalVariationLoss: loop references, float64 gradchecks,
bad inputs, layouts, functional forms, determinism. The loop references are
:mod:`minicnn_style_transfer.references` (the layers' ``reference_forward`` uses them too)."""

import numba
import numpy as np
import pytest
from minicnn import ConfigError, ShapeError, testing

from minicnn_style_transfer import (
    ContentLoss,
    GramMatrix,
    StyleLoss,
    TotalVariationLoss,
    content_loss,
    gram_matrix,
    style_loss,
    style_scale,
    total_variation_loss,
)
from minicnn_style_transfer import references as ref

# C = 20 spans three row blocks of the Gram kernels (8, 8 and 4 rows)
FEATURE_SHAPES = [(1, 3, 4, 5), (2, 5, 3, 3), (2, 20, 3, 2)]
NORMS = ["gatys", "course", "mean", "none"]


def _target_gram(x, seed):
    """A symmetric target near the input's own Gram matrix (so the loss is not dominated by one
    term), plus a non-symmetric part to check that backward uses D + D^T."""
    rng = np.random.default_rng(seed)
    g = ref.gram(x)
    return (g * rng.uniform(0.5, 1.5, g.shape) + 0.1 * rng.standard_normal(g.shape))


@pytest.mark.parametrize("shape", FEATURE_SHAPES)
@pytest.mark.parametrize("normalize", [False, True])
def test_gram_reference_and_gradcheck(shape, normalize):
    x = testing.tie_free(shape, seed=1)
    layer = GramMatrix(normalize=normalize)

    def reference(module, inputs):
        return [ref.gram(inputs[0], normalize)]

    testing.check_forward(layer, [x], reference)                                   # float32
    testing.check_forward(layer, [x.astype(np.float64)], reference, atol=1e-12, rtol=1e-12)
    testing.gradcheck(layer, [x], max_elements=48)


@pytest.mark.parametrize("shape", FEATURE_SHAPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_style_loss_reference_and_gradcheck(shape, norm, reduction):
    x = testing.tie_free(shape, seed=2)
    t = _target_gram(x, seed=3)
    layer = StyleLoss(norm=norm, reduction=reduction)

    def reference(module, inputs):
        return [ref.style_loss(inputs[0], inputs[1], norm, reduction)]

    testing.check_forward(layer, [x, t.astype(np.float32)], reference, atol=1e-6, rtol=1e-4)
    testing.check_forward(layer, [x.astype(np.float64), t], reference, atol=1e-14, rtol=1e-11)
    if shape == FEATURE_SHAPES[0] or (norm, reduction) == ("gatys", "sum"):
        # the normaliser is one scalar factor: every (norm, reduction) on the smallest shape
        testing.gradcheck(layer, [x, t], atol=1e-7, max_elements=48)


def test_gatys_and_course_normalisers_are_the_same_number():
    """1 / (4 N^2 M^2) with N = nC, M = nH nW is 1 / (2 nH nW nC)^2: both names give one loss,
    which matches the course's formula written on channel-last activations."""
    for c, h, w in [(3, 4, 5), (64, 256, 256), (7, 1, 9)]:
        assert style_scale("gatys", c, h * w) == pytest.approx(1.0 / (2 * h * w * c) ** 2,
                                                               rel=1e-15)
    rng = np.random.default_rng(4)
    a_s, a_g = rng.standard_normal((2, 3, 4, 5))           # channel-last (nH, nW, nC)
    x = a_g.transpose(2, 0, 1)[None].copy()                # NCHW
    t = ref.gram(a_s.transpose(2, 0, 1)[None])
    expected = ref.course_style_cost(a_s, a_g)
    assert style_loss(x, t, norm="course") == pytest.approx(expected, rel=1e-12)
    assert style_loss(x, t, norm="gatys") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 4, 30, 40)])   # the second spans 2 chunks
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_content_loss_reference_and_gradcheck(shape, reduction):
    x = testing.tie_free(shape, seed=5)
    t = testing.tie_free(shape, seed=6)
    layer = ContentLoss(reduction=reduction)

    def reference(module, inputs):
        return [ref.content_loss(inputs[0], inputs[1], reduction)]

    testing.check_forward(layer, [x, t], reference, atol=1e-6, rtol=1e-5)
    testing.check_forward(layer, [x.astype(np.float64), t.astype(np.float64)], reference,
                          atol=1e-13, rtol=1e-12)
    if np.prod(shape) < 200:
        testing.gradcheck(layer, [x, t])
    else:   # the gradient is x - t exactly: check it everywhere without finite differences
        value = layer(x.astype(np.float64), t.astype(np.float64))
        assert value > 0
        scale = 1.0 / x.size if reduction == "mean" else 1.0
        np.testing.assert_allclose(layer.backward(), scale * (x - t.astype(np.float64)),
                                   rtol=1e-14, atol=0)


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 2, 3, 1), (1, 1, 1, 4)])
@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_total_variation_reference_and_gradcheck(shape, power, reduction):
    x = testing.tie_free(shape, seed=7)
    layer = TotalVariationLoss(power=power, reduction=reduction)

    def reference(module, inputs):
        return [ref.total_variation(inputs[0], power, reduction)]

    testing.check_forward(layer, [x], reference, atol=1e-6, rtol=1e-5)
    testing.check_forward(layer, [x.astype(np.float64)], reference, atol=1e-13, rtol=1e-12)
    testing.gradcheck(layer, [x])


def test_total_variation_of_a_constant_image_is_zero_and_of_a_step_is_its_height():
    x = np.full((1, 3, 5, 6), 0.25)
    assert total_variation_loss(x) == 0.0
    x[:, :, :, 3:] = 1.25                  # a vertical edge of height 1 in 3 channels x 5 rows
    assert total_variation_loss(x) == 15.0
    assert total_variation_loss(x, power=1) == 15.0
    assert total_variation_loss(2 * x) == 60.0 and total_variation_loss(2 * x, power=1) == 30.0


def test_losses_are_zero_at_their_target_and_positive_elsewhere():
    x = testing.tie_free((1, 4, 3, 3), seed=8, dtype=np.float64)
    assert style_loss(x, gram_matrix(x)) == 0.0
    assert content_loss(x, x) == 0.0
    assert style_loss(x, 1.01 * gram_matrix(x)) > 0 and content_loss(x, 1.01 * x) > 0


@pytest.mark.parametrize("make, inputs", [
    (lambda: GramMatrix(), [(2, 3, 4, 5)]),
    (lambda: StyleLoss(), [(2, 3, 4, 5), (2, 3, 3)]),
    (lambda: ContentLoss(), [(2, 3, 4, 5), (2, 3, 4, 5)]),
    (lambda: TotalVariationLoss(), [(2, 3, 4, 5)]),
])
def test_noncontiguous_inputs_give_the_same_result(make, inputs):
    arrays = [testing.tie_free(s, seed=9 + i) for i, s in enumerate(inputs)]
    testing.check_noncontiguous(make(), arrays)


def test_functional_forms_match_the_layers():
    x = testing.tie_free((2, 5, 3, 4), seed=10)
    t = _target_gram(x, 11).astype(np.float32)
    c = testing.tie_free((2, 5, 3, 4), seed=12)
    np.testing.assert_array_equal(gram_matrix(x), GramMatrix()(x))
    np.testing.assert_array_equal(gram_matrix(x, True), GramMatrix(normalize=True)(x))
    assert style_loss(x, t, "mean", "mean") == StyleLoss("mean", "mean")(x, t)
    assert content_loss(x, c) == ContentLoss()(x, c)
    assert total_variation_loss(x, 1) == TotalVariationLoss(1)(x)


def test_bad_shapes_name_the_layer_and_show_expected_and_received():
    x = np.zeros((2, 3, 4, 5), np.float32)
    with pytest.raises(ShapeError, match=r"GramMatrix.*\(N, C, H, W\).*received shape \(2, 3, 4\)"):
        GramMatrix()(x[:, :, :, 0].copy())
    with pytest.raises(ShapeError, match=r"StyleLoss.*expected target shape \(2, 3, 3\), "
                       r"received target shape \(2, 4, 4\)"):
        StyleLoss()(x, np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ShapeError, match=r"StyleLoss.*4 axes"):
        StyleLoss()(x[0].copy(), np.zeros((3, 3), np.float32))
    with pytest.raises(ShapeError, match=r"ContentLoss.*expected target shape \(2, 3, 4, 5\), "
                       r"received target shape \(2, 3, 4, 4\)"):
        ContentLoss()(x, x[..., :4].copy())
    with pytest.raises(ShapeError, match=r"TotalVariationLoss.*received shape \(3, 4, 5\)"):
        TotalVariationLoss()(x[0].copy())


def test_bad_hyper_parameters_name_the_layer():
    with pytest.raises(ConfigError, match="StyleLoss: norm must be one of"):
        StyleLoss(norm="frobenius")
    with pytest.raises(ConfigError, match="StyleLoss: reduction must be"):
        StyleLoss(reduction="max")
    with pytest.raises(ConfigError, match="ContentLoss: reduction must be"):
        ContentLoss(reduction="none")
    with pytest.raises(ConfigError, match="TotalVariationLoss: power must be 1 or 2"):
        TotalVariationLoss(power=3)
    with pytest.raises(ConfigError, match="GramMatrix: normalize must be True or False"):
        GramMatrix(normalize="yes")


def test_results_do_not_depend_on_the_thread_count():
    """Row blocks of the Gram kernels and chunked sums are fixed by the shapes, not the threads."""
    x = testing.tie_free((2, 40, 16, 16), seed=13)
    t = _target_gram(x.astype(np.float64), 14).astype(np.float32)
    layers = [GramMatrix(), StyleLoss(), ContentLoss(), TotalVariationLoss()]
    inputs = [[x], [x, t], [x, x[:, ::-1].copy()], [x]]
    threads = numba.get_num_threads()

    def run_all():
        out = []
        for layer, ins in zip(layers, inputs, strict=True):
            y = layer(*ins)
            out.append((np.array(y), np.array(layer.backward(np.ones_like(y) if np.ndim(y)
                                                             else None))))
        return out

    try:
        numba.set_num_threads(1)
        serial = run_all()
    finally:
        numba.set_num_threads(threads)
    parallel = run_all()
    for (ys, gs), (yp, gp) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(ys, yp)
        np.testing.assert_array_equal(gs, gp)


def test_style_loss_gradient_is_four_s_times_difference_times_features():
    """For a symmetric target: dE/dF = 4 s (G - T) F (Gatys et al., eq. 6, with s = 1/(4N^2M^2))."""
    x = testing.tie_free((1, 6, 5, 4), seed=15, dtype=np.float64)
    f = x.reshape(6, 20)
    t = f @ f.T * 0.8
    layer = StyleLoss()
    layer(x, t[None])
    s = 1.0 / (4 * 36 * 400)
    expected = 4 * s * (f @ f.T - t) @ f
    np.testing.assert_allclose(layer.backward().reshape(6, 20), expected, rtol=1e-12, atol=1e-18)
