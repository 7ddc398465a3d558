"""Keras / TF.js layers-model import: synthetic models against a channels-last numpy forward,
hostile manifests and unsupported options, and Tiny Darknet on a real photo (when ../shared/data
exists)."""

import json
import math

import numpy as np
import pytest

from minicnn import Model, ModelFormatError
from minicnn.io import import_keras_tfjs
from minicnn.layers import pad as pad_family
from minicnn.layers import pad_cpu
from minicnn.registry import Registry, set_registry


@pytest.fixture(autouse=True)
def registry_with_pad():
    """The pad family may not be a built-in plugin yet: register it on a fresh registry."""
    registry = Registry(load_entry_points=False)
    if "ConstantPad2d" not in registry.layers:
        registry.register(pad_family, name="minicnn.layers.pad")
        registry.register(pad_cpu, name="minicnn.layers.pad_cpu")
    previous = set_registry(registry)
    yield registry
    set_registry(previous)


# -- writing small TF.js models -----------------------------------------------------------------

def _layer(cls, name, inbound, **config):
    config["name"] = name
    nodes = [[[src, 0, 0, {}] for src in inbound]] if inbound is not None else []
    return {"name": name, "class_name": cls, "config": config, "inbound_nodes": nodes}


def _write(directory, topology, weights, shards=2):
    """model.json plus the weights split over ``shards`` files of one group (manifest order)."""
    blob = b"".join(np.asarray(a, "<f4").tobytes() for _, a in weights)
    cut = len(blob) // shards // 4 * 4
    parts = [blob[:cut], blob[cut:]] if shards == 2 else [blob]
    paths = []
    for i, part in enumerate(parts):
        paths.append(f"group1-shard{i + 1}of{len(parts)}")
        (directory / paths[-1]).write_bytes(part)
    manifest = [{"paths": paths, "weights": [{"name": n, "shape": list(np.shape(a)),
                                              "dtype": "float32"} for n, a in weights]}]
    doc = {"modelTopology": {"keras_version": "2.1.6", "backend": "tensorflow",
                             "model_config": topology}, "weightsManifest": manifest}
    (directory / "model.json").write_text(json.dumps(doc))
    return directory / "model.json"


# -- an independent channels-last forward ---------------------------------------------------------

def _same_pads(size, k, s, d=1):
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_nhwc(x, kh, kw, s, padding, fill):
    if padding == "valid":
        return x
    (t, b), (left, r) = _same_pads(x.shape[1], kh, s), _same_pads(x.shape[2], kw, s)
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=fill)


def conv_nhwc(x, kernel, bias=None, stride=1, padding="valid"):
    kh, kw, _, cout = kernel.shape
    xp = _pad_nhwc(x, kh, kw, stride, padding, 0.0)
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, cout))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]
            out += patch @ kernel[a, b]
    return out if bias is None else out + bias


def maxpool_nhwc(x, k, stride, padding):
    xp = _pad_nhwc(x, k, k, stride, padding, -np.inf)
    oh = (xp.shape[1] - k) // stride + 1
    ow = (xp.shape[2] - k) // stride + 1
    out = np.full((x.shape[0], oh, ow, x.shape[3]), -np.inf)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = xp[:, i * stride:i * stride + k, j * stride:j * stride + k].max((1, 2))
    return out


