"""CAM against a hand-computed weighted sum, Grad-CAM = ReLU(CAM) / (h w) on a GAP + Linear
model, Grad-CAM and input gradients against finite differences, SmoothGrad, targets, errors."""

import minicnn
import numpy as np
import pytest
from minicnn import nn
from saliency_models import (
    SQUARE,
    bright_square_model,
    gap_linear,
    pool_linear,
    skip_model,
    square_image,
)

from minicnn_saliency import SaliencyError, cam, grad_cam, input_gradient, saliency


def _images(n=2, c=2, h=6, w=7, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def test_cam_is_the_weighted_sum_of_the_feature_maps():
    model = gap_linear(channels=4, classes=3, dropout=True, softmax=True).eval()
    x = _images()
    result = cam(model, x, target=[2, 0])
    conv = model["conv"]
    w, b = conv.weight.data.astype(np.float64), conv.bias.data.astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    fc_w = model["fc"].weight.data.astype(np.float64)
    for n, k in enumerate((2, 0)):
        want = np.zeros((6, 7))
        for c in range(4):                      # the feature map by loops, then sum_c W[k,c] A_c
            feature = np.zeros((6, 7))
            for i in range(6):
                for j in range(7):
                    feature[i, j] = max(0.0, (xp[n, :, i:i + 3, j:j + 3] * w[c]).sum() + b[c])
            want += fc_w[k, c] * feature
        np.testing.assert_allclose(result.maps[n], want, rtol=1e-5, atol=1e-6)
    assert result.layer == "relu" and result.method == "cam" and result.input_size == (6, 7)
    # the map's mean plus the bias is the logit (the scores are taken before the softmax)
    logits = result.scores[np.arange(2), [2, 0]]
    np.testing.assert_allclose(result.maps.mean(axis=(1, 2)) + model["fc"].bias.data[[2, 0]],
                               logits, rtol=1e-5)
    probs = model(x)
    np.testing.assert_allclose(np.exp(result.scores) / np.exp(result.scores).sum(1, keepdims=True),
                               probs, rtol=1e-5)


def test_cam_of_class_maps_is_the_map_itself():
    minicnn.manual_seed(0)
    x = minicnn.Input((1, None, None))
    maps = nn.Conv2d(1, 3, 3, padding=1)(x, name="classes")
    model = minicnn.Model(x, nn.Flatten()(nn.GlobalAvgPool2d()(maps, name="gap"), name="flat"))
    batch = _images(c=1)
    result = cam(model, batch)
    model(batch)
    features = model.activation("classes")
    np.testing.assert_array_equal(result.classes, result.scores.argmax(1))
    np.testing.assert_allclose(result.maps, features[np.arange(2), result.classes], rtol=1e-6)


@pytest.mark.parametrize("target", [None, 1, [0, 2]])
def test_grad_cam_on_a_gap_linear_model_is_relu_of_cam_over_the_map_size(target):
    """At the pooled features, d y_k / d A_cij = W[k, c] / (h w): Grad-CAM = ReLU(CAM) / (h w)."""
    model = gap_linear(channels=5, classes=3, seed=4).double().eval()
    x = _images(h=5, w=6).astype(np.float64)
    c = cam(model, x, target)
    g = grad_cam(model, x, target)
    np.testing.assert_array_equal(c.classes, g.classes)
    assert g.layer == c.layer == "relu"
    np.testing.assert_allclose(g.maps, np.maximum(c.maps, 0) / 30, rtol=1e-12, atol=1e-15)
    assert np.any(c.maps < 0) and np.any(c.maps > 0)          # the ReLU mattered
    np.testing.assert_allclose(g.heat(), np.stack([np.maximum(m, 0) / np.maximum(m, 0).max()
                                                   for m in c.maps]), rtol=1e-12)


@pytest.mark.parametrize("build, layer", [(pool_linear, "A"), (skip_model, "A"),
                                          (pool_linear, "c1")])
def test_grad_cam_matches_finite_differences(build, layer):
    """alpha_c = mean_ij d y / d A_cij = (d y / d bias_c) / (h w) for a conv node A: central
    differences of the whole model in the bias, then the weighted sum of the activations."""
    model = build().double().eval()
    x = minicnn.testing.tie_free((2,) + model.inputs[0].shape, seed=5, dtype=np.float64)
    result = grad_cam(model, x, target=[1, 0], layer=layer, relu=False)
    bias, h = model[layer].bias.data, 1e-6
    alpha = np.zeros((2, bias.size))
    for c in range(bias.size):
        keep = bias[c]
        bias[c] = keep + h
        up = model(x)[[0, 1], [1, 0]]
        bias[c] = keep - h
        down = model(x)[[0, 1], [1, 0]]
        bias[c] = keep
        alpha[:, c] = (up - down) / (2 * h)
    model(x)
    value = model.activation(layer)
    alpha /= value.shape[2] * value.shape[3]
    want = np.einsum("nc,nchw->nhw", alpha, value)
    np.testing.assert_allclose(result.maps, want, rtol=1e-6, atol=1e-9)
    relu = grad_cam(model, x, target=[1, 0], layer=layer)
    np.testing.assert_allclose(relu.maps, np.maximum(want, 0), rtol=1e-6, atol=1e-9)


def test_input_gradient_matches_finite_differences():
    model = pool_linear(seed=1).double().eval()
    x = minicnn.testing.tie_free((1, 2, 8, 8), seed=6, dtype=np.float64)
    result = input_gradient(model, x, target=2)
    grad, h = np.zeros(x.shape), 1e-6
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (model(up)[0, 2] - model(down)[0, 2]) / (2 * h)
    np.testing.assert_allclose(result.maps, np.abs(grad).max(axis=1), rtol=1e-6, atol=1e-9)
    assert result.method == "gradient" and result.layer is None and result.maps.shape == (1, 8, 8)


def test_smoothgrad_of_a_linear_model_is_the_gradient():
    """A model linear in its input has the same gradient everywhere: noise changes nothing."""
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Flatten(),
                          nn.Linear(3 * 36, 4)).double()
    x = _images(h=6, w=6).astype(np.float64)
    plain = input_gradient(model, x, target=3)
    smooth = input_gradient(model, x, target=3, smooth=5, noise=0.3, batch_size=2)
    assert smooth.method == "smoothgrad"
    np.testing.assert_allclose(smooth.maps, plain.maps, rtol=1e-10)


