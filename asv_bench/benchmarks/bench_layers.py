"""Every registered layer type, forward and backward, on the CPU and (when present) the GPU.

The layer types come from minicnn's registry (built-ins plus installed plugins), so a new layer is
benchmarked without touching this file: built-in types use the sizes in ``SIZES``; any other type
uses its first conformance case (``conformance_cases`` / ``minicnn_conformance``, see
docs/writing-a-plugin.md) with the batch axis scaled up to about a million input elements. A type
with neither is skipped, as is the ``cuda`` variant of a layer without a GPU kernel or on a machine
without a GPU (``NotImplementedError`` in ``setup``).

GB/s counts the bytes a pass must move at least: forward reads the inputs and parameters and
writes the outputs; backward reads the inputs, outputs and output gradients and writes the input
and parameter gradients. GFLOP/s uses the layer's own ``flops()`` (types that report none are not
listed in ``LayerGFLOPs``).
"""

import numpy as np

import minicnn
from minicnn import conformance
from minicnn.registry import get_registry

from ._util import best_seconds, data

_IMAGE = (32, 64, 56, 56)      # a ResNet-50-like early activation: 25.7 MB of float32
# type name -> (constructor args, constructor kwargs, input shapes[, index classes])
SIZES = {
    "AdaptiveAvgPool2d": ((7,), {}, [_IMAGE]),
    "Add": ((), {}, [_IMAGE, _IMAGE]),
    "AvgPool2d": ((2,), {}, [_IMAGE]),
    "BCELoss": ((), {}, [(256, 4096), (256, 4096)]),
    "BCEWithLogitsLoss": ((), {}, [(256, 4096), (256, 4096)]),
    "BatchNorm1d": ((256,), {}, [(256, 256)]),
    "BatchNorm2d": ((64,), {}, [_IMAGE]),
    "BatchNorm3d": ((16,), {}, [(8, 16, 16, 32, 32)]),
    "Concat": ((), {}, [_IMAGE, _IMAGE]),
    "ConstantPad2d": ((1, 0.5), {}, [_IMAGE]),
    "Conv1d": ((64, 64, 3), {"padding": 1}, [(32, 64, 1024)]),
    "Conv2d": ((32, 32, 3), {"padding": 1}, [(16, 32, 32, 32)]),
    "Conv3d": ((8, 8, 3), {"padding": 1}, [(4, 8, 16, 32, 32)]),
    "ConvTranspose2d": ((32, 16, 4), {"stride": 2, "padding": 1}, [(16, 32, 16, 16)]),
    "CrossEntropyLoss": ((), {}, [(256, 1000), (256,)], 1000),
    "Dropout": ((), {}, [_IMAGE]),
    "Dropout1d": ((), {}, [(32, 64, 3136)]),
    "Dropout2d": ((), {}, [_IMAGE]),
    "ELU": ((), {}, [_IMAGE]),
    "Flatten": ((), {}, [_IMAGE]),
    "GlobalAvgPool2d": ((), {}, [_IMAGE]),
    "Identity": ((), {}, [_IMAGE]),
    "L1Loss": ((), {}, [(256, 4096), (256, 4096)]),
    "LPPool2d": ((2, 2), {}, [_IMAGE]),
    "LeakyReLU": ((), {}, [_IMAGE]),
    "Linear": ((1024, 1024), {}, [(256, 1024)]),
    "LogSoftmax": ((), {"dim": 1}, [(256, 1000)]),
    "MSELoss": ((), {}, [(256, 4096), (256, 4096)]),
    "MaxPool2d": ((2,), {}, [_IMAGE]),
    "NLLLoss": ((), {}, [(256, 1000), (256,)], 1000),
    "ReLU": ((), {}, [_IMAGE]),
    "Sigmoid": ((), {}, [_IMAGE]),
    "SmoothL1Loss": ((), {}, [(256, 4096), (256, 4096)]),
    "Softmax": ((), {"dim": 1}, [(256, 1000)]),
    "Tanh": ((), {}, [_IMAGE]),
    "ZeroPad2d": ((1,), {}, [_IMAGE]),
}
_TARGET_ELEMENTS = 1 << 20
_PROBABILITIES = ("BCELoss",)