def bn(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def leaky(x, alpha):
    return np.where(x > 0, x, alpha * x)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# -- a functional image model with uneven "same" padding, a residual add and a concat --------------

def _image_model(tmp_path):
    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.5

    weights = {
        "conv1/kernel": w(3, 3, 3, 4), "conv1/bias": w(4),
        "bn1/gamma": 1 + w(4) * 0.2, "bn1/beta": w(4),
        "bn1/moving_mean": w(4), "bn1/moving_variance": 0.5 + np.abs(w(4)),
        "conv2/kernel": w(1, 1, 4, 4), "conv2/bias": w(4),
        "conv3/kernel": w(1, 1, 8, 2),
        "bn2/gamma": 1 + w(24) * 0.2, "bn2/beta": w(24),
        "bn2/moving_mean": w(24), "bn2/moving_variance": 0.5 + np.abs(w(24)),
        "dense/kernel": w(4 * 3 * 2, 5), "dense/bias": w(5),
    }
    layers = [
        _layer("InputLayer", "image", None, batch_input_shape=[None, 7, 6, 3], dtype="float32"),
        _layer("Conv2D", "conv1", ["image"], filters=4, kernel_size=[3, 3], strides=[2, 2],
               padding="same", data_format="channels_last", dilation_rate=[1, 1],
               activation="relu", use_bias=True),
        _layer("BatchNormalization", "bn1", ["conv1"], axis=-1, momentum=0.99, epsilon=0.001,
               center=True, scale=True),
        _layer("LeakyReLU", "leaky1", ["bn1"], alpha=0.2),
        _layer("MaxPooling2D", "pool1", ["leaky1"], pool_size=[2, 2], strides=[1, 1],
               padding="same", data_format="channels_last"),
        _layer("Conv2D", "conv2", ["pool1"], filters=4, kernel_size=[1, 1], strides=[1, 1],
               padding="valid", activation="linear", use_bias=True),
        _layer("Add", "add", ["pool1", "conv2"]),
        _layer("Concatenate", "concat", ["add", "pool1"], axis=-1),
        _layer("Conv2D", "conv3", ["concat"], filters=2, kernel_size=[1, 1], padding="same",
               activation="tanh", use_bias=False),
        _layer("Flatten", "flatten", ["conv3"], data_format="channels_last"),
        _layer("BatchNormalization", "bn2", ["flatten"], epsilon=0.01),
        _layer("Dense", "dense", ["bn2"], units=5, activation="softmax", use_bias=True),
        _layer("GlobalAveragePooling2D", "gap", ["concat"], data_format="channels_last"),
    ]
    topology = {"class_name": "Model", "config": {
        "name": "tiny", "layers": layers, "input_layers": [["image", 0, 0]],
        "output_layers": [["dense", 0, 0], ["gap", 0, 0]]}}
    return _write(tmp_path, topology, list(weights.items())), weights


def _image_reference(x, p):
    h = np.maximum(conv_nhwc(x, p["conv1/kernel"], p["conv1/bias"], 2, "same"), 0)
    h = leaky(bn(h, p["bn1/gamma"], p["bn1/beta"], p["bn1/moving_mean"],
                 p["bn1/moving_variance"], 0.001), 0.2)
    pool = maxpool_nhwc(h, 2, 1, "same")
    add = pool + conv_nhwc(pool, p["conv2/kernel"], p["conv2/bias"])
    concat = np.concatenate([add, pool], axis=-1)
    c3 = np.tanh(conv_nhwc(concat, p["conv3/kernel"]))
    flat = bn(c3.reshape(len(x), -1), p["bn2/gamma"], p["bn2/beta"], p["bn2/moving_mean"],
              p["bn2/moving_variance"], 0.01)
    dense = softmax(flat @ p["dense/kernel"] + p["dense/bias"])
    return dense, concat.mean((1, 2))


def test_functional_image_model_matches_channels_last_forward(tmp_path):
    path, weights = _image_model(tmp_path)
    model = import_keras_tfjs(path).eval()
    assert isinstance(model, Model)
    names = [n.name for n in model.nodes]
    assert "conv1_pad" in names and "pool1_pad" in names   # uneven "same" padding, made explicit
    assert model["conv1_pad"].padding == (0, 1, 1, 1) and model["conv1"].padding == (0, 0)
    assert model["pool1_pad"].padding == (0, 1, 0, 1) and model["pool1_pad"].value == -np.inf
    x = np.random.default_rng(1).uniform(0, 1, (2, 7, 6, 3)).astype(np.float32)
    dense, gap = model(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    want_dense, want_gap = _image_reference(x.astype(np.float64), weights)
    np.testing.assert_allclose(dense, want_dense, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gap, want_gap, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model["conv1"].weight.data,
                                  weights["conv1/kernel"].transpose(3, 2, 0, 1))


def test_sequential_dense_model(tmp_path):
    rng = np.random.default_rng(2)
    p = {"d1/kernel": rng.standard_normal((6, 5)), "d1/bias": rng.standard_normal(5),
         "bn/gamma": rng.uniform(0.5, 1.5, 5), "bn/beta": rng.standard_normal(5),
         "bn/moving_mean": rng.standard_normal(5), "bn/moving_variance": rng.uniform(0.5, 2, 5),
         "d2/kernel": rng.standard_normal((5, 3))}
    layers = [{"class_name": "Dense", "config": {"name": "d1", "units": 5, "activation": "relu",
                                                 "batch_input_shape": [None, 6]}},
              {"class_name": "BatchNormalization", "config": {"name": "bn", "epsilon": 0.01}},
              {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.4}},
              {"class_name": "Dense", "config": {"name": "d2", "units": 3, "use_bias": False,
                                                 "activation": "tanh"}}]
    path = _write(tmp_path, {"class_name": "Sequential", "config": {"name": "s", "layers": layers}},
                  [(k, v.astype(np.float32)) for k, v in p.items()], shards=1)
    model = import_keras_tfjs(path).eval()
    assert model["drop"].p == pytest.approx(0.4) and model["bn"].momentum == pytest.approx(0.01)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    h = np.maximum(x @ p["d1/kernel"] + p["d1/bias"], 0)
    want = np.tanh(bn(h, p["bn/gamma"], p["bn/beta"], p["bn/moving_mean"],
                      p["bn/moving_variance"], 0.01) @ p["d2/kernel"])
    np.testing.assert_allclose(model(x), want, rtol=1e-4, atol=1e-5)


# -- hostile manifests and unsupported layers ---------------------------------------------------

def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _layers(doc):
    return doc["modelTopology"]["model_config"]["config"]["layers"]


def _conv1(doc):
    return _layers(doc)[1]["config"]


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["weightsManifest"][0]["weights"][0]["shape"].__setitem__(0, 4),
     r"shards \[.*\] hold \d+ bytes, the manifest describes \d+"),
    (lambda d: d["weightsManifest"][0]["paths"].__setitem__(0, "../../etc/passwd"),
     "leaves the model's directory"),
    (lambda d: d["weightsManifest"][0]["paths"].__setitem__(0, "/etc/passwd"),
     "leaves the model's directory"),
    (lambda d: d["weightsManifest"][0]["paths"].__setitem__(0, "nope.bin"), "is missing"),
    (lambda d: d["weightsManifest"][0]["weights"][0].update(dtype="int32"),
     "only unquantized float32"),
    (lambda d: d["weightsManifest"][0]["weights"][0].update(quantization={"dtype": "uint8"}),
     "only unquantized float32"),
    (lambda d: d["weightsManifest"][0]["weights"][0].update(shape=[2**40, 2**40]),
     "describes more than"),
    (lambda d: d["weightsManifest"][0]["weights"][0].update(shape=[-1]), "non-negative"),
    (lambda d: d["weightsManifest"][0]["weights"][0].update(name="other/kernel"),
     "weight 'kernel' is missing"),
    (lambda d: _conv1(d).update(data_format="channels_first"),
     "Keras layer 'conv1': unsupported data_format='channels_first'"),
    (lambda d: _conv1(d).update(padding="causal"), r"'conv1': unsupported padding='causal'"),
    (lambda d: _conv1(d).update(activation="swish"), r"'conv1': unsupported activation 'swish'"),
    (lambda d: _conv1(d).update(depth_multiplier=2), r"'conv1': unsupported option\(s\) "
                                                     r"\['depth_multiplier'\] for Conv2D"),
    (lambda d: _layers(d)[2].update(class_name="LSTM"), "'bn1': unsupported layer class 'LSTM'"),
    (lambda d: _layers(d)[2].update(class_name="run"), "'bn1': unsupported layer class 'run'"),
    (lambda d: _layers(d)[3]["inbound_nodes"].append([["bn1", 0, 0, {}]]),
     "'leaky1': is called 2 times"),
    (lambda d: _layers(d)[3].update(inbound_nodes=[[["ghost", 0, 0, {}]]]),
     "'leaky1': has an inbound tensor"),
    (lambda d: _layers(d)[0]["config"].update(batch_input_shape=[None, 7, 6]),
     "unsupported batch_input_shape"),
    (lambda d: d.pop("modelTopology"), "no 'modelTopology'"),
])
def test_hostile_or_unsupported_models(tmp_path, edit, match):
    path, _ = _image_model(tmp_path)
    _edit(path, edit)
    with pytest.raises(ModelFormatError, match=match) as info:
        import_keras_tfjs(path)
    assert info.value.path == str(path)


