"""The objective and its optimisation: the image gradient against finite differences, the losses
falling with L-BFGS and Adam, coarse-to-fine, rescaled style targets, the cost estimate, and a
short run on the shared photo and painting."""

import numpy as np
import pytest
from minicnn import ConfigError

from minicnn_style_transfer import (
    GATYS,
    StyleTransfer,
    gram_matrix,
    graph_cost,
    load_rgb,
    random_features,
)

SMALL = (8, 8, 16, 16, 16)     # random network widths that keep these tests fast


def _images(h=24, w=32, seed=0):
    """A 'photo' (smooth gradient with a bright square) and a 'painting' (stripes and noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    content = np.stack([xx, yy, 0.5 * (xx + yy)]).astype(np.float32)
    content[:, h // 4:h // 2, w // 4:w // 2] = 0.9
    stripes = 0.5 + 0.5 * np.sin(np.arange(w) * 1.3)[None, None, :] * np.array([1, -1, 0.5])[
        :, None, None]
    style = np.clip(stripes + 0.15 * rng.standard_normal((3, h + 8, w)), 0, 1)
    return content, style.astype(np.float32)


def test_image_gradient_matches_finite_differences():
    """The whole objective in float64: alpha, beta lambda_l and the TV weight wired right."""
    net = random_features(seed=1, widths=(3, 4, 4, 4, 4))
    net.model.double()
    st = StyleTransfer(net, style_weight=30.0, tv_weight=0.2, content_weight=0.7,
                       style_weights=[0.1, 0.2, 0.3, 0.25, 0.15])
    content, style = _images(16, 16)
    targets = st.targets(content, style, (16, 16))
    rng = np.random.default_rng(2)
    x = rng.uniform(0.1, 0.9, (1, 3, 16, 16))
    evaluation, grad = st.evaluate(x, targets)
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert evaluation.total == pytest.approx(0.7 * evaluation.content + 30.0 * evaluation.style +
                                             0.2 * evaluation.tv, rel=1e-12)
    eps = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 5, 7), (0, 2, 15, 3), (0, 0, 9, 9), (0, 1, 12, 14)]:
        plus, minus = x.copy(), x.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = (st.evaluate(plus, targets)[0].total - st.evaluate(minus, targets)[0].total) / (
            2 * eps)
        assert grad[index] == pytest.approx(numeric, rel=2e-5, abs=1e-9)


def test_no_weight_gradients_are_computed():
    net = random_features(widths=SMALL)
    st = StyleTransfer(net)
    content, style = _images()
    st.evaluate(content[None].copy(), st.targets(content, style, content.shape[1:]))
    assert all(p.grad is None for p in net.model.parameters())


@pytest.mark.parametrize("optimizer, iterations, factor", [("lbfgs", 40, 10), ("adam", 60, 5)])
def test_style_loss_falls(optimizer, iterations, factor):
    net = random_features(seed=0, widths=SMALL)
    st = StyleTransfer(net, style_weight=1e4, tv_weight=0.1)
    content, style = _images()
    seen = []
    result = st.run(content, style, iterations, optimizer=optimizer, init="content",
                    callback=lambda scale, it, image, ev: seen.append((scale, it)))
    assert result.image.shape == content.shape and result.image.dtype == np.float32
    assert np.isfinite(result.image).all() and 0 <= result.image.min() <= result.image.max() <= 1
    assert result.iterations == iterations and seen[-1] == (0, iterations)
    assert result.style_ratio > factor, (result.style_start, result.style_end)
    assert result.history[-1].total < result.history[0].total
    if optimizer == "lbfgs":   # a line search never accepts a worse point
        totals = [e.total for e in result.history]
        assert result.history[-1].total == min(totals)
    assert result.evaluations == len(result.history)


def test_noise_start_is_seeded_and_texture_synthesis_needs_no_content_layer():
    net = random_features(widths=SMALL)
    st = StyleTransfer(net, content_layer=None, content_weight=0.0, style_weight=1e3,
                       tv_weight=0.0)
    content, style = _images()
    a = st.run(content, style, 5, init="noise", seed=7)
    b = st.run(content, style, 5, init="noise", seed=7)
    c = st.run(content, style, 5, init="noise", seed=8)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
    assert a.history[0].content == 0.0 and a.style_ratio > 1


def test_coarse_to_fine_runs_each_scale():
    net = random_features(widths=SMALL)
    st = StyleTransfer(net, style_weight=1e4)
    content, style = _images(32, 40)
    scales = []
    result = st.run(content, style, 6, scales=2, callback=lambda s, it, im, ev: scales.append(
        (s, im.shape)))
    assert result.sizes == [(16, 20), (32, 40)]
    assert scales[0] == (0, (3, 16, 20)) and scales[-1] == (1, (3, 32, 40))
    assert result.image.shape == (3, 32, 40)
    assert result.evaluations > len(result.history)     # the coarse scale's evaluations count too


def test_style_targets_are_rescaled_to_the_generated_image_positions():
    net = random_features(widths=SMALL)
    st = StyleTransfer(net, style_layers=["conv1_1", "conv3_1"])
    content, style = _images(16, 16)
    big_style = np.repeat(np.repeat(style, 2, axis=1), 2, axis=2)      # 4x the positions
    targets = st.targets(content, big_style, (16, 16))
    assert len(targets) == 3 and targets[0].shape == (1, 16, 2, 2)   # conv4_2 first
    feats = net.features(big_style[None], ["conv1_1", "conv3_1"])
    # conv1_1 of a 16x16 image has 256 positions, conv3_1 (1/4 resolution) 16
    for target, layer, positions in zip(targets[1:], ["conv1_1", "conv3_1"], [256, 16],
                                        strict=True):
        a = feats[layer]
        expected = gram_matrix(a) * positions / (a.shape[2] * a.shape[3])
        np.testing.assert_allclose(target, expected, rtol=1e-5)


def test_estimate_counts_memory_flops_and_time():
    net = random_features(widths=SMALL)
    st = StyleTransfer(net, tv_weight=1.0)
    small = st.estimate((32, 32), (32, 32), 100)
    big = st.estimate((64, 64), (64, 64), 100, seconds_per_evaluation=0.5)
    assert small["seconds"] is None and big["seconds"] == pytest.approx(0.5 * (110 + 1))
    assert big["memory_bytes"] > 3.5 * small["memory_bytes"]          # grows with the pixels
    assert big["gflop_per_evaluation"] == pytest.approx(4 * small["gflop_per_evaluation"],
                                                        rel=0.05)
    two = st.estimate((64, 64), (64, 64), 100, scales=2, seconds_per_evaluation=0.5)
    assert two["evaluations"] == 2 * big["evaluations"]
    assert two["seconds"] == pytest.approx(1.25 * big["seconds"])
    lbfgs = st.estimate((64, 64), (64, 64), 10, history_size=50)
    adam = st.estimate((64, 64), (64, 64), 10, optimizer="adam")
    assert lbfgs["memory_bytes"] - adam["memory_bytes"] == 4 * (2 * 50 + 6 - 4) * 3 * 64 * 64
    # graph_cost: the elements of every node's outputs
    elements, flops = graph_cost(net.extractor(["conv1_1"]), [(1, 3, 10, 10)])
    assert elements == 3 * 100 + 8 * 100 + 8 * 100 and flops > 2 * 8 * 27 * 100


def test_bad_arguments():
    net = random_features(widths=SMALL)
    with pytest.raises(ConfigError, match="no layer named 'conv9_9'"):
        StyleTransfer(net, style_layers=["conv9_9"])
    with pytest.raises(ConfigError, match="2 style layers but 3 style weights"):
        StyleTransfer(net, style_layers=["conv1_1", "conv2_1"], style_weights=[1, 1, 1])
    st = StyleTransfer(net)
    content, style = _images()
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        st.run(content, style, 1, optimizer="sgd")
    with pytest.raises(ConfigError, match="init must be one of"):
        st.run(content, style, 1, init="zeros")
    bad = content.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ConfigError, match="content image has NaN"):
        st.run(bad, style, 1)
    with pytest.raises(ConfigError, match=r"style image must be \(3, H, W\)"):
        st.run(content, style[:1], 1)


def test_gatys_preset_on_the_shared_photo_and_painting(shared_data):
    """Tiny Darknet, the Gatys layers, 64 pixels, 40 L-BFGS iterations: the style loss falls by
    more than 30x (the 256-pixel, 300-iteration target run is in the README)."""
    from minicnn_style_transfer import darknet_features
    net = darknet_features(shared_data / "weights" / "darknet-tiny-tfjs" / "model.json")
    content = load_rgb(shared_data / "images" / "amber.jpg", 64)
    style = load_rgb(shared_data / "images" / "mosaic.jpg", 64)
    st = StyleTransfer(net, GATYS["content_layer"], GATYS["style_layers"], style_weight=1e5,
                       tv_weight=1.0)
    result = st.run(content, style, 40)
    assert result.style_ratio > 30, (result.style_start, result.style_end)
    assert result.history[-1].content > 0           # it moved away from the photo...
    # ... but kept its layout: closer to the content than to a flat grey image
    assert np.abs(result.image - content).mean() < np.abs(0.5 - content).mean()