def test_smoothgrad_averages_noisy_gradients_reproducibly():
    model = pool_linear(seed=2).double().eval()
    x = minicnn.testing.tie_free((1, 2, 8, 8), seed=7, dtype=np.float64)
    a = input_gradient(model, x, target=0, smooth=4, noise=0.2, seed=3)
    b = input_gradient(model, x, target=0, smooth=4, noise=0.2, seed=3, batch_size=3)
    np.testing.assert_allclose(a.maps, b.maps, rtol=1e-12)
    rng = np.random.default_rng(3)
    sigma = 0.2 * (x.max() - x.min())
    grads = []
    for _ in range(4):
        noisy = x + rng.normal(0.0, sigma, x.shape)
        model(noisy)
        onehot = np.zeros((1, 3))
        onehot[0, 0] = 1
        grads.append(model.backward(onehot))
    np.testing.assert_allclose(a.maps, np.abs(np.mean(grads, axis=0)).max(axis=1), rtol=1e-10)
    assert not np.allclose(a.maps, input_gradient(model, x, target=0).maps)


@pytest.mark.parametrize("method", ["cam", "gradcam", "gradient"])
def test_the_heat_peaks_in_the_bright_square(method):
    model = bright_square_model()
    image = square_image()
    result = saliency(model, image, method, target=0)
    assert result.classes[0] == 0 and result.scores[0, 0] > 0
    heat = result.heat()[0]
    assert heat.shape == (40, 50) and heat.max() == 1.0
    i, j = np.unravel_index(np.argmax(heat), heat.shape)
    rows, cols = SQUARE
    assert rows.start <= i < rows.stop and cols.start <= j < cols.stop
    inside = np.zeros(heat.shape, bool)
    inside[SQUARE] = True
    assert heat[inside].mean() > 5 * max(heat[~inside].mean(), 1e-3)