def test_truncated_shard_and_bad_json(tmp_path):
    path, _ = _image_model(tmp_path)
    shard = tmp_path / "group1-shard2of2"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ModelFormatError, match="hold .* bytes, the manifest describes"):
        import_keras_tfjs(path)
    path.write_text('{"modelTopology": ')
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        import_keras_tfjs(path)


# -- malformed layer configs: a ModelFormatError naming the file, the layer and the key -----------

_TWO = [[["in", 0, 0, {}], ["in", 0, 0, {}]]]


def _small_model(directory, layers, weights=(), input_layers=None, output="x",
                 shape=(None, 4, 4, 2)):
    """An InputLayer 'in' of ``shape`` then ``layers``; the output is layer ``output``."""
    inputs = [_layer("InputLayer", "in", None, batch_input_shape=list(shape))]
    topology = {"class_name": "Model", "config": {
        "name": "m", "layers": inputs + layers,
        "input_layers": input_layers or [["in", 0, 0]], "output_layers": [[output, 0, 0]]}}
    return _write(directory, topology, list(weights), shards=1)


def _dense_weights():
    return [("x/kernel", np.ones((32, 3), np.float32)), ("x/bias", np.zeros(3, np.float32))]


@pytest.mark.parametrize("cls, config", [
    ("Flatten", {}), ("Conv2D", {"filters": 2, "kernel_size": 1}), ("Dense", {"units": 2}),
    ("BatchNormalization", {}), ("MaxPooling2D", {}), ("AveragePooling2D", {}),
    ("GlobalAveragePooling2D", {}), ("GlobalMaxPooling2D", {}), ("ZeroPadding2D", {}),
    ("Activation", {"activation": "relu"}), ("LeakyReLU", {}), ("ReLU", {}), ("ELU", {}),
    ("Dropout", {}), ("SpatialDropout2D", {}),
])
def test_single_input_layer_fed_two_tensors(tmp_path, cls, config):
    path = _small_model(tmp_path, [_layer(cls, "x", ["in", "in"], **config)])
    with pytest.raises(ModelFormatError, match="Keras layer 'x': takes one input tensor, got 2") \
            as info:
        import_keras_tfjs(path)
    assert info.value.path == str(path)


