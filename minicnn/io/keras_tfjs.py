"""Import a Keras / TensorFlow.js "layers model" (``model.json`` + binary weight shards) as a
minicnn ``Model`` in NCHW.

What is translated (channels-last Keras on the left, minicnn on the right):

* ``InputLayer`` (batch_input_shape ``[None, H, W, C]`` or ``[None, F]``) -> ``Input((C, H, W))``;
* ``Conv2D`` -> ``Conv2d``: kernel (kh, kw, in, out) transposed to (out, in, kh, kw); ``groups``;
* ``Dense`` -> ``Linear``: kernel (in, out) transposed; after a ``Flatten`` of an image its rows are
  permuted from Keras' (h, w, c) order to minicnn's (c, h, w) order;
* ``BatchNormalization`` -> ``BatchNorm2d`` / ``BatchNorm1d`` (eps = epsilon, momentum = 1 - Keras'
  momentum; gamma, beta, moving_mean, moving_variance);
* ``MaxPooling2D`` / ``AveragePooling2D`` (average excludes padding, as Keras) /
  ``GlobalAveragePooling2D`` (``GlobalAvgPool2d`` then ``Flatten``) / ``GlobalMaxPooling2D``;
  ``Flatten``; ``Dropout`` / ``SpatialDropout2D``; ``Add``; ``Concatenate``; ``ZeroPadding2D``;
* activations: ``Activation``, ``ReLU``, ``LeakyReLU`` (alpha), ``ELU``, ``Softmax``, and the
  ``activation`` option of Conv2D / Dense ("linear", "relu", "sigmoid", "tanh", "softmax", "elu")
  become a following node named ``<layer>_<activation>``.

Padding "same" follows TensorFlow: total padding ``max((ceil(L / S) - 1) S + D (K - 1) + 1 - L, 0)``
split with the extra pixel at the bottom / right. When the split is even the layer's own symmetric
padding is used; otherwise an explicit ``ConstantPad2d`` node (zeros for convolutions, -inf for max
pooling) named ``<layer>_pad`` goes first (with a stride above 1 this needs a fixed input size).

Node names are the Keras layer names, so ``model.activation("conv2d_3")`` taps a layer and state
dict keys read ``conv2d_1.weight``. Class labels are not part of the model (read ``labels.txt``
yourself).

Anything else (another layer class, ``data_format="channels_first"``, ``padding="causal"``,
quantized weights, a layer called twice) is a :class:`minicnn.ModelFormatError` naming the layer and
the option. Weight shards are read with their sizes checked against the manifest first; shard paths
must stay in the model's directory.
"""

import math
import os
from collections import OrderedDict

import numpy as np

from ..errors import ModelFormatError
from .keras_layers import Importer, brief
from .tensorfile import parse_json

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_WEIGHT_BYTES = 1 << 33          # 8 GiB: anything larger is not a layers model we can hold
MAX_WEIGHT_RANK = 8                 # Keras weights have at most 5 axes


def _read_weights(path, manifest):
    """(layer name, weight name) -> float32 array, from the manifest's shard groups."""
    directory = os.path.dirname(os.path.abspath(path))
    if not isinstance(manifest, list):
        raise ModelFormatError("weightsManifest must be a list of groups", path=path)
    weights = OrderedDict()
    for g, group in enumerate(manifest):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) \
                or not isinstance(group.get("weights"), list):
            raise ModelFormatError(f"weightsManifest group {g} needs 'paths' and 'weights' lists",
                                   path=path)
        files = []
        for shard in group["paths"]:
            full = os.path.normpath(os.path.join(directory, shard)) if isinstance(shard, str) \
                else None
            if full is None or os.path.isabs(shard) or not full.startswith(directory + os.sep):
                raise ModelFormatError(f"weight shard path {brief(shard)} leaves the model's "
                                       f"directory", path=path)
            if not os.path.isfile(full):
                raise ModelFormatError(f"weight shard {brief(shard)} is missing", path=path)
            files.append(full)
        entries = []
        expected = 0
        for spec in group["weights"]:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                    or not isinstance(spec.get("shape"), list) or not all(
                        isinstance(d, int) and not isinstance(d, bool) and d >= 0
                        for d in spec["shape"]):
                raise ModelFormatError(f"weightsManifest group {g}: a weight needs a 'name' and a "
                                       f"'shape' of non-negative integers", path=path)
            if spec.get("dtype", "float32") != "float32" or "quantization" in spec:
                raise ModelFormatError(f"weight {brief(spec['name'])}: only unquantized float32 "
                                       f"weights are supported (dtype {brief(spec.get('dtype'))})",
                                       path=path)
            if len(spec["shape"]) > MAX_WEIGHT_RANK:
                raise ModelFormatError(f"weight {brief(spec['name'])} has {len(spec['shape'])} "
                                       f"axes (at most {MAX_WEIGHT_RANK})", path=path)
            count = math.prod(spec["shape"])
            entries.append((spec["name"], tuple(spec["shape"]), count))
            expected += 4 * count
            if expected > MAX_WEIGHT_BYTES:
                raise ModelFormatError(f"weightsManifest group {g} describes more than "
                                       f"{MAX_WEIGHT_BYTES} bytes", path=path)
            # an empty weight can still declare axes numpy refuses (more than 32, or 2**70 long)
            if 4 * math.prod(max(d, 1) for d in spec["shape"]) > MAX_WEIGHT_BYTES:
                raise ModelFormatError(f"weight {brief(spec['name'])} has an absurd shape "
                                       f"{brief(spec['shape'])} (spanning more than "
                                       f"{MAX_WEIGHT_BYTES} bytes)", path=path)
        try:
            sizes = [os.path.getsize(f) for f in files]
            if sum(sizes) != expected:
                raise ModelFormatError(f"weightsManifest group {g}: the shards "
                                       f"{brief(group['paths'])} hold {sum(sizes)} bytes, the "
                                       f"manifest describes {expected}", path=path)
            data = bytearray()
            for f in files:
                with open(f, "rb") as stream:
                    data += stream.read(expected + 1 - len(data))
        except OSError as exc:
            raise ModelFormatError(f"weightsManifest group {g}: cannot read a shard: "
                                   f"{exc.strerror or exc}", path=path) from None
        if len(data) != expected:
            raise ModelFormatError(f"weightsManifest group {g}: shards changed while reading",
                                   path=path)
        offset = 0
        for name, shape, count in entries:
            array = np.frombuffer(data, "<f4", count, offset).reshape(shape).astype(np.float32)
            offset += 4 * count
            parts = name.split(":")[0].split("/")
            if len(parts) < 2:
                raise ModelFormatError(f"weight name {brief(name)} is not '<layer>/<weight>'",
                                       path=path)
            key = (parts[-2], parts[-1])
            if key in weights:
                raise ModelFormatError(f"weight {brief(name)} appears twice", path=path)
            weights[key] = array
    return weights


