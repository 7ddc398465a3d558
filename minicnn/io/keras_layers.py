"""The layer-by-layer translation of a Keras layers model into minicnn nodes (used by
:mod:`minicnn.io.keras_tfjs`, which documents what is supported). One method per Keras class.
"""

import math
import reprlib

import numpy as np

from ..errors import MinicnnError, ModelFormatError
from ..graph import Model
from ..registry import get_registry
from ..symbolic import Input
from .tensorfile import _is_int

_ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "ELU",
                "softmax": "Softmax"}
_IGNORED_OPTIONS = {"name", "trainable", "dtype", "kernel_initializer", "bias_initializer",
                    "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                    "kernel_constraint", "bias_constraint", "beta_initializer", "gamma_initializer",
                    "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer",
                    "gamma_regularizer", "beta_constraint", "gamma_constraint", "noise_shape",
                    "seed", "batch_input_shape", "batch_size", "sparse", "ragged", "synchronized"}


# Bounds on what a layers model may declare: checked at import, so that a hostile model.json is a
# ModelFormatError there rather than an absurd allocation (or hours of work) in the first forward.
MAX_LAYERS = 20000          # layers in a topology
MAX_INPUTS = 1024           # tensors fed to one layer (Add, Concatenate)
MAX_WINDOW = 4096           # kernel / pool window span, stride, dilation, padding of one side
MAX_UNITS = 1 << 20         # filters of a Conv2D, units of a Dense
MAX_ELEMENTS = 1 << 28      # elements of one sample's tensor (1 GiB of float32), when known
MAX_WORK = 1 << 36          # multiply-adds (or window reads) of one layer on one sample, when known
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 4, 40, 40
_REPR.maxlong = 40