def _flat(*layers):
    """``layers`` after a Flatten 'f' of the input (32 features)."""
    return [_layer("Flatten", "f", ["in"])] + list(layers)


@pytest.mark.parametrize("layers, weights, match", [
    ([_layer("Activation", "x", ["in"], activation={"a": 1})], (),
     r"'x': unsupported activation \{'a': 1\}"),
    (_flat(_layer("Dense", "x", ["f"], units=3, activation=["relu"])), _dense_weights(),
     r"'x': unsupported activation \['relu'\]"),
    ([_layer("Concatenate", "x", ["in", "in"], axis=[1])], (),
     r"'x': axis must be an integer, got \[1\]"),
    ([_layer("LeakyReLU", "x", ["in"], alpha="x")], (), "'x': alpha must be a finite number"),
    ([_layer("LeakyReLU", "x", ["in"], alpha=10**400)], (), "'x': alpha must be a finite number"),
    ([_layer("LeakyReLU", "x", ["in"], alpha=math.nan)], (), "'x': alpha must be a finite number"),
    ([_layer("ELU", "x", ["in"], alpha=[1.0])], (), "'x': alpha must be a finite number"),
    ([_layer("Dropout", "x", ["in"], rate=10**400)], (), r"'x': rate must be a finite number in "
                                                         r"\[0, 1\)"),
    ([_layer("BatchNormalization", "x", ["in"], epsilon=10**400)], (),
     "'x': epsilon must be a finite number"),
    ([_layer("MaxPooling2D", "x", ["in"], pool_size=[2, 10**12], strides=[1, 1],
             padding="same")], (), r"'x': pool_size must be two integers in \[1, 4096\]"),
    ([_layer("ZeroPadding2D", "x", ["in"], padding=10**6)], (), "'x': unsupported padding"),
    (_flat(_layer("Dense", "x", ["f"], units=3, use_bias="no")), _dense_weights(),
     "'x': use_bias must be true or false, got 'no'"),
    ([dict(_layer("Flatten", "x", ["in"]), inbound_nodes=[5])], (),
     "'x': inbound_nodes must hold a list of tensor references, got 5"),
], ids=["activation-dict", "dense-activation-list", "concat-axis-list", "alpha-str", "alpha-huge",
        "alpha-nan", "elu-alpha-list", "dropout-rate-huge", "bn-epsilon-huge", "pool-size-huge",
        "zero-padding-huge", "use-bias-str", "inbound-nodes-int"])
def test_malformed_layer_config(tmp_path, layers, weights, match):
    path = _small_model(tmp_path, layers, weights)
    with pytest.raises(ModelFormatError, match=match) as info:
        import_keras_tfjs(path)
    assert info.value.path == str(path) and str(info.value).startswith(str(path))