def test_train_mode_models_are_explained_in_eval_mode():
    """Dropout off and batch norm on running statistics during saliency; modes restored."""
    minicnn.manual_seed(1)
    x = minicnn.Input((2, None, None))
    h = nn.ReLU()(nn.BatchNorm2d(3)(nn.Conv2d(2, 3, 3, padding=1)(x), name="bn"), name="relu")
    h = nn.Dropout(0.5)(nn.Flatten()(nn.GlobalAvgPool2d()(h)))
    model = minicnn.Model(x, nn.Linear(3, 2)(h, name="fc"))
    model["bn"].running_mean[...] = [0.1, -0.2, 0.3]
    batch = _images()
    trained = grad_cam(model.train(), batch, target=1)
    assert model.training and model["bn"].training
    evaluated = grad_cam(model.eval(), batch, target=1)
    np.testing.assert_allclose(trained.maps, evaluated.maps, rtol=1e-6)
    np.testing.assert_allclose(trained.scores, model(batch), rtol=1e-6)


def test_zoo_models():
    minicnn.manual_seed(0)
    resnet = minicnn.zoo.resnet20(num_classes=4)
    x = _images(n=1, c=3, h=8, w=8)
    result = grad_cam(resnet, x)
    assert result.layer == "layer3.2.relu_out" and result.maps.shape == (1, 2, 2)
    c = cam(resnet, x, target=result.classes)
    assert c.layer == "layer3.2.relu_out"
    np.testing.assert_allclose(result.maps, np.maximum(c.maps, 0) / 4, rtol=1e-4, atol=1e-7)
    lenet = minicnn.zoo.lenet5(num_classes=3)
    g = grad_cam(lenet, _images(n=1, c=1, h=28, w=28), target=1)
    assert g.layer == "pool2" and g.maps.shape == (1, 5, 5) and g.classes[0] == 1
    assert grad_cam(lenet, _images(n=1, c=1, h=28, w=28), layer="act1").maps.shape == (1, 28, 28)


def test_errors():
    model = gap_linear()
    with pytest.raises(SaliencyError, match="class 3 is out of range: the model has 3 classes"):
        cam(model, _images(), target=3)
    with pytest.raises(SaliencyError, match="one int per sample"):
        grad_cam(model, _images(), target=[0, 1, 2])
    with pytest.raises(SaliencyError, match=r"expected an image \(C, H, W\) or a batch"):
        input_gradient(model, np.zeros((6, 7), np.float32))
    with pytest.raises(SaliencyError, match="unknown saliency method 'lime'"):
        saliency(model, _images(), "lime")
    with pytest.raises(SaliencyError, match="takes no layer"):
        saliency(model, _images(), "cam", layer="relu")
    with pytest.raises(SaliencyError, match="no node named 'conv9'"):
        grad_cam(model, _images(), layer="conv9")
    with pytest.raises(SaliencyError, match="non-negative number of samples"):
        input_gradient(model, _images(), smooth=-1)
    with pytest.raises(SaliencyError, match="CAM needs a model ending in global average"):
        cam(pool_linear(), _images(c=2, h=8, w=8))


def test_a_single_image_is_a_batch_of_one():
    model = gap_linear()
    image = _images(n=1)[0]
    result = grad_cam(model, image)
    assert result.maps.shape == (1, 6, 7) and result.classes.shape == (1,)
    np.testing.assert_allclose(result.maps, grad_cam(model, image[None]).maps)