def brief(value):
    """A short repr of a value read from a file (bounded however large or deep the value is)."""
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):     # an int beyond Python's digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


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
        raise ModelFormatError(f"Keras layer '{layer:.80}': {message}", path=self.path)

    def option(self, layer, config, key, default=None, allowed=None):
        value = config.get(key, default)
        if allowed is not None and value not in allowed:
            self.fail(layer, f"unsupported {key}={brief(value)} (supported: {allowed})")
        return value

    def single(self, layer, inputs):
        """The one input tensor of a single-input layer."""
        if len(inputs) != 1:
            self.fail(layer, f"takes one input tensor, got {len(inputs)}")
        return inputs[0]

    def config_str(self, layer, config, key, default=None, allowed=None):
        """A string option (or ``default`` when absent), one of ``allowed`` when given."""
        value = config.get(key, default)
        if value is not default and not isinstance(value, str):
            self.fail(layer, f"{key} must be a string, got {brief(value)}")
        return self.option(layer, config, key, default, allowed)

    def config_int(self, layer, config, key, default=None, minimum=1, maximum=MAX_WINDOW):
        """An integer option in [minimum, maximum] (``default`` when absent)."""
        value = config.get(key, default)
        if not _is_int(value) or not minimum <= value <= maximum:
            self.fail(layer, f"{key} must be an integer in [{minimum}, {maximum}], got "
                             f"{brief(value)}")
        return value

    def config_float(self, layer, config, key, default=None, minimum=-_FLOAT32_MAX,
                     maximum=_FLOAT32_MAX, below=None):
        """A finite number option in [minimum, maximum] (and < ``below`` when given) as a float."""
        value = config.get(key, default)
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = None
        if number is None or not math.isfinite(number) or not minimum <= number <= maximum \
                or (below is not None and number >= below):
            upper = f"{maximum:g}]" if below is None else f"{below:g})"
            self.fail(layer, f"{key} must be a finite number in [{minimum:g}, {upper}, got "
                             f"{brief(value)}")
        return number

    def config_bool(self, layer, config, key, default):
        value = config.get(key, default)
        if not isinstance(value, bool):
            self.fail(layer, f"{key} must be true or false, got {brief(value)}")
        return value

    def pair(self, layer, config, key, default=None, minimum=1):
        """Two integers in [minimum, MAX_WINDOW] (an int stands for both)."""
        value = config.get(key, default)
        if _is_int(value):
            value = [value, value]
        if not (isinstance(value, list) and len(value) == 2
                and all(_is_int(v) and minimum <= v <= MAX_WINDOW for v in value)):
            self.fail(layer, f"{key} must be two integers in [{minimum}, {MAX_WINDOW}], got "
                             f"{brief(config.get(key, default))}")
        return tuple(value)

    def check_work(self, layer, symbol, per_output):
        """Refuse a layer whose output (known size only) costs more than MAX_WORK to compute."""
        shape = symbol.shape
        if shape is not None and all(d is not None for d in shape):
            work = math.prod(shape) * per_output
            if work > MAX_WORK:
                self.fail(layer, f"would take {work} multiply-adds per sample (output "
                                 f"{list(shape)}), over the {MAX_WORK} limit")

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
            out = module(inputs if len(inputs) > 1 else inputs[0], name=name)
        except MinicnnError as exc:
            self.fail(layer, f"does not fit its input: {exc}")
        shape = getattr(out, "shape", None)
        if shape is not None and all(d is not None for d in shape) \
                and math.prod(shape) > MAX_ELEMENTS:
            self.fail(layer, f"makes a tensor of {math.prod(shape)} elements per sample (shape "
                             f"{list(shape)}), over the {MAX_ELEMENTS} limit")
        return out

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
        shape = value.symbol.shape
        if shape is None or len(shape) != 3 or shape[0] is None:
            self.fail(layer, f"the shape of its input cannot be inferred (got {shape})")
        return shape   # (C, H, W), H and W possibly None

    def features(self, layer, value):
        """The feature count of a vector (or flattened image) input, which must be known."""
        shape = value.symbol.shape
        if shape is None or len(shape) != 1 or shape[0] is None:
            self.fail(layer, f"the feature count of its input cannot be inferred (got {shape})")
        return shape[0]

    def channels_last(self, layer, config):
        if config.get("data_format") not in (None, "channels_last"):
            self.fail(layer, f"unsupported data_format={brief(config['data_format'])} (only "
                             f"channels_last)")

    def activation(self, layer, name, value):
        """Append the activation called ``name`` after ``value`` (none for "linear")."""
        if name in (None, "linear"):
            return value
        if not isinstance(name, str) or name not in _ACTIVATIONS:
            self.fail(layer, f"unsupported activation {brief(name)} (supported: linear, "
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
            if span > MAX_WINDOW:
                self.fail(layer, f"the window spans {span} pixels (kernel {k}, dilation {d}), over "
                                 f"the {MAX_WINDOW} limit")
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
                d is None or (_is_int(d) and 0 < d <= MAX_ELEMENTS) for d in shape[1:]):
            self.fail(layer, f"unsupported batch_input_shape {brief(shape)} (supported: "
                             f"[None, H, W, C] or [None, F], sizes in [1, {MAX_ELEMENTS}])")
        if shape[-1] is None:
            self.fail(layer, "the channel (feature) count of the input must be known")
        known = [d for d in shape[1:] if d is not None]
        if math.prod(known) > MAX_ELEMENTS:
            self.fail(layer, f"an input of shape {shape} has more than {MAX_ELEMENTS} elements per "
                             f"sample")
        if len(shape) == 4:
            symbol = Input((shape[3], shape[1], shape[2]))
            value = _Value(symbol, "image")
        else:
            symbol = Input((shape[1],))
            value = _Value(symbol, "vector")
        self.inputs.append(symbol)
        return value

    def Conv2D(self, layer, config, inputs):  # noqa: N802
        self.channels_last(layer, config)
        value = self.single(layer, inputs)
        cin, h, w = self.image(layer, value)
        filters = self.config_int(layer, config, "filters", maximum=MAX_UNITS)
        kernel = self.pair(layer, config, "kernel_size")
        stride = self.pair(layer, config, "strides", [1, 1])
        dilation = self.pair(layer, config, "dilation_rate", [1, 1])
        groups = config.get("groups", 1)
        if not _is_int(groups) or groups < 1 or cin % groups or filters % groups:
            self.fail(layer, f"unsupported groups={brief(groups)} for {cin} input channels and "
                             f"{filters} filters")
        padding = self.config_str(layer, config, "padding", "valid", ["valid", "same"])
        use_bias = self.config_bool(layer, config, "use_bias", True)
        # the weights file fixes the parameter count: check it before building the layer
        kern = self.weight(layer, "kernel", (*kernel, cin // groups, filters))
        params = {"weight": np.transpose(kern, (3, 2, 0, 1))}
        if use_bias:
            params["bias"] = self.weight(layer, "bias", (filters,))
        pads = (self.same_padding(layer, (h, w), kernel, stride, dilation) if padding == "same"
                else (0, 0, 0, 0))
        value, sym_pad = self.padded(layer, value, pads, 0.0)
        conv = self.make(layer, "Conv2d", cin, filters, kernel, stride=stride, padding=sym_pad,
                         dilation=dilation, groups=groups, bias=use_bias)
        self.set_params(layer, conv, **params)
        out = _Value(self.call(layer, conv, [value.symbol], layer), "image")
        self.check_work(layer, out.symbol, kernel[0] * kernel[1] * (cin // groups))
        return self.activation(layer, config.get("activation"), out)

    def Dense(self, layer, config, inputs):  # noqa: N802
        value = self.single(layer, inputs)
        if value.layout == "image":
            self.fail(layer, "Dense on a 4-D input is not supported (Flatten it first)")
        features = self.features(layer, value)
        units = self.config_int(layer, config, "units", maximum=MAX_UNITS)
        use_bias = self.config_bool(layer, config, "use_bias", True)
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
        value = self.single(layer, inputs)
        if value.layout == "image":
            self.option(layer, config, "axis", -1, [-1, 3, [3], [-1]])
            type_name, features = "BatchNorm2d", self.image(layer, value)[0]
        else:
            self.option(layer, config, "axis", -1, [-1, 1, [1], [-1]])
            type_name, features = "BatchNorm1d", self.features(layer, value)
        eps = self.config_float(layer, config, "epsilon", 1e-3, minimum=0.0)
        momentum = self.config_float(layer, config, "momentum", 0.99, minimum=0.0, maximum=1.0)
        shape = (features,)
        scale = self.config_bool(layer, config, "scale", True)
        center = self.config_bool(layer, config, "center", True)
        gamma = self.weight(layer, "gamma", shape) if scale else np.ones(shape, np.float32)
        beta = self.weight(layer, "beta", shape) if center else np.zeros(shape, np.float32)
        mean = self.weight(layer, "moving_mean", shape)
        var = self.weight(layer, "moving_variance", shape)
        bn = self.make(layer, type_name, features, eps=eps, momentum=1.0 - momentum)
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
        value = self.single(layer, inputs)
        name = config.get("activation")
        if name in (None, "linear"):
            return value
        if not isinstance(name, str) or name not in _ACTIVATIONS:
            self.fail(layer, f"unsupported activation {brief(name)} (supported: linear, "
                             f"{', '.join(sorted(_ACTIVATIONS))})")
        kwargs = {"dim": 1} if name == "softmax" else {}
        return self._elementwise(layer, value, _ACTIVATIONS[name], **kwargs)

    def ReLU(self, layer, config, inputs):  # noqa: N802
        for key in ("max_value", "threshold", "negative_slope"):
            if config.get(key) not in (None, 0, 0.0):
                self.fail(layer, f"unsupported {key}={brief(config[key])} (only a plain ReLU)")
        return self._elementwise(layer, self.single(layer, inputs), "ReLU")

    def LeakyReLU(self, layer, config, inputs):  # noqa: N802
        key = "alpha" if "alpha" in config or "negative_slope" not in config else "negative_slope"
        alpha = self.config_float(layer, config, key, 0.3)
        return self._elementwise(layer, self.single(layer, inputs), "LeakyReLU", alpha)

    def ELU(self, layer, config, inputs):  # noqa: N802
        alpha = self.config_float(layer, config, "alpha", 1.0)
        return self._elementwise(layer, self.single(layer, inputs), "ELU", alpha)

    def Softmax(self, layer, config, inputs):  # noqa: N802
        self.option(layer, config, "axis", -1, [-1])
        return self._elementwise(layer, self.single(layer, inputs), "Softmax", dim=1)

    def Dropout(self, layer, config, inputs):  # noqa: N802
        rate = self.config_float(layer, config, "rate", 0.5, minimum=0.0, below=1.0)
        return self._elementwise(layer, self.single(layer, inputs), "Dropout", rate)

    def SpatialDropout2D(self, layer, config, inputs):  # noqa: N802
        self.channels_last(layer, config)
        value = self.single(layer, inputs)
        self.image(layer, value)
        rate = self.config_float(layer, config, "rate", 0.5, minimum=0.0, below=1.0)
        return self._elementwise(layer, value, "Dropout2d", rate)

    def _pool(self, layer, config, inputs, kind):
        self.channels_last(layer, config)
        value = self.single(layer, inputs)
        _, h, w = self.image(layer, value)
        kernel = self.pair(layer, config, "pool_size", [2, 2])
        stride = config.get("strides")
        stride = kernel if stride is None else self.pair(layer, config, "strides")
        padding = self.config_str(layer, config, "padding", "valid", ["valid", "same"])
        if padding == "valid" and any(size is not None and k > size
                                      for size, k in zip((h, w), kernel, strict=True)):
            self.fail(layer, f"the pooling window {list(kernel)} is larger than its input "
                             f"({h}, {w})")
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
        out = _Value(self.call(layer, pool, [value.symbol], layer), "image")
        self.check_work(layer, out.symbol, kernel[0] * kernel[1])
        return out

    def MaxPooling2D(self, layer, config, inputs):  # noqa: N802
        return self._pool(layer, config, inputs, "max")

    def AveragePooling2D(self, layer, config, inputs):  # noqa: N802
        return self._pool(layer, config, inputs, "avg")

    def _global(self, layer, config, inputs, module):
        self.channels_last(layer, config)
        value = self.single(layer, inputs)
        self.image(layer, value)
        keepdims = self.config_bool(layer, config, "keepdims", False)
        pooled = self.call(layer, module, [value.symbol], layer)
        if keepdims:
            return _Value(pooled, "image")
        flat = self.call(layer, self.make(layer, "Flatten"), [pooled], f"{layer}_flatten")
        return _Value(flat, "vector")

    def GlobalAveragePooling2D(self, layer, config, inputs):  # noqa: N802
        module = (self.make(layer, "GlobalAvgPool2d") if _layer("GlobalAvgPool2d")
                  else self.make(layer, "AdaptiveAvgPool2d", 1))
        return self._global(layer, config, inputs, module)

    def GlobalMaxPooling2D(self, layer, config, inputs):  # noqa: N802
        _, h, w = self.image(layer, self.single(layer, inputs))
        if h is None or w is None:
            self.fail(layer, "GlobalMaxPooling2D needs a fixed input size")
        return self._global(layer, config, inputs, self.make(layer, "MaxPool2d", (h, w)))

    def Flatten(self, layer, config, inputs):  # noqa: N802
        value = self.single(layer, inputs)
        if value.layout != "image":
            return value
        self.channels_last(layer, config)
        if any(d is None for d in self.image(layer, value)):
            self.fail(layer, "Flatten of an image needs a fixed input size")
        flat = self.call(layer, self.make(layer, "Flatten"), [value.symbol], layer)
        return _Value(flat, "flat", tuple(value.symbol.shape))

    def ZeroPadding2D(self, layer, config, inputs):  # noqa: N802
        self.channels_last(layer, config)
        value = self.single(layer, inputs)
        self.image(layer, value)
        pad = config.get("padding", 1)
        if _is_int(pad):
            pad = [[pad, pad], [pad, pad]]
        elif isinstance(pad, list) and len(pad) == 2 and all(_is_int(p) for p in pad):
            pad = [[pad[0], pad[0]], [pad[1], pad[1]]]

        def is_pair(p):
            return isinstance(p, list) and len(p) == 2 and all(
                _is_int(v) and 0 <= v <= MAX_WINDOW for v in p)

        if not (isinstance(pad, list) and len(pad) == 2 and all(is_pair(p) for p in pad)):
            self.fail(layer, f"unsupported padding={brief(config.get('padding'))} (integers in "
                             f"[0, {MAX_WINDOW}])")
        (top, bottom), (left, right) = pad
        module = self.make(layer, "ConstantPad2d", (left, right, top, bottom), 0.0)
        return _Value(self.call(layer, module, [value.symbol], layer), "image")

    def merged(self, layer, inputs, least):
        if not least <= len(inputs) <= MAX_INPUTS:
            self.fail(layer, f"takes {least} to {MAX_INPUTS} input tensors, got {len(inputs)}")

    def Add(self, layer, config, inputs):  # noqa: N802
        self.merged(layer, inputs, 2)
        layouts = {(v.layout, v.chw) for v in inputs}
        if len(layouts) != 1:
            self.fail(layer, "inputs of Add have different layouts")
        out = self.call(layer, self.make(layer, "Add"), [v.symbol for v in inputs], layer)
        return _Value(out, inputs[0].layout, inputs[0].chw)

    def Concatenate(self, layer, config, inputs):  # noqa: N802
        self.merged(layer, inputs, 1)
        axis = config.get("axis", -1)
        if not _is_int(axis):
            self.fail(layer, f"axis must be an integer, got {brief(axis)}")
        layout = inputs[0].layout
        if any(v.layout != layout for v in inputs) or layout == "flat":
            self.fail(layer, "Concatenate of flattened images or of mixed layouts is not supported")
        dims = {-1: 1, 3: 1, 1: 2, 2: 3} if layout == "image" else {-1: 1, 1: 1}
        if axis not in dims:
            self.fail(layer, f"unsupported axis={axis} (supported: {sorted(dims)})")
        out = self.call(layer, self.make(layer, "Concat", dims[axis]),
                        [v.symbol for v in inputs], layer)
        return _Value(out, layout)

    # -- the graph ------------------------------------------------------------------------------

    def run(self, layers, input_layers, output_layers):
        if len(layers) > MAX_LAYERS:
            raise ModelFormatError(f"the topology has {len(layers)} layers, over the {MAX_LAYERS} "
                                   f"limit", path=self.path)
        handlers = {}
        for index, spec in enumerate(layers):
            if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
                    or not isinstance(spec.get("config"), dict):
                raise ModelFormatError(f"layer {index} of the topology is not "
                                       f"{{'class_name', 'config', ...}}", path=self.path)
            name = spec.get("name", spec["config"].get("name"))
            if not isinstance(name, str) or not name or name in handlers:
                raise ModelFormatError(f"layer {index} has a missing or repeated name "
                                       f"{brief(name)}", path=self.path)
            if spec["class_name"] not in self._KNOWN:
                self.fail(name, f"unsupported layer class '{spec['class_name']:.60}'")
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
            if isinstance(calls[0], dict):
                self.fail(name, "uses the Keras 3 node format, which is not supported")
            if not isinstance(calls[0], list):
                self.fail(name, f"inbound_nodes must hold a list of tensor references, got "
                                f"{brief(calls[0])}")
            if len(calls[0]) > MAX_INPUTS:
                self.fail(name, f"has {len(calls[0])} inbound tensors, over the {MAX_INPUTS} "
                                f"limit")
            args = []
            for ref in calls[0]:
                if isinstance(ref, dict):
                    self.fail(name, "uses the Keras 3 node format, which is not supported")
                key = _ref_key(ref)
                if key not in self.values:
                    self.fail(name, f"has an inbound tensor {brief(ref)} that no earlier layer "
                                    f"produced")
                args.append(self.values[key])
            if spec["class_name"] != "InputLayer" and not args:
                self.fail(name, "has no inputs")
            self._check_options(name, spec["class_name"], spec["config"])
            self.values[(name, 0, 0)] = handlers[name](self, name, spec["config"], args)
        if not output_layers or not input_layers:
            raise ModelFormatError("the model lists no inputs or no outputs", path=self.path)
        outputs = []
        for ref in output_layers:
            if _ref_key(ref) not in self.values:
                raise ModelFormatError(f"output {brief(ref)} names no layer output",
                                       path=self.path)
            outputs.append(self.values[_ref_key(ref)].symbol)
        symbols = []
        for ref in input_layers:
            symbol = self.values[_ref_key(ref)].symbol if _ref_key(ref) in self.values else None
            if not any(symbol is s for s in self.inputs):
                raise ModelFormatError(f"input {brief(ref)} names no InputLayer", path=self.path)
            if any(symbol is s for s in symbols):
                raise ModelFormatError(f"input {brief(ref)} is listed twice", path=self.path)
            symbols.append(symbol)
        unused = sorted(f"{layer}/{w}" for layer, w in self.weights if (layer, w) not in self.used)
        if unused:
            raise ModelFormatError(f"weights not used by any layer: {brief(unused)}",
                                   path=self.path)
        try:
            return Model(symbols, outputs)
        except RecursionError:
            raise ModelFormatError("the layer graph is too deep to assemble", path=self.path) \
                from None
        except (MinicnnError, ValueError, TypeError) as exc:
            raise ModelFormatError(f"cannot assemble the model: {exc}", path=self.path) from None

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
            self.fail(name, f"unsupported option(s) {brief(unknown)} for {class_name}")


def _ref_key(ref):
    """(layer name, node index, tensor index) of a Keras 2 tensor reference, or None."""
    if isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str) \
            and all(isinstance(v, int) and not isinstance(v, bool) for v in ref[1:3]):
        return (ref[0], ref[1], ref[2])
    return None
