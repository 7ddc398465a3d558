"""The layer-by-layer translation of a Keras layers model into minicnn nodes (used by
:mod:`minicnn.io.keras_tfjs`, which documents what is supported). One method per Keras class.
"""

import math

import numpy as np

from ..errors import ModelFormatError, ShapeError
from ..graph import Model
from ..registry import get_registry
from ..symbolic import Input

_ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "ELU",
                "softmax": "Softmax"}
_IGNORED_OPTIONS = {"name", "trainable", "dtype", "kernel_initializer", "bias_initializer",
                    "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                    "kernel_constraint", "bias_constraint", "beta_initializer", "gamma_initializer",
                    "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer",
                    "gamma_regularizer", "beta_constraint", "gamma_constraint", "noise_shape",
                    "seed", "batch_input_shape", "batch_size", "sparse", "ragged", "synchronized"}


class _Value:
    """A Keras tensor: its minicnn symbol and its layout: "image" (NCHW here, NHWC in Keras),
    "vector" (N, F), or "flat" (a flattened image, with the (C, H, W) it came from)."""

    def __init__(self, symbol, layout, chw=None):
        self.symbol, self.layout, self.chw = symbol, layout, chw


def _layer(type_name):
    entry = get_registry().layers.get(type_name)
    return None if entry is None else entry[0]


