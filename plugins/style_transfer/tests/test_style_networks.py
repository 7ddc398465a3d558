"""Feature networks: standard layer names on every backbone, frozen weights, pooling swap, VGG-19
weights in torchvision's layout, Tiny Darknet through the Keras / TF.js importer."""

import numpy as np
import pytest
from minicnn import ConfigError, nn

from minicnn_style_transfer import (
    GATYS,
    calibration_image,
    darknet_features,
    feature_network,
    random_features,
    vgg19_features,
)

GATYS_LAYERS = [GATYS["content_layer"], *GATYS["style_layers"]]


def _types(net):
    return [node.module.type_name for node in net.model.nodes]


def test_random_network_names_shapes_and_frozen_weights():
    net = random_features(seed=0)
    assert net.layer_names == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    assert all(not p.requires_grad for p in net.model.parameters())
    assert not net.model.training
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 48, 64)).astype(np.float32)
    feats = net.features(x, GATYS_LAYERS)
    assert feats["conv1_1"].shape == (1, 32, 48, 64)
    assert feats["conv2_1"].shape == (1, 64, 24, 32)
    assert feats["conv4_2"].shape == (1, 128, 6, 8)
    assert feats["conv5_1"].shape == (1, 128, 3, 4)
    for a in feats.values():                       # rectified, and not dead
        assert a.min() >= 0 and (a > 0).mean() > 0.2
    assert "AvgPool2d" in _types(net) and "MaxPool2d" not in _types(net)
    assert "MaxPool2d" in _types(random_features(pooling="max"))


def test_random_network_is_reproducible_from_its_seed():
    a, b, c = random_features(seed=3), random_features(seed=3), random_features(seed=4)
    for (name, pa), (_, pb), (_, pc) in zip(a.model.named_parameters(), b.model.named_parameters(),
                                            c.model.named_parameters(), strict=True):
        np.testing.assert_array_equal(pa.data, pb.data)
        if name.startswith("conv") and name.endswith("weight"):
            assert not np.array_equal(pa.data, pc.data)


def test_random_network_filters_are_normalised_on_the_calibration_image():
    """Every filter's mean activation on the dead-leaves image is 1, at every depth."""
    net = random_features(seed=2, widths=(8, 8, 16, 16, 16))
    image = calibration_image(seed=2)
    assert image.shape == (1, 3, 256, 256) and 0 <= image.min() and image.max() <= 1
    assert image.std() > 0.15                              # edges and colours, not flat grey
    feats = net.features(image, net.layer_names)
    for layer, a in feats.items():
        np.testing.assert_allclose(a.mean(axis=(0, 2, 3)), 1.0, rtol=1e-4, err_msg=layer)


def test_unknown_layer_and_network_are_config_errors_listing_the_choices():
    net = random_features()
    with pytest.raises(ConfigError, match="no layer named 'conv6_1'; layers: conv1_1, conv2_1"):
        net.node("conv6_1")
    with pytest.raises(ConfigError, match="unknown feature network 'alexnet'; known: vgg19"):
        feature_network("alexnet")
    with pytest.raises(ConfigError, match="vgg19 needs a weights file"):
        feature_network("vgg19")
    with pytest.raises(ConfigError, match="pooling must be 'avg' or 'max'"):
        random_features(pooling="l2")


def test_vgg19_loads_torchvision_names_and_ignores_the_classifier(tmp_path):
    """A safetensors file in torchvision's layout (as the README's conversion writes it)."""
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    reference = vgg19_features(None, pooling="max")
    state = {}
    convs = [m for m in (n.module for n in reference.model.nodes) if isinstance(m, nn.Conv2d)]
    convs = convs[1:]                                              # skip the normalisation
    indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert len(convs) == len(indices)
    for i, conv in zip(indices, convs, strict=True):
        state[f"features.{i}.weight"] = rng.standard_normal(conv.weight.shape).astype(np.float32)
        state[f"features.{i}.bias"] = rng.standard_normal(conv.bias.shape).astype(np.float32)
    state["classifier.0.weight"] = np.zeros((4, 3), np.float32)   # ignored
    path = tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    net = vgg19_features(path)
    assert net.layer_names[:3] == ["conv1_1", "conv1_2", "conv2_1"]
    assert net.layer_names[-1] == "conv5_4" and len(net.layer_names) == 16
    assert net.taps["conv4_2"] == "relu4_2"
    np.testing.assert_array_equal(net.model["conv4_2"].weight.data, state["features.21.weight"])
    np.testing.assert_array_equal(net.model["conv1_1"].bias.data, state["features.0.bias"])
    assert [n.name for n in net.model.nodes if n.module.type_name == "AvgPool2d"] == \
        ["pool1", "pool2", "pool3", "pool4"]
    # ImageNet normalisation comes first: a mean-coloured image is all zeros after it
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1) * np.ones((1, 3, 4, 4),
                                                                                    np.float32)
    np.testing.assert_allclose(net.model["normalize"](mean), 0.0, atol=1e-6)
    del state["features.34.weight"]
    save_file(state, str(path))
    with pytest.raises(ConfigError, match=r"lacks 1 VGG-19 convolution weight.*features\.34"):
        vgg19_features(path)


def test_vgg19_conv5_1_at_32_pixels():
    net = vgg19_features(None)
    x = np.full((1, 3, 32, 32), 0.5, np.float32)
    feats = net.features(x, ["conv1_1", "conv4_2", "conv5_1"])
    assert feats["conv1_1"].shape == (1, 64, 32, 32)
    assert feats["conv4_2"].shape == (1, 512, 4, 4)
    assert feats["conv5_1"].shape == (1, 512, 2, 2)


def test_darknet_names_and_faithful_layers(shared_data):
    import minicnn
    path = shared_data / "weights" / "darknet-tiny-tfjs" / "model.json"
    net = darknet_features(path, pooling="max")
    assert net.layer_names == ["conv1_1", "conv2_1", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
                               "conv4_1", "conv4_2", "conv4_3", "conv4_4",
                               "conv5_1", "conv5_2", "conv5_3", "conv5_4", "conv5_5"]
    assert net.taps["conv4_2"] == "leaky_re_lu_8" and net.taps["conv5_1"] == "leaky_re_lu_11"
    assert all(not p.requires_grad for p in net.model.parameters())
    # with max pooling the chain is the imported network itself: same activations
    source = minicnn.io.import_keras_tfjs(path).eval()
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
    source(x)
    feats = net.features(x, ["conv1_1", "conv4_2", "conv5_5"])
    for layer in ("conv1_1", "conv4_2", "conv5_5"):
        np.testing.assert_allclose(feats[layer], source.activation(net.taps[layer]),
                                   rtol=1e-5, atol=1e-5)
    # any size, and average pooling by default
    avg = darknet_features(path)
    assert "MaxPool2d" not in _types(avg) and _types(avg).count("AvgPool2d") == 4
    assert avg.features(x[:, :, :40, :72], ["conv5_1"])["conv5_1"].shape == (1, 64, 2, 4)
