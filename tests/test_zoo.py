"""The model zoo: every model builds and runs, parameter counts match the papers / torchvision,
state dict names match torchvision's, blocks are differentiable, initialisation is torchvision's.

Expected numbers are independent of the code under test: torchvision's published parameter counts,
hand arithmetic for the CIFAR models, and key lists written from torchvision's module definitions.
ImageNet models are built under ``minicnn.random.no_init()`` where their weights do not matter (VGG
draws 138M numbers otherwise).
"""

import importlib
import math

import numpy as np
import pytest

import minicnn
from minicnn import ConfigError, ShapeError, nn, testing, zoo
from minicnn.random import no_init

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _build(name, **kwargs):
    with no_init():
        return zoo.MODELS[name](**kwargs)


# -- registry --------------------------------------------------------------------------------------

def test_zoo_registers_every_model_through_the_hook():
    registry = minicnn.get_registry()
    expected = {"mlp", "lenet5", "lenet_caffe", "alexnet", "vgg11", "vgg16", "resnet18", "resnet34",
                "resnet20", "plain20", "densenet121", "densenet_cifar", "nin", "allconv"}
    assert expected <= set(registry.models)
    for name in expected:
        factory, plugin = registry.models[name]
        assert plugin == "minicnn.zoo"
        assert factory is getattr(zoo, name)
    assert zoo.minicnn_models() == zoo.MODELS


# -- parameter counts ------------------------------------------------------------------------------

def _conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def _cifar_resnet_count(n, classes=10, projection=True):
    """He et al. 2015 CIFAR nets by hand: 3x3 convs without bias, each followed by BN (2 per ch)."""
    total = _conv(3, 16, 3, False) + 2 * 16
    cin = 16
    for planes in (16, 32, 64):
        for b in range(n):
            total += _conv(cin, planes, 3, False) + _conv(planes, planes, 3, False) + 4 * planes
            if b == 0 and cin != planes and projection:
                total += _conv(cin, planes, 1, False) + 2 * planes
            cin = planes
    return total + 64 * classes + classes