def test_output_depending_on_an_unlisted_input(tmp_path):
    layers = [_layer("InputLayer", "in2", None, batch_input_shape=[None, 4, 4, 2]),
              _layer("Add", "x", ["in", "in2"])]
    path = _small_model(tmp_path, layers)
    with pytest.raises(ModelFormatError, match="cannot assemble the model: .*not among the "
                                               "model's inputs") as info:
        import_keras_tfjs(path)
    assert info.value.path == str(path)


def test_input_layers_naming_a_hidden_layer(tmp_path):
    path = _small_model(tmp_path, [_layer("Flatten", "x", ["in"])], input_layers=[["x", 0, 0]])
    with pytest.raises(ModelFormatError, match=r"input \['x', 0, 0\] names no InputLayer"):
        import_keras_tfjs(path)


def test_absurd_input_shape(tmp_path):
    path = _small_model(tmp_path, [_layer("Flatten", "x", ["in"])],
                        shape=(None, 10**9, 10**9, 3))
    with pytest.raises(ModelFormatError, match="unsupported batch_input_shape"):
        import_keras_tfjs(path)


def test_absurd_weight_shape(tmp_path):
    path = _small_model(tmp_path, [_layer("Flatten", "x", ["in"])],
                        [("x/kernel", np.zeros((0, 1), np.float32))])
    _edit(path, lambda d: d["weightsManifest"][0]["weights"][0].update(shape=[0, 2**70]))
    with pytest.raises(ModelFormatError, match=r"weight 'x/kernel' has an absurd shape"):
        import_keras_tfjs(path)


# -- Tiny Darknet on a real photo ---------------------------------------------------------------

def _chelsea(shared_data):
    from PIL import Image
    img = Image.open(shared_data / "images" / "chelsea.png").convert("RGB")
    img = img.resize((224, 224), Image.BILINEAR)
    return (np.asarray(img, np.float32) / 255.0)[None]      # (1, 224, 224, 3) channels last


@pytest.fixture(scope="module")
def darknet(request):
    from .conftest import SHARED_DATA
    path = SHARED_DATA / "weights" / "darknet-tiny-tfjs" / "model.json"
    if not path.is_file():
        pytest.skip(f"Tiny Darknet not found at {path} (../shared/data is only on the dev "
                    f"machines)")
    registry = Registry(load_entry_points=False)
    previous = set_registry(registry)
    try:
        model = import_keras_tfjs(path).eval()
    finally:
        set_registry(previous)
    return model, json.loads(path.read_text())


def test_darknet_ranks_a_cat_first(shared_data, darknet):
    model, _ = darknet
    labels = (shared_data / "weights" / "darknet-tiny-tfjs" / "labels.txt").read_text().splitlines()
    assert len(labels) == 1000
    x = _chelsea(shared_data)
    logits = model(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert logits.shape == (1, 1000)
    probs = softmax(logits.astype(np.float64))[0]
    top5 = np.argsort(-probs)[:5]
    print("Tiny Darknet on chelsea.png:", [(labels[i], round(float(probs[i]), 4)) for i in top5])
    assert labels[top5[0]] in ("Egyptian cat", "tabby", "tiger cat")
    assert sum(labels[i] in ("Egyptian cat", "tabby", "tiger cat") for i in top5[:3]) == 3


def test_darknet_first_layers_match_channels_last_numpy(shared_data, darknet):
    model, doc = darknet
    manifest = doc["weightsManifest"]
    directory = shared_data / "weights" / "darknet-tiny-tfjs"
    params = {}
    for group in manifest:                 # read the shards independently of the importer
        blob = b"".join((directory / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            n = int(np.prod(spec["shape"]))
            params[spec["name"]] = np.frombuffer(blob, "<f4", n, offset).reshape(spec["shape"])
            offset += 4 * n
    x = _chelsea(shared_data).astype(np.float64)
    model(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32))
    h = x
    for i in (1, 2):
        h = conv_nhwc(h, params[f"conv2d_{i}/kernel"].astype(np.float64), padding="same")
        h = bn(h, *(params[f"batch_normalization_{i}/{k}"] for k in
                    ("gamma", "beta", "moving_mean", "moving_variance")), 0.001)
        h = leaky(h, 0.1)
        np.testing.assert_allclose(model.activation(f"leaky_re_lu_{i}"), h.transpose(0, 3, 1, 2),
                                   rtol=1e-4, atol=1e-4)
        h = maxpool_nhwc(h, 2, 2, "same")
        np.testing.assert_allclose(model.activation(f"max_pooling2d_{i}"),
                                   h.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-4)