def _spec(type_name):
    """``(cls, args, kwargs, shapes, index_high)`` to benchmark, or None."""
    cls = get_registry().layers[type_name][0]
    if type_name in SIZES and cls.__module__.startswith("minicnn."):
        args, kwargs, shapes, *high = SIZES[type_name]
        return cls, args, kwargs, shapes, (high or [2])[0]
    try:
        cases, _ = conformance.find_cases(cls)
    except Exception:
        return None
    for case in cases:
        if case.raises is None and case.shapes:
            scale = max(1, _TARGET_ELEMENTS // max(1, int(np.prod(case.shapes[0]))))
            shapes = [(s[0] * scale,) + tuple(s[1:]) for s in case.shapes]
            return cls, case.args, case.kwargs, shapes, case.index_high
    return None


def _inputs(layer, shapes, high, type_name):
    rng = np.random.default_rng(0)
    xs = []
    for i, shape in enumerate(shapes):
        kinds = layer.input_kinds
        if (kinds[i] if i < len(kinds) else kinds[-1]) == "index":
            xs.append(rng.integers(0, high, shape).astype(np.int64))
        elif type_name in _PROBABILITIES:
            xs.append(rng.uniform(0.05, 0.95, shape).astype(np.float32))
        else:
            xs.append(data(shape, seed=i))
    return xs


def _device_ready(type_name, device):
    """The device, or NotImplementedError (asv: skipped) unless it can run this layer type."""
    if device == "cpu":
        return None
    try:
        from minicnn.device import get_device
        dev = get_device(device)
    except Exception as exc:
        raise NotImplementedError(f"device '{device}' not available: {exc}") from exc
    registry = get_registry()
    if hasattr(registry, "enable_device"):      # built-in GPU kernels load with the device
        registry.enable_device(device)
    if registry.kernel(type_name, device) is None:
        raise NotImplementedError(f"no '{device}' kernel for {type_name}")
    return dev


def _sync(device):
    if device == "cuda":
        from numba import cuda
        cuda.synchronize()


def _nbytes(arrays):
    return sum(int(np.prod(np.shape(a))) * np.asarray(a).dtype.itemsize
               if not hasattr(a, "nbytes") else int(a.nbytes) for a in arrays)


LAYER_TYPES = sorted(get_registry().layers)


class _LayerBench:
    def setup(self, type_name, device):
        dev = _device_ready(type_name, device)
        spec = _spec(type_name)
        if spec is None:
            raise NotImplementedError(f"no benchmark size and no conformance case for {type_name}")
        cls, args, kwargs, shapes, high = spec
        minicnn.manual_seed(0)
        self.layer = cls(*args, **kwargs)
        self.device = device
        host = _inputs(self.layer, shapes, high, type_name)
        self.in_shapes = [tuple(x.shape) for x in host]
        if dev is not None:
            self.layer.to(device)
            self.xs = [dev.asarray(x) for x in host]
        else:
            self.xs = host
        self.executor = self.layer._get_executor()
        ys = self.executor.forward(self.xs)
        self.out_shapes = [tuple(np.shape(y)) for y in ys]
        self.gys = [data(np.shape(y), seed=9) if np.ndim(y) else 1.0 for y in ys]
        if dev is not None:
            self.gys = [dev.asarray(g) if np.ndim(g) else g for g in self.gys]
        self.executor.backward(self.gys)   # compile and allocate outside the timing
        _sync(device)
        params = [p.data for p in self.layer.parameters()]
        self.forward_bytes = _nbytes(self.xs) + _nbytes(params) + _nbytes(ys)
        self.backward_bytes = (_nbytes(self.xs) + 2 * _nbytes(ys) + 2 * _nbytes(params)
                               + _nbytes([x for x in self.xs if x.dtype.kind == "f"]))

    def _forward(self):
        self.executor.forward(self.xs)
        _sync(self.device)

    def _backward(self):
        self.executor.backward(self.gys)
        _sync(self.device)


class Layers(_LayerBench):
    params = (LAYER_TYPES, ["cpu", "cuda"])
    param_names = ["layer", "device"]
    timeout = 120

    def time_forward(self, type_name, device):
        self._forward()

    def time_backward(self, type_name, device):
        self._backward()              # after setup's forward: the saved state stays valid

    def time_forward_backward(self, type_name, device):
        self._forward()
        self._backward()

    def track_forward_gbytes_per_s(self, type_name, device):
        return self.forward_bytes / best_seconds(self._forward) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"

    def track_backward_gbytes_per_s(self, type_name, device):
        return self.backward_bytes / best_seconds(self._backward) / 1e9

    track_backward_gbytes_per_s.unit = "GB/s"


def _has_flops(type_name):
    spec = _spec(type_name)
    if spec is None:
        return False
    cls, args, kwargs, shapes, _ = spec
    try:
        layer = cls(*args, **kwargs)
        return layer.flops(shapes, layer.infer_shapes(shapes)) > 0
    except Exception:
        return False


class LayerGFLOPs(_LayerBench):
    """Forward GFLOP/s of the layer types that count their floating-point operations."""

    params = ([t for t in LAYER_TYPES if _has_flops(t)], ["cpu", "cuda"])
    param_names = ["layer", "device"]
    timeout = 120

    def setup(self, type_name, device):
        super().setup(type_name, device)
        self.flops = self.layer.flops(self.in_shapes, self.out_shapes)

    def track_forward_gflops(self, type_name, device):
        return self.flops / best_seconds(self._forward) / 1e9

    track_forward_gflops.unit = "GFLOP/s"