def _densenet_bc_count(depth, k, classes=10):
    n = (depth - 4) // 6
    c = 2 * k
    total = _conv(3, c, 3, False)
    for block in range(3):
        for _ in range(n):
            total += 2 * c + _conv(c, 4 * k, 1, False) + 2 * 4 * k + _conv(4 * k, k, 3, False)
            c += k
        if block < 2:
            total += 2 * c + _conv(c, c // 2, 1, False)
            c //= 2
    return total + 2 * c + c * classes + classes


PARAMS = [
    # torchvision's documented counts (torchvision.models weights tables)
    ("resnet18", {}, (3, 64, 64), 11_689_512),
    ("resnet34", {}, (3, 64, 64), 21_797_672),
    ("resnet50", {}, (3, 64, 64), 25_557_032),
    ("vgg11", {}, (3, 32, 32), 132_863_336),
    ("vgg16", {}, (3, 32, 32), 138_357_544),
    ("vgg11", {"batch_norm": True}, (3, 32, 32), 132_868_840),
    ("vgg16", {"batch_norm": True}, (3, 32, 32), 138_365_992),
    ("alexnet", {}, (3, 63, 63), 61_100_840),
    ("densenet121", {}, (3, 32, 32), 7_978_856),
    # hand arithmetic
    ("resnet20", {}, (3, 32, 32), _cifar_resnet_count(3)),
    ("resnet56", {}, (3, 32, 32), _cifar_resnet_count(9)),
    ("plain20", {}, (3, 32, 32), _cifar_resnet_count(3, projection=False)),
    ("densenet_cifar", {}, (3, 32, 32), _densenet_bc_count(100, 12)),
    ("densenet_cifar", {"depth": 40}, (3, 32, 32), _densenet_bc_count(40, 12)),
    ("lenet5", {}, (1, 28, 28), _conv(1, 6, 5) + _conv(6, 16, 5) + 401 * 120 + 121 * 84 + 85 * 10),
    ("lenet_caffe", {}, (1, 28, 28), _conv(1, 20, 5) + _conv(20, 50, 5) + 801 * 500 + 501 * 10),
    ("mlp", {}, (1, 28, 28), 785 * 512 + 513 * 512 + 513 * 10),
    ("nin", {}, (3, 32, 32), _conv(3, 192, 5) + _conv(192, 160, 1) + _conv(160, 96, 1)
     + _conv(96, 192, 5) + 2 * _conv(192, 192, 1) + _conv(192, 192, 3) + _conv(192, 192, 1)
     + _conv(192, 10, 1)),
    ("allconv", {}, (3, 32, 32), _conv(3, 96, 3) + 2 * _conv(96, 96, 3) + _conv(96, 192, 3)
     + 3 * _conv(192, 192, 3) + _conv(192, 192, 1) + _conv(192, 10, 1)),
]


@pytest.mark.parametrize("name, kwargs, shape, expected", PARAMS,
                         ids=[f"{p[0]}{'-' + '-'.join(map(str, p[1].values())) if p[1] else ''}"
                              for p in PARAMS])
def test_parameter_counts(name, kwargs, shape, expected):
    model = _build(name, **kwargs)
    assert model.num_parameters() == expected
    summary = model.summary(shape)
    assert summary.total_params == expected and summary.frozen == 0


def test_cifar_parameter_counts_match_the_papers():
    # He et al. 2015 table 6 (option A: no projection parameters): 0.27M and 0.85M; option B adds
    # the two projections, 16*32 + 2*32 + 32*64 + 2*64 = 2,752 parameters, at any depth.
    assert _cifar_resnet_count(3, projection=False) == 269_722
    assert zoo.resnet20().num_parameters() - zoo.plain20().num_parameters() == 2_752
    assert round(zoo.resnet56().num_parameters() / 1e6, 2) == 0.86
    # Huang et al. 2017 table 2: DenseNet-BC (L=100, k=12) 0.8M; DenseNet (L=40, k=12) 1.0M
    assert round(_build("densenet_cifar").num_parameters() / 1e6, 1) == 0.8
    plain40 = zoo.densenet_cifar(depth=40, bottleneck=False, compression=1.0)
    assert round(plain40.num_parameters() / 1e6, 1) == 1.0


# -- forward passes --------------------------------------------------------------------------------

FORWARD = [
    # name, kwargs, input shape, output shape, real weights (False: zeros, shapes only)
    ("mlp", {}, (2, 1, 28, 28), (2, 10), True),
    ("mlp", {"in_features": 12, "hidden": (7,), "dropout": 0.5}, (3, 12), (3, 10), True),
    ("lenet5", {}, (2, 1, 28, 28), (2, 10), True),
    ("lenet5", {"classic": True, "num_classes": 4, "in_channels": 3}, (2, 3, 28, 28), (2, 4), True),
    ("lenet_caffe", {}, (2, 1, 28, 28), (2, 10), True),
    ("alexnet", {}, (1, 3, 63, 63), (1, 1000), False),
    ("vgg11", {}, (1, 3, 32, 32), (1, 1000), False),
    ("vgg16", {"batch_norm": True, "num_classes": 5}, (2, 3, 32, 32), (2, 5), False),
    ("resnet18", {}, (1, 3, 64, 64), (1, 1000), True),
    ("resnet34", {"num_classes": 7, "in_channels": 1}, (1, 1, 64, 64), (1, 7), True),
    ("resnet50", {}, (2, 3, 32, 32), (2, 1000), True),
    ("resnet20", {}, (2, 3, 32, 32), (2, 10), True),
    ("plain20", {}, (2, 3, 32, 32), (2, 10), True),
    ("densenet121", {}, (2, 3, 29, 29), (2, 1000), True),
    ("densenet_cifar", {"depth": 40}, (2, 3, 32, 32), (2, 10), True),
    ("densenet_cifar", {"depth": 10, "bottleneck": False, "compression": 1.0}, (2, 3, 16, 16),
     (2, 10), True),
    ("nin", {}, (2, 3, 32, 32), (2, 10), True),
    ("allconv", {}, (2, 3, 32, 32), (2, 10), True),
]


@pytest.mark.parametrize("name, kwargs, shape, out_shape, real", FORWARD,
                         ids=[f"{f[0]}-{'x'.join(map(str, f[2]))}" for f in FORWARD])
def test_forward_shapes(name, kwargs, shape, out_shape, real):
    minicnn.manual_seed(0)
    model = zoo.MODELS[name](**kwargs) if real else _build(name, **kwargs)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = model(x)
    assert y.shape == out_shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    if real:
        assert np.std(y) > 0     # the weights reached the output


def test_resnet20_backward_fills_every_gradient():
    minicnn.manual_seed(1)
    model = zoo.resnet20()
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = model(x)
    gx = model.backward(np.ones_like(y))
    assert gx.shape == x.shape and np.isfinite(gx).all()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape, name
        assert np.isfinite(param.grad).all(), name


@pytest.mark.parametrize("name, kwargs, shape", [
    ("alexnet", {}, (1, 3, 62, 62)),
    ("densenet121", {}, (2, 3, 28, 28)),
    ("lenet5", {}, (1, 1, 32, 32)),
    ("resnet18", {}, (1, 1, 64, 64)),
    ("allconv", {}, (2, 3, 8, 8)),
    ("nin", {}, (2, 3, 3, 3)),
    ("vgg11", {}, (1, 3, 31, 31)),
])
def test_inputs_that_do_not_fit_raise_shape_errors(name, kwargs, shape):
    model = _build(name, **kwargs)
    with pytest.raises(ShapeError, match=r"node '.+' \("):
        model(np.zeros(shape, np.float32))


def test_smallest_documented_inputs_work():
    for name, size in (("allconv", 9), ("nin", 4), ("alexnet", 63), ("densenet121", 29),
                       ("vgg11", 32), ("densenet_cifar", 4), ("resnet20", 1)):
        model = _build(name)
        assert model(np.zeros((2, 3, size, size), np.float32)).shape[0] == 2


@pytest.mark.parametrize("call, match", [
    (lambda: zoo.resnet18(num_classes=0), "resnet18: num_classes"),
    (lambda: zoo.lenet5(in_channels=-1), "lenet5: in_channels"),
    (lambda: zoo.cifar_resnet(depth=21), "resnet21: depth must be 6n"),
    (lambda: zoo.densenet_cifar(depth=41), r"densenet_cifar\(depth=41\): depth"),
    (lambda: zoo.build_vgg(12), "build_vgg: depth must be one of"),
    (lambda: zoo.mlp(hidden=(4, 0)), "mlp: hidden"),
    (lambda: zoo.alexnet(dropout=1.0), "alexnet: dropout"),
    (lambda: zoo.basic_block(4, 8, shortcut="identity"), "identity shortcut needs stride 1"),
    (lambda: zoo.basic_block(4, 4, shortcut="zero"), "shortcut must be"),
])
def test_bad_options_raise_config_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# -- torchvision names -----------------------------------------------------------------------------

def _bn(prefix, c):
    return {f"{prefix}.{k}": (() if k == "num_batches_tracked" else (c,)) for k in BN}


def _torchvision_resnet18():
    """torchvision.models.resnet18().state_dict(): names and shapes, in registration order."""
    keys = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            p = f"layer{stage}.{b}"
            stride_in = cin if b == 0 else planes
            keys[f"{p}.conv1.weight"] = (planes, stride_in, 3, 3)
            keys.update(_bn(f"{p}.bn1", planes))
            keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            keys.update(_bn(f"{p}.bn2", planes))
            if b == 0 and stage > 1:
                keys[f"{p}.downsample.0.weight"] = (planes, cin, 1, 1)
                keys.update(_bn(f"{p}.downsample.1", planes))
        cin = planes
    keys["fc.weight"], keys["fc.bias"] = (1000, 512), (1000,)
    return keys


def _params_only(keys):
    return [k for k in keys if not k.endswith(("running_mean", "running_var",
                                               "num_batches_tracked"))]


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_resnet18_state_dict_matches_torchvision():
    expected = _torchvision_resnet18()
    assert len(expected) == 122          # torchvision's resnet18 state dict has 122 entries
    model = _build("resnet18")
    assert _shapes(model) == expected
    # parameters come in torchvision's order (optimiser state and weight files line up)
    assert [n for n, _ in model.named_parameters()] == _params_only(expected)
    # a torchvision-shaped state dict loads strictly, and the values land by name
    rng = np.random.default_rng(0)
    state = {k: rng.standard_normal(s).astype(np.float32) if s else np.int64(7)
             for k, s in expected.items()}
    model.load_state_dict(state)
    np.testing.assert_array_equal(model["layer2"][0]["downsample"][0].weight.data,
                                  state["layer2.0.downsample.0.weight"])
    np.testing.assert_array_equal(model["layer3"][1]["bn2"].running_var,
                                  state["layer3.1.bn2.running_var"])


def test_resnet34_and_50_sampled_names():
    r34 = _shapes(_build("resnet34"))
    assert r34["layer3.5.conv2.weight"] == (256, 256, 3, 3)
    assert r34["layer4.0.downsample.0.weight"] == (512, 256, 1, 1)
    assert "layer1.0.downsample.0.weight" not in r34 and "layer4.3.conv1.weight" not in r34
    r50 = _shapes(_build("resnet50"))
    assert r50["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert r50["layer2.0.conv2.weight"] == (128, 128, 3, 3)       # stride on the 3x3 (v1.5)
    assert r50["layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    assert r50["layer4.2.bn3.running_mean"] == (2048,)
    assert r50["fc.weight"] == (1000, 2048)
    assert len(r50) == 320                                         # torchvision: 320 entries


def test_vgg11_state_dict_matches_torchvision():
    convs = {0: (64, 3), 3: (128, 64), 6: (256, 128), 8: (256, 256), 11: (512, 256),
             13: (512, 512), 16: (512, 512), 18: (512, 512)}
    expected = {}
    for i, (cout, cin) in convs.items():
        expected[f"features.{i}.weight"] = (cout, cin, 3, 3)
        expected[f"features.{i}.bias"] = (cout,)
    for i, (cout, cin) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        expected[f"classifier.{i}.weight"] = (cout, cin)
        expected[f"classifier.{i}.bias"] = (cout,)
    model = _build("vgg11")
    assert _shapes(model) == expected
    assert [n for n, _ in model.named_parameters()] == list(expected)
    assert isinstance(model["features"], nn.Sequential) and len(model["features"]) == 21


def test_vgg16_bn_and_alexnet_sampled_names():
    bn = _shapes(_build("vgg16", batch_norm=True))
    # vgg16_bn: conv, bn, relu per layer; the last conv is features.40, its bn features.41
    assert bn["features.40.weight"] == (512, 512, 3, 3)
    assert bn["features.41.running_var"] == (512,) and bn["features.41.num_batches_tracked"] == ()
    assert bn["features.1.weight"] == (64,) and "features.2.weight" not in bn
    alex = _shapes(_build("alexnet"))
    assert sorted(alex) == sorted(f"{part}.{i}.{w}" for part, idx in
                                  (("features", (0, 3, 6, 8, 10)), ("classifier", (1, 4, 6)))
                                  for i in idx for w in ("weight", "bias"))
    assert alex["features.0.weight"] == (64, 3, 11, 11)
    assert alex["classifier.1.weight"] == (4096, 9216)


def _torchvision_densenet121():
    keys = {"features.conv0.weight": (64, 3, 7, 7), **_bn("features.norm0", 64)}
    c = 64
    for block, layers in enumerate((6, 12, 24, 16), start=1):
        for i in range(1, layers + 1):
            p = f"features.denseblock{block}.denselayer{i}"
            keys.update(_bn(f"{p}.norm1", c))
            keys[f"{p}.conv1.weight"] = (128, c, 1, 1)
            keys.update(_bn(f"{p}.norm2", 128))
            keys[f"{p}.conv2.weight"] = (32, 128, 3, 3)
            c += 32
        if block < 4:
            keys.update(_bn(f"features.transition{block}.norm", c))
            keys[f"features.transition{block}.conv.weight"] = (c // 2, c, 1, 1)
            c //= 2
    keys.update(_bn("features.norm5", c))
    keys["classifier.weight"], keys["classifier.bias"] = (1000, 1024), (1000,)
    return keys


def test_densenet121_state_dict_matches_torchvision():
    expected = _torchvision_densenet121()
    assert len(expected) == 727
    # a sample written out in full, from torchvision's densenet121().state_dict()
    assert expected["features.denseblock3.denselayer24.conv1.weight"] == (128, 992, 1, 1)
    assert expected["features.transition3.conv.weight"] == (512, 1024, 1, 1)
    assert expected["features.denseblock4.denselayer16.norm1.running_mean"] == (992,)
    model = _build("densenet121")
    assert _shapes(model) == expected
    assert [n for n, _ in model.named_parameters()] == _params_only(expected)


# -- blocks: semantics and gradients ---------------------------------------------------------------

@pytest.mark.parametrize("cin, cout, stride", [(2, 2, 1), (2, 3, 2), (2, 2, 2)])
def test_basic_block_gradcheck(cin, cout, stride):
    minicnn.manual_seed(2)
    block = zoo.basic_block(cin, cout, stride)
    projected = cin != cout or stride != 1
    assert any(n.startswith("downsample.0") for n, _ in block.named_parameters()) == projected
    testing.gradcheck(block, [testing.tie_free((2, cin, 5, 5), seed=3)])


def test_bottleneck_and_dense_block_gradcheck():
    minicnn.manual_seed(4)
    testing.gradcheck(zoo.bottleneck(4, 2, stride=2, expansion=2),
                      [testing.tie_free((2, 4, 4, 4), seed=5)], max_elements=40)
    testing.gradcheck(zoo.dense_block(2, 2, growth_rate=2, bn_size=1),
                      [testing.tie_free((2, 2, 4, 4), seed=6)], max_elements=40)


def test_basic_block_adds_the_skip_before_the_last_relu():
    minicnn.manual_seed(5)
    x = testing.tie_free((2, 3, 6, 6), seed=7)
    identity = zoo.basic_block(3, 3)
    y = identity(x)
    np.testing.assert_allclose(y, np.maximum(identity.activation("bn2") + x, 0), rtol=1e-6)
    projection = zoo.basic_block(3, 4, stride=2)
    y = projection(x)
    assert y.shape == (2, 4, 3, 3)
    skip = projection.activation("downsample.1")
    np.testing.assert_allclose(y, np.maximum(projection.activation("bn2") + skip, 0), rtol=1e-6)
    # the projection is a strided 1x1 convolution: it sees only even rows and columns
    w = projection["downsample"][0].weight.data[:, :, 0, 0]
    np.testing.assert_allclose(projection.activation("downsample.0"),
                               np.einsum("oc,nchw->nohw", w, x[:, :, ::2, ::2]), rtol=1e-5,
                               atol=1e-6)
    plain = zoo.basic_block(3, 4, stride=2, shortcut="none")
    np.testing.assert_allclose(plain(x), np.maximum(plain.activation("bn2"), 0))


def test_plain20_is_resnet20_without_skips():
    res, plain = zoo.resnet20(), zoo.plain20()
    types = lambda m: [type(mod).__name__ for _, mod in m.named_modules()]  # noqa: E731
    assert "Add" not in types(plain)
    assert types(res).count("Add") == 9
    assert sorted(k for k in _shapes(res) if "downsample.0" in k) == \
        ["layer2.0.downsample.0.weight", "layer3.0.downsample.0.weight"]
    plain_keys = set(_shapes(plain))
    assert plain_keys == {k for k in _shapes(res) if "downsample" not in k}


def test_densenet_block_concatenates_every_earlier_output():
    minicnn.manual_seed(6)
    block = zoo.dense_block(3, 4, growth_rate=2)
    x = testing.tie_free((2, 4, 5, 5), seed=8)
    y = block(x)
    assert y.shape == (2, 4 + 3 * 2, 5, 5)
    np.testing.assert_array_equal(y[:, :4], x)
    for i in range(1, 4):
        np.testing.assert_array_equal(y[:, 4 + 2 * (i - 1):4 + 2 * i],
                                      block.activation(f"denselayer{i}.conv2"))


def test_lenet_variants_use_the_documented_layers():
    classic = {type(m).__name__ for _, m in zoo.lenet5(classic=True).named_modules()}
    modern = {type(m).__name__ for _, m in zoo.lenet5().named_modules()}
    assert {"Tanh", "AvgPool2d"} <= classic and not {"ReLU", "MaxPool2d"} & classic
    assert {"ReLU", "MaxPool2d"} <= modern and not {"Tanh", "AvgPool2d"} & modern
    assert zoo.lenet5().summary().total_params == 61_706      # fixed 1x28x28 input: no shape needed


# -- initialisation --------------------------------------------------------------------------------

def test_resnet_initialisation_follows_torchvision():
    minicnn.manual_seed(7)
    model = zoo.resnet18()
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            w = module.weight.data
            expected = math.sqrt(2.0 / (w.shape[0] * w.shape[2] * w.shape[3]))   # fan_out
            assert abs(w.std() / expected - 1) < 0.1, name
            assert abs(w.mean()) < 0.1 * expected, name
        elif isinstance(module, nn.BatchNorm2d):
            assert (module.weight.data == 1).all() and (module.bias.data == 0).all(), name
    fc = model["fc"]
    bound = 1 / math.sqrt(512)
    assert np.abs(fc.weight.data).max() <= bound and fc.weight.data.std() > 0.5 * bound / 3 ** 0.5
    assert np.abs(fc.bias.data).max() <= bound
    assert fc.weight.data.dtype == np.float32


def test_zero_init_residual_zeroes_the_last_bn_of_each_block():
    model = zoo.resnet20(zero_init_residual=True)
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            last = name.endswith(".bn2")
            assert (module.weight.data == (0 if last else 1)).all(), name
    # every residual branch is then zero: in eval mode each block is relu(shortcut)
    model.eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    model(x)
    after_stem = model.activation("relu")
    np.testing.assert_allclose(model.activation("layer1.2.relu_out"), after_stem, rtol=1e-6)


def test_vgg_and_densenet_initialisation_helpers():
    from minicnn.zoo import _init
    densenet = importlib.import_module("minicnn.zoo.densenet")
    vgg = importlib.import_module("minicnn.zoo.vgg")
    minicnn.manual_seed(8)
    with no_init():
        conv, linear = nn.Conv2d(16, 32, 3), nn.Linear(300, 400)
    head = nn.Sequential(conv, nn.BatchNorm2d(32), nn.Flatten(), linear)
    _init.init_modules(head, conv=_init.conv_kaiming_fan_out, linear=vgg._linear_init)
    assert abs(conv.weight.data.std() / math.sqrt(2 / (32 * 9)) - 1) < 0.05
    assert (conv.bias.data == 0).all() and (linear.bias.data == 0).all()
    assert abs(linear.weight.data.std() / 0.01 - 1) < 0.05
    _init.init_modules(head, conv=densenet._conv_init, linear=densenet._classifier_init)
    assert abs(conv.weight.data.std() / math.sqrt(2 / (16 * 9)) - 1) < 0.05     # fan_in
    assert (linear.bias.data == 0).all() and np.abs(linear.weight.data).max() <= 1 / math.sqrt(300)


def test_weights_are_reproducible_with_manual_seed():
    def weights(seed, name):
        minicnn.manual_seed(seed)
        return zoo.MODELS[name]().state_dict()

    for name in ("resnet20", "densenet_cifar", "lenet5"):
        a, b, c = weights(3, name), weights(3, name), weights(4, name)
        assert all(np.array_equal(a[k], b[k]) for k in a), name
        assert not all(np.array_equal(a[k], c[k]) for k in a if a[k].size > 1), name


def test_no_init_builds_without_drawing():
    minicnn.manual_seed(9)
    expected = minicnn.random.generator().random()
    minicnn.manual_seed(9)
    with no_init():
        model = zoo.resnet20()
    assert minicnn.random.generator().random() == expected    # the stream did not move
    assert all((p.data == 0).all() for n, p in model.named_parameters() if "bn" not in n
               and "downsample.1" not in n)