class Importer:
    def __init__(self, path, weights):
        self.path = path
        self.weights = weights          # (layer name, weight name) -> array
        self.used = set()
        self.inputs = []
        self.values = {}                # (layer name, node index, tensor index) -> _Value
        self.trainable = {}

    # -- helpers --------------------------------------------------------------------------------

    def fail(self, layer, message):
        raise ModelFormatError(f"Keras layer '{layer}': {message}", path=self.path)

    def option(self, layer, config, key, default=None, allowed=None):
        value = config.get(key, default)
        if allowed is not None and value not in allowed:
            self.fail(layer, f"unsupported {key}={value!r} (supported: {allowed})")
        return value

    def pair(self, layer, config, key, default=None):
        value = config.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
            self.fail(layer, f"{key} must be two positive integers, got {value!r}")
        return tuple(value)

    def weight(self, layer, name, shape=None, required=True):
        key = (layer, name)
        if key not in self.weights:
            if required:
                self.fail(layer, f"weight '{name}' is missing from the weights manifest")
            return None
        array = self.weights[key]
        if shape is not None and tuple(array.shape) != tuple(shape):
            self.fail(layer, f"weight '{name}' has shape {list(array.shape)}, expected "
                             f"{list(shape)}")
        self.used.add(key)
        return array

    def make(self, layer, type_name, *args, **kwargs):
        cls = _layer(type_name)
        if cls is None:
            self.fail(layer, f"needs minicnn layer type '{type_name}', which no installed plugin "
                             f"registers")
        try:
            return cls(*args, **kwargs)
        except Exception as exc:
            self.fail(layer, f"cannot build {type_name}: {exc}")

    def call(self, layer, module, inputs, name):
        try:
            return module(inputs if len(inputs) > 1 else inputs[0], name=name)
        except ShapeError as exc:
            self.fail(layer, f"does not fit its input: {exc}")

    def set_params(self, layer, module, **arrays):
        for pname, value in arrays.items():
            param = module._own_params()[pname]
            if tuple(param.data.shape) != tuple(value.shape):
                self.fail(layer, f"weight for {pname} has shape {value.shape}, the layer expects "
                                 f"{param.data.shape}")
            param.data = np.ascontiguousarray(value, dtype=param.data.dtype)
            if not self.trainable.get(layer, True):
                param.requires_grad = False

    def image(self, layer, value):
        if value.layout != "image":
            self.fail(layer, "expects a 4-D image input (N, H, W, C)")
        return value.symbol.shape   # (C, H, W), H and W possibly None

    def channels_last(self, layer, config):
        if config.get("data_format") not in (None, "channels_last"):
            self.fail(layer, f"unsupported data_format={config['data_format']!r} (only "
                             f"channels_last)")

    def activation(self, layer, name, value):
        """Append the activation called ``name`` after ``value`` (none for "linear")."""
        if name in (None, "linear"):
            return value
        if name not in _ACTIVATIONS:
            self.fail(layer, f"unsupported activation {name!r} (supported: linear, "
                             f"{', '.join(sorted(_ACTIVATIONS))})")
        kwargs = {"dim": 1} if name == "softmax" else {}
        module = self.make(layer, _ACTIVATIONS[name], **kwargs)
        return _Value(self.call(layer, module, [value.symbol], f"{layer}_{name}"),
                      value.layout, value.chw)

    def same_padding(self, layer, hw, kernel, stride, dilation):
        """(top, bottom, left, right) of TensorFlow's "same" padding."""
        pads = []
        for size, k, s, d in zip(hw, kernel, stride, dilation, strict=True):
            span = d * (k - 1) + 1
            if s == 1:
                total = span - 1
            elif size is None:
                self.fail(layer, "padding='same' with stride > 1 needs a fixed input size (the "
                                 "input shape has a free axis)")
            else:
                total = max((math.ceil(size / s) - 1) * s + span - size, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)

    def padded(self, layer, value, pads, fill):
        """Symmetric padding to give the layer (or an explicit pad node first when uneven)."""
        top, bottom, left, right = pads
        if top == bottom and left == right:
            return value, (top, left)
        module = self.make(layer, "ConstantPad2d", (left, right, top, bottom), fill)
        return _Value(self.call(layer, module, [value.symbol], f"{layer}_pad"), "image"), (0, 0)

    # -- the layers -----------------------------------------------------------------------------

    def InputLayer(self, layer, config, inputs):  # noqa: N802 - Keras class names
        shape = config.get("batch_input_shape", config.get("batch_shape"))
        if not isinstance(shape, list) or len(shape) not in (2, 4) or not all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                for d in shape[1:]):
            self.fail(layer, f"unsupported batch_input_shape {shape!r} (supported: [None, H, W, C] "
                             f"or [None, F])")
        if len(shape) == 4:
            if shape[3] is None:
                self.fail(layer, "the channel count of the input must be known")
            symbol = Input((shape[3], shape[1], shape[2]))
            value = _Value(symbol, "image")
        else:
            symbol = Input((shape[1],))
            value = _Value(symbol, "vector")
        self.inputs.append(symbol)
        return value

    def Conv2D(self, layer, config, inputs):  # noqa: N802
        self.channels_last(layer, config)
        (value,) = inputs
        cin, h, w = self.image(layer, value)
        filters = config.get("filters")
        if not isinstance(filters, int) or filters < 1:
            self.fail(layer, f"filters must be a positive integer, got {filters!r}")
        kernel = self.pair(layer, config, "kernel_size")
        stride = self.pair(layer, config, "strides", [1, 1])
        dilation = self.pair(layer, config, "dilation_rate", [1, 1])
        groups = config.get("groups", 1)
        if not isinstance(groups, int) or groups < 1 or cin % groups or filters % groups:
            self.fail(layer, f"unsupported groups={groups!r} for {cin} input channels")
        padding = self.option(layer, config, "padding", "valid", ["valid", "same"])
        use_bias = bool(config.get("use_bias", True))
        pads = (self.same_padding(layer, (h, w), kernel, stride, dilation) if padding == "same"
                else (0, 0, 0, 0))
        value, sym_pad = self.padded(layer, value, pads, 0.0)
        conv = self.make(layer, "Conv2d", cin, filters, kernel, stride=stride, padding=sym_pad,
                         dilation=dilation, groups=groups, bias=use_bias)
        kern = self.weight(layer, "kernel", (*kernel, cin // groups, filters))
        params = {"weight": np.transpose(kern, (3, 2, 0, 1))}
        if use_bias:
            params["bias"] = self.weight(layer, "bias", (filters,))
        self.set_params(layer, conv, **params)
        out = _Value(self.call(layer, conv, [value.symbol], layer), "image")
        return self.activation(layer, config.get("activation"), out)

    def Dense(self, layer, config, inputs):  # noqa: N802
        (value,) = inputs
        if value.layout == "image":
            self.fail(layer, "Dense on a 4-D input is not supported (Flatten it first)")
        features = value.symbol.shape[0]
        units = config.get("units")
        if not isinstance(units, int) or units < 1:
            self.fail(layer, f"units must be a positive integer, got {units!r}")
        use_bias = bool(config.get("use_bias", True))
        kern = self.weight(layer, "kernel", (features, units))
        if value.layout == "flat":       # rows in Keras' (h, w, c) order -> minicnn's (c, h, w)
            c, h, w = value.chw
            kern = kern.reshape(h, w, c, units).transpose(2, 0, 1, 3).reshape(features, units)
        linear = self.make(layer, "Linear", features, units, use_bias)
        params = {"weight": kern.T}
        if use_bias:
            params["bias"] = self.weight(layer, "bias", (units,))
        self.set_params(layer, linear, **params)
        out = _Value(self.call(layer, linear, [value.symbol], layer), "vector")
        return self.activation(layer, config.get("activation"), out)

    def BatchNormalization(self, layer, config, inputs):  # noqa: N802
        (value,) = inputs
        if value.layout == "image":
            self.option(layer, config, "axis", -1, [-1, 3, [3], [-1]])
            type_name, features = "BatchNorm2d", value.symbol.shape[0]
        else:
            self.option(layer, config, "axis", -1, [-1, 1, [1], [-1]])
            type_name, features = "BatchNorm1d", value.symbol.shape[0]
        eps = config.get("epsilon", 1e-3)
        momentum = config.get("momentum", 0.99)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (eps, momentum)) or not 0 <= momentum <= 1:
            self.fail(layer, f"invalid epsilon={eps!r} or momentum={momentum!r}")
        bn = self.make(layer, type_name, features, eps=float(eps), momentum=1.0 - float(momentum))
        shape = (features,)
        gamma = (self.weight(layer, "gamma", shape) if config.get("scale", True)
                 else np.ones(shape, np.float32))
        beta = (self.weight(layer, "beta", shape) if config.get("center", True)
                else np.zeros(shape, np.float32))
        mean = self.weight(layer, "moving_mean", shape)
        var = self.weight(layer, "moving_variance", shape)
        if value.layout == "flat":     # features in Keras' (h, w, c) order -> minicnn's (c, h, w)
            c, h, w = value.chw
            gamma, beta, mean, var = (v.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
                                      for v in (gamma, beta, mean, var))
        self.set_params(layer, bn, weight=gamma, bias=beta)
        bn.running_mean[...] = mean
        bn.running_var[...] = var
        return _Value(self.call(layer, bn, [value.symbol], layer), value.layout, value.chw)

    def _elementwise(self, layer, value, type_name, *args, **kwargs):
        module = self.make(layer, type_name, *args, **kwargs)
        return _Value(self.call(layer, module, [value.symbol], layer), value.layout, value.chw)

    def Activation(self, layer, config, inputs):  # noqa: N802
        (value,) = inputs
        name = config.get("activation")
        if name in (None, "linear"):
            return value
        if name not in _ACTIVATIONS:
            self.fail(layer, f"unsupported activation {name!r}")
        kwargs = {"dim": 1} if name == "softmax" else {}
        return self._elementwise(layer, value, _ACTIVATIONS[name], **kwargs)

    def ReLU(self, layer, config, inputs):  # noqa: N802
        for key in ("max_value", "threshold", "negative_slope"):
            if config.get(key) not in (None, 0, 0.0):
                self.fail(layer, f"unsupported {key}={config[key]!r} (only a plain ReLU)")
        return self._elementwise(layer, inputs[0], "ReLU")

    def LeakyReLU(self, layer, config, inputs):  # noqa: N802
        alpha = config.get("alpha", config.get("negative_slope", 0.3))
        return self._elementwise(layer, inputs[0], "LeakyReLU", float(alpha))

    def ELU(self, layer, config, inputs):  # noqa: N802
        return self._elementwise(layer, inputs[0], "ELU", float(config.get("alpha", 1.0)))

    def Softmax(self, layer, config, inputs):  # noqa: N802
        self.option(layer, config, "axis", -1, [-1])
        return self._elementwise(layer, inputs[0], "Softmax", dim=1)

    def Dropout(self, layer, config, inputs):  # noqa: N802
        return self._elementwise(layer, inputs[0], "Dropout", float(config.get("rate", 0.5)))

    def SpatialDropout2D(self, layer, config, inputs):  # noqa: N802
        self.channels_last(layer, config)
        self.image(layer, inputs[0])
        return self._elementwise(layer, inputs[0], "Dropout2d", float(config.get("rate", 0.5)))

    def _pool(self, layer, config, inputs, kind):
        self.channels_last(layer, config)
        (value,) = inputs
        _, h, w = self.image(layer, value)
        kernel = self.pair(layer, config, "pool_size", [2, 2])
        stride = config.get("strides")
        stride = kernel if stride is None else self.pair(layer, config, "strides")
        padding = self.option(layer, config, "padding", "valid", ["valid", "same"])
        pads = (self.same_padding(layer, (h, w), kernel, stride, (1, 1)) if padding == "same"
                else (0, 0, 0, 0))
        if kind == "max":
            value, sym_pad = self.padded(layer, value, pads, -math.inf)
            pool = self.make(layer, "MaxPool2d", kernel, stride, sym_pad)
        else:
            if pads[0] != pads[1] or pads[2] != pads[3]:
                self.fail(layer, f"padding='same' here needs uneven padding {pads} (top, bottom, "
                                 f"left, right), which average pooling cannot express")
            pool = self.make(layer, "AvgPool2d", kernel, stride, (pads[0], pads[2]),
                             count_include_pad=False)
        return _Value(self.call(layer, pool, [value.symbol], layer), "image")

    def MaxPooling2D(self, layer, config, inputs):  # noqa: N802
        return self._pool(layer, config, inputs, "max")

    def AveragePooling2D(self, layer, config, inputs):  # noqa: N802
        return self._pool(layer, config, inputs, "avg")

    def _global(self, layer, config, inputs, module):
        self.channels_last(layer, config)
        (value,) = inputs
        self.image(layer, value)
        pooled = self.call(layer, module, [value.symbol], layer)
        if config.get("keepdims", False):
            return _Value(pooled, "image")
        flat = self.call(layer, self.make(layer, "Flatten"), [pooled], f"{layer}_flatten")
        return _Value(flat, "vector")

    def GlobalAveragePooling2D(self, layer, config, inputs):  # noqa: N802
        module = (self.make(layer, "GlobalAvgPool2d") if _layer("GlobalAvgPool2d")
                  else self.make(layer, "AdaptiveAvgPool2d", 1))
        return self._global(layer, config, inputs, module)

    def GlobalMaxPooling2D(self, layer, config, inputs):  # noqa: N802
        _, h, w = self.image(layer, inputs[0])
        if h is None or w is None:
            self.fail(layer, "GlobalMaxPooling2D needs a fixed input size")
        return self._global(layer, config, inputs, self.make(layer, "MaxPool2d", (h, w)))

    def Flatten(self, layer, config, inputs):  # noqa: N802
        (value,) = inputs
        if value.layout != "image":
            return value
        self.channels_last(layer, config)
        if any(d is None for d in value.symbol.shape):
            self.fail(layer, "Flatten of an image needs a fixed input size")
        flat = self.call(layer, self.make(layer, "Flatten"), [value.symbol], layer)
        return _Value(flat, "flat", tuple(value.symbol.shape))

    def ZeroPadding2D(self, layer, config, inputs):  # noqa: N802
        self.channels_last(layer, config)
        (value,) = inputs
        self.image(layer, value)
        pad = config.get("padding", 1)
        if isinstance(pad, int):
            pad = [[pad, pad], [pad, pad]]
        elif isinstance(pad, list) and len(pad) == 2 and all(isinstance(p, int) for p in pad):
            pad = [[pad[0], pad[0]], [pad[1], pad[1]]]
        def is_pair(p):
            return isinstance(p, list) and len(p) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)

        if not (isinstance(pad, list) and len(pad) == 2 and all(is_pair(p) for p in pad)):
            self.fail(layer, f"unsupported padding={config.get('padding')!r}")
        (top, bottom), (left, right) = pad
        module = self.make(layer, "ConstantPad2d", (left, right, top, bottom), 0.0)
        return _Value(self.call(layer, module, [value.symbol], layer), "image")

    def Add(self, layer, config, inputs):  # noqa: N802
        layouts = {(v.layout, v.chw) for v in inputs}
        if len(layouts) != 1:
            self.fail(layer, "inputs of Add have different layouts")
        out = self.call(layer, self.make(layer, "Add"), [v.symbol for v in inputs], layer)
        return _Value(out, inputs[0].layout, inputs[0].chw)

    def Concatenate(self, layer, config, inputs):  # noqa: N802
        axis = config.get("axis", -1)
        layout = inputs[0].layout
        if any(v.layout != layout for v in inputs) or layout == "flat":
            self.fail(layer, "Concatenate of flattened images or of mixed layouts is not supported")
        dims = {-1: 1, 3: 1, 1: 2, 2: 3} if layout == "image" else {-1: 1, 1: 1}
        if axis not in dims:
            self.fail(layer, f"unsupported axis={axis!r}")
        out = self.call(layer, self.make(layer, "Concat", dims[axis]),
                        [v.symbol for v in inputs], layer)
        return _Value(out, layout)

    # -- the graph ------------------------------------------------------------------------------

    def run(self, layers, input_layers, output_layers):
        handlers = {}
        for index, spec in enumerate(layers):
            if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
                    or not isinstance(spec.get("config"), dict):
                raise ModelFormatError(f"layer {index} of the topology is not "
                                       f"{{'class_name', 'config', ...}}", path=self.path)
            name = spec.get("name", spec["config"].get("name"))
            if not isinstance(name, str) or not name or name in handlers:
                raise ModelFormatError(f"layer {index} has a missing or repeated name {name!r:.60}",
                                       path=self.path)
            if spec["class_name"] not in self._KNOWN:
                self.fail(name, f"unsupported layer class '{spec['class_name']}'")
            handlers[name] = getattr(type(self), spec["class_name"])
            self.trainable[name] = spec["config"].get("trainable", True) is not False
        for spec in layers:
            name = spec.get("name", spec["config"].get("name"))
            inbound = spec.get("inbound_nodes", [])
            if spec["class_name"] == "InputLayer":
                calls = [[]]
            elif not isinstance(inbound, list) or len(inbound) != 1:
                self.fail(name, f"is called {len(inbound) if isinstance(inbound, list) else '?'} "
                                f"times; only layers called exactly once are supported")
            else:
                calls = inbound
            args = []
            for ref in calls[0]:
                if isinstance(ref, dict):
                    self.fail(name, "uses the Keras 3 node format, which is not supported")
                key = _ref_key(ref)
                if key not in self.values:
                    self.fail(name, f"has an inbound tensor {ref!r:.80} that no earlier layer "
                                    f"produced")
                args.append(self.values[key])
            if spec["class_name"] != "InputLayer" and not args:
                self.fail(name, "has no inputs")
            self._check_options(name, spec["class_name"], spec["config"])
            self.values[(name, 0, 0)] = handlers[name](self, name, spec["config"], args)
        outputs = []
        for ref in output_layers:
            if _ref_key(ref) not in self.values:
                raise ModelFormatError(f"output {ref!r:.80} names no layer output", path=self.path)
            outputs.append(self.values[_ref_key(ref)].symbol)
        symbols = []
        for ref in input_layers:
            if _ref_key(ref) not in self.values:
                raise ModelFormatError(f"input {ref!r:.80} names no InputLayer", path=self.path)
            symbols.append(self.values[_ref_key(ref)].symbol)
        unused = sorted(f"{layer}/{w}" for layer, w in self.weights if (layer, w) not in self.used)
        if unused:
            raise ModelFormatError(f"weights not used by any layer: {unused[:10]}", path=self.path)
        return Model(symbols, outputs)

    _KNOWN = {
        "Conv2D": {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                   "activation", "use_bias", "groups"},
        "Dense": {"units", "activation", "use_bias"},
        "BatchNormalization": {"axis", "momentum", "epsilon", "center", "scale"},
        "MaxPooling2D": {"pool_size", "strides", "padding", "data_format"},
        "AveragePooling2D": {"pool_size", "strides", "padding", "data_format"},
        "GlobalAveragePooling2D": {"data_format", "keepdims"},
        "GlobalMaxPooling2D": {"data_format", "keepdims"},
        "LeakyReLU": {"alpha", "negative_slope"},
        "ReLU": {"max_value", "threshold", "negative_slope"},
        "ELU": {"alpha"}, "Softmax": {"axis"}, "Activation": {"activation"},
        "Dropout": {"rate"}, "SpatialDropout2D": {"rate", "data_format"},
        "Flatten": {"data_format"}, "ZeroPadding2D": {"padding", "data_format"},
        "Add": set(), "Concatenate": {"axis"}, "InputLayer": set(),
    }

    def _check_options(self, name, class_name, config):
        known = self._KNOWN.get(class_name, set()) | _IGNORED_OPTIONS
        unknown = sorted(k for k in config if k not in known)
        if unknown:
            self.fail(name, f"unsupported option(s) {unknown} for {class_name}")


def _ref_key(ref):
    """(layer name, node index, tensor index) of a Keras 2 tensor reference, or None."""
    if isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str) \
            and all(isinstance(v, int) and not isinstance(v, bool) for v in ref[1:3]):
        return (ref[0], ref[1], ref[2])
    return None