def import_keras_tfjs(model_json_path):
    """Build a minicnn ``Model`` (NCHW, eval-ready weights) from a TF.js layers-model
    ``model.json``.

    Call ``model.eval()`` before inference (batch norm then uses the imported moving statistics).
    """
    path = os.fspath(model_json_path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ModelFormatError(f"cannot open: {exc.strerror or exc}", path=path) from None
    if size > MAX_JSON_BYTES:
        raise ModelFormatError(f"model.json is {size} bytes, over the {MAX_JSON_BYTES} limit",
                               path=path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise ModelFormatError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if len(raw) > MAX_JSON_BYTES:
        raise ModelFormatError(f"model.json is over the {MAX_JSON_BYTES} byte limit", path=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"not UTF-8: {exc}", path=path) from None
    doc = parse_json(text, "model.json", path)
    if not isinstance(doc, dict) or not isinstance(doc.get("modelTopology"), dict):
        raise ModelFormatError("no 'modelTopology' object: not a TF.js layers model", path=path)
    topology = doc["modelTopology"]
    config = topology.get("model_config", topology)
    if not isinstance(config, dict) or not isinstance(config.get("config"), (dict, list)):
        raise ModelFormatError("modelTopology has no model config", path=path)
    class_name = config.get("class_name")
    body = config["config"]
    weights = _read_weights(path, doc.get("weightsManifest", []))
    importer = Importer(path, weights)
    if class_name in ("Model", "Functional"):
        if not isinstance(body, dict) or not all(
                isinstance(body.get(k), list) for k in ("layers", "input_layers", "output_layers")):
            raise ModelFormatError("a functional model config needs 'layers', 'input_layers' and "
                                   "'output_layers' lists", path=path)
        return importer.run(body["layers"], body["input_layers"], body["output_layers"])
    if class_name == "Sequential":
        layers = body if isinstance(body, list) else body.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ModelFormatError("a Sequential config needs a list of layers", path=path)
        return importer.run(*_chain(layers, path))
    raise ModelFormatError(f"unsupported model class {brief(class_name)} (supported: Model, "
                           f"Functional, Sequential)", path=path)


def _chain(layers, path):
    """A Sequential's layers as functional ones: an InputLayer first, each fed by the previous."""
    layers = [dict(spec) if isinstance(spec, dict) else spec for spec in layers]
    for spec in layers:
        if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
            raise ModelFormatError("a Sequential layer must be {'class_name', 'config'}", path=path)
        spec.setdefault("name", spec["config"].get("name"))
    if layers[0].get("class_name") != "InputLayer":
        shape = layers[0]["config"].get("batch_input_shape")
        layers.insert(0, {"class_name": "InputLayer", "name": "input",
                          "config": {"batch_input_shape": shape}})
    previous = layers[0]["name"]
    for spec in layers[1:]:
        spec["inbound_nodes"] = [[[previous, 0, 0, {}]]]
        previous = spec["name"]
    return layers, [[layers[0]["name"], 0, 0]], [[previous, 0, 0]]
