"""Module (anything callable: a layer or a model), Layer (a leaf with kernels) and Param.

The contract, Caffe's split in Python:

* ``__init__`` validates hyper-parameters and creates parameters (PyTorch's names and defaults);
* ``infer_shapes(in_shapes)`` is pure: full shapes (batch axis first) in, output shapes out, or a
  :class:`ShapeError` with what was expected and what came;
* the arithmetic lives in kernels (:class:`minicnn.Kernel`), looked up per device in the registry.

Every module is callable on numpy arrays (``y = layer(x)``, then ``gx = layer.backward(gy)``) and on
symbols (``h = layer(x_symbol)``) to describe a graph.
"""

import copy
import functools
import inspect
from collections import OrderedDict

import numpy as np

from . import structure
from .errors import ShapeError
from .symbolic import Node, is_symbolic

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Param:
    """A trainable array: ``data``, its ``grad`` (filled by backward) and ``requires_grad``."""

    __slots__ = ("data", "grad", "_requires_grad")

    def __init__(self, data, requires_grad=True):
        self.data = data
        self.grad = None
        self._requires_grad = requires_grad

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        """Freezing or unfreezing is counted (``structure.flags_version``): executors work out
        which values need gradients once per count, not at every backward pass."""
        if flag != self._requires_grad:
            self._requires_grad = flag
            structure.flags_changed()

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return int(np.prod(self.data.shape))

    def __deepcopy__(self, memo):
        new = Param(_deepcopy(self.data, memo), self.requires_grad)
        new.grad = _deepcopy(self.grad, memo)
        memo[id(self)] = new
        return new

    def __repr__(self):
        frozen = "" if self.requires_grad else ", frozen"
        return f"Param(shape={tuple(self.data.shape)}, dtype={self.data.dtype}{frozen})"


def _deepcopy(value, memo):
    """copy.deepcopy, except that device arrays are copied on their device (numba's device arrays
    do not deep-copy by themselves)."""
    if hasattr(value, "copy_to_host"):
        out = memo.get(id(value))
        if out is None:
            from .device import device_of, get_device
            out = memo[id(value)] = get_device(device_of(value)).copy(value)
        return out
    return copy.deepcopy(value, memo)


def _recording_config(init):
    """Wrap ``__init__`` so the most derived class's call records its arguments in ``_config``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        if type(self).__init__ is wrapped and "_config" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            config = {}
            for name, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    config.update(value)
                else:
                    config[name] = value
            self.__dict__["_config"] = config
        init(self, *args, **kwargs)

    return wrapped


class Module:
    """Base of layers and models: parameters, state dicts, modes, devices, eager calls."""

    num_inputs = 1          # None: any number of inputs, passed as a list
    input_kinds = ("float",)  # per input: "float" (activations) or "index" (integer labels)

    def __init__(self):
        self.training = True
        self.check_finite = False    # True: NaN/Inf in inputs or any node's output is an error
        self._device = "cpu"
        self._executor = None

    type_name = "Module"   # the registry name; each subclass gets its class name unless it sets one

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_config(cls.__init__)

    def config(self):
        """The constructor arguments this module was built with (Keras' get_config), for model
        files."""
        return dict(self.__dict__.get("_config", {}))

    # -- the module tree ------------------------------------------------------------------------

    def named_children(self):
        """Direct sub-modules as (name, module); leaves have none."""
        return iter(())

    def _own_params(self):
        return {}

    def _own_buffers(self):
        return {}

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        """(dotted name, Param) for every parameter once, PyTorch-style names
        ("features.3.weight")."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, param in module._own_params().items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{mod_name}.{name}" if mod_name else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        """(dotted name, array) of non-trainable state such as batch norm's running statistics; a
        module that appears twice is listed once, as for parameters."""
        seen = set()
        for mod_name, module in self.named_modules():
            if id(module) in seen:
                continue
            seen.add(id(module))
            for name, buf in module._own_buffers().items():
                yield (f"{mod_name}.{name}" if mod_name else name), buf

    def state_dict(self):
        """Every parameter and buffer by dotted name, as host numpy arrays (copies)."""
        from .device import to_numpy
        state = OrderedDict()
        for name, param in self.named_parameters():
            state[name] = to_numpy(param.data).copy()
        for name, buf in self.named_buffers():
            state[name] = to_numpy(buf).copy()
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into parameters and buffers by name.

        Returns ``(missing, unexpected)`` key lists; with ``strict`` either being non-empty is a
        KeyError. A shape mismatch is always a ValueError naming the key.
        """
        from .device import copy_into
        targets = OrderedDict(self.named_parameters())
        targets.update(self.named_buffers())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for key, target in targets.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            tdata = target.data if isinstance(target, Param) else target
            if tuple(value.shape) != tuple(tdata.shape):
                raise ValueError(f"load_state_dict: '{key}' has shape {tuple(value.shape)}, "
                                 f"the model expects {tuple(tdata.shape)}")
            copy_into(tdata, value.astype(tdata.dtype, copy=False))
        return missing, unexpected

    # -- modes, freezing, devices, dtypes ---------------------------------------------------------

    def train(self, mode=True):
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def freeze(self, *prefixes):
        """Stop gradients of parameters whose name starts with any prefix (all when none given)."""
        self._set_requires_grad(prefixes, False)
        return self

    def unfreeze(self, *prefixes):
        self._set_requires_grad(prefixes, True)
        return self

    def _set_requires_grad(self, prefixes, flag):
        matched = False
        for name, param in self.named_parameters():
            if not prefixes or any(name == p or name.startswith(p + ".") for p in prefixes):
                param.requires_grad = flag
                if not flag:
                    param.grad = None
                matched = True
        if prefixes and not matched:
            raise KeyError(f"no parameter name starts with any of {list(prefixes)}")

    def zero_grad(self):
        """Drop every gradient (backward overwrites gradients, so this is needed only to free
        memory)."""
        for param in self.parameters():
            param.grad = None

    @property
    def device(self):
        return self._device

    def to(self, device, fallback=None):
        """Move parameters and buffers to ``"cpu"`` or ``"cuda"``; returns self.

        Moving to a device checks first that every layer has a kernel there: a layer without one is
        a :class:`KernelMissingError` listing the layer types and where they are, and nothing
        moves. With ``fallback="cpu"`` those layers stay on the CPU instead (parameters and buffers
        on the host), and the executor runs them with explicit host-device copies of their inputs
        and outputs, logged on the ``minicnn.device`` logger: never a silent fallback.
        """
        from .device import get_device
        if fallback not in (None, "cpu"):
            raise ValueError(f"fallback must be None or 'cpu', got {fallback!r}")
        dev = get_device(device)
        stay = self._layers_without_kernel(dev.name, fallback)
        cpu = get_device("cpu")
        for _, module in self.named_modules():
            if id(module) in stay:
                module._move_arrays(cpu)
                module._device = "cpu"
                module._fallback = "cpu"
            else:
                module._move_arrays(dev)
                module._device = dev.name
                module.__dict__.pop("_fallback", None)
            module.__dict__.pop("_last_device", None)
        if dev.name != "cpu":      # one buffer for all: an optimiser step is one launch
            from .packed import pack_parameters
            pack_parameters(self.parameters(), dev)
        structure.changed()
        return self

    def _array_devices(self):
        """The devices holding this tree's parameters and buffers, layers kept on the host by
        ``to(..., fallback="cpu")`` left out."""
        from .device import device_of
        devices = set()
        for _, module in self.named_modules():
            if "_fallback" in module.__dict__:
                continue
            arrays = [p.data for p in module._own_params().values()]
            arrays += [b for b in module._own_buffers().values() if b is not None]
            devices.update(device_of(a) for a in arrays)
        return devices

    def _adopt_device(self):
        """A container built from modules that all live on one device runs there (as a PyTorch
        module built from CUDA modules is on CUDA); with mixed devices it stays where it is, and
        a call says which layer is where."""
        devices = self._array_devices()
        if len(devices) == 1:
            self._device = devices.pop()

    def _layers_without_kernel(self, device, fallback):
        """ids of the layers to keep on the CPU (``fallback="cpu"``); raises KernelMissingError
        when a layer has no kernel on ``device`` and no fallback is allowed."""
        if device == "cpu":
            return set()
        from .errors import KernelMissingError
        from .registry import get_registry
        registry = get_registry()
        registry.enable_device(device)
        missing = OrderedDict()
        for name, module in self.named_modules():
            if isinstance(module, Layer) and registry.kernel(module.type_name, device) is None:
                missing.setdefault(module.type_name, []).append((name or module.type_name,
                                                                 module))
        if not missing:
            return set()
        listing = "; ".join(f"{t} ({', '.join(n for n, _ in mods)})"
                            for t, mods in missing.items())
        if fallback is None:
            raise KernelMissingError(
                f"{type(self).__name__}.to('{device}'): no '{device}' kernel for: {listing}. "
                f"Pass fallback='cpu' to run these layers on the CPU with logged host-device "
                f"copies, or keep the model on the CPU")
        no_cpu = [t for t in missing if registry.kernel(t, "cpu") is None]
        if no_cpu:
            raise KernelMissingError(f"{type(self).__name__}.to('{device}', fallback='cpu'): no "
                                     f"'{device}' nor 'cpu' kernel for: {', '.join(no_cpu)}")
        import logging
        logging.getLogger("minicnn.device").warning(
            "%s.to('%s'): no %s kernel for %s; these layers stay on the CPU (fallback='cpu'): "
            "their parameters and buffers stay on the host, and each call copies their inputs "
            "to the host and their outputs back to the device", type(self).__name__, device,
            device, listing)
        return {id(m) for mods in missing.values() for _, m in mods}

    def _move_arrays(self, dev):
        for param in self._own_params().values():
            param.data = dev.asarray(param.data)
            if param.grad is not None:
                param.grad = dev.asarray(param.grad)
        for name, buf in self._own_buffers().items():
            setattr(self, name, dev.asarray(buf))

    def astype(self, dtype):
        """Cast parameters and buffers (float32 by default; float64 for gradient checks)."""
        from .device import get_device, to_numpy
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"parameters must be float32 or float64, not {dtype}")
        for _, module in self.named_modules():
            dev = get_device(module._device)   # device arrays are cast through the host
            for param in module._own_params().values():
                param.data = dev.asarray(to_numpy(param.data).astype(dtype))
                param.grad = None
            for name, buf in module._own_buffers().items():
                if buf.dtype.kind == "f":
                    setattr(module, name, dev.asarray(to_numpy(buf).astype(dtype)))
        structure.changed()
        return self

    def double(self):
        return self.astype(np.float64)

    def float(self):
        return self.astype(np.float32)

    @property
    def dtype(self):
        """The dtype of the parameters (None for a module without any)."""
        for param in self.parameters():
            return param.data.dtype
        return None

    def num_parameters(self, trainable_only=False):
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- shapes and graphs ------------------------------------------------------------------------

    def infer_shapes(self, in_shapes):
        """Output shapes (batch axis first) for these input shapes; raises ShapeError."""
        raise NotImplementedError

    def flops(self, in_shapes, out_shapes):
        """Floating-point operations of one forward pass (multiply and add count as two)."""
        return 0

    def _lower(self, builder, in_values, name):
        """Add this module's steps to an executor graph; return the output values."""
        raise NotImplementedError

    # -- calling ----------------------------------------------------------------------------------

    def __call__(self, *inputs, name=None):
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = list(inputs[0])
        if is_symbolic(inputs):
            node = Node(self, inputs, name=name)
            return node.outputs[0] if len(node.outputs) == 1 else node.outputs
        outputs = self._get_executor(self._run_device(inputs)).forward(list(inputs))
        return outputs[0] if len(outputs) == 1 else outputs

    def _run_device(self, inputs):
        """Where a call runs: the module's device, except that a module without parameters or
        buffers (a loss, a pooling layer on its own) on the CPU follows device-array inputs (no
        copy is made; nothing of the module's has to move)."""
        if self._device != "cpu" or not any(hasattr(x, "copy_to_host")
                                            or hasattr(x, "__cuda_array_interface__")
                                            for x in inputs):
            return self._device
        for _ in self.named_parameters():
            return self._device
        for _ in self.named_buffers():
            return self._device
        from .device import device_of
        return next(device_of(x) for x in inputs if device_of(x) != "cpu")

    def backward(self, grad_output=None, input_grad=True):
        """Back-propagate from the last call: fill every trainable Param.grad, return input
        gradients.

        ``grad_output`` is the gradient of the output (a list for several outputs). An input with
        no path to the outputs gets None, as its ``.grad`` stays None in PyTorch. With
        ``input_grad=False`` the gradient with respect to the inputs is not computed and None is
        returned.
        """
        grads = self._get_executor().backward(grad_output, input_grad=input_grad)
        if grads is None:
            return None
        return grads[0] if len(grads) == 1 else grads

    def activation(self, name):
        """The value a node produced in the last forward pass (a feature tap), by node name."""
        return self._get_executor().activation(name)

    def gradient(self, name):
        """The gradient of the last backward pass with respect to the value node ``name``
        produced (its output: a list for several), as a fresh numpy array: what Grad-CAM and
        feature visualisations need, like PyTorch's ``retain_grad``. Zeros where the output does
        not reach the loss. A RuntimeError when that backward did not need it: all layers before
        the node frozen and ``input_grad=False``."""
        return self._get_executor().gradient(name)

    def _get_executor(self, device=None):
        """The executor of the last call (``device=None``: backward, taps), or one for
        ``device``."""
        from .executor import Executor
        if device is None:
            device = self.__dict__.get("_last_device") or self._device
        self.__dict__["_last_device"] = device
        if self._executor is None or self._executor.device != device:
            self._executor = Executor(self, device)
        return self._executor

    def save_weights(self, path):
        """Write the state dict to a safetensors file (atomically)."""
        from .io import save_weights
        save_weights(self, path)

    def load_weights(self, path, strict=True):
        """Load a state dict by name from a weights, model or checkpoint file; returns the report of
        missing and unexpected keys (``strict=False`` for transfer learning)."""
        from .io import load_weights
        return load_weights(self, path, strict=strict)

    def summary(self, input_shape=None):
        """A table of nodes: output shapes, parameters (trainable / frozen), FLOPs, device."""
        from .summary import summarize
        return summarize(self, input_shape)

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def __getstate__(self):
        # copies (copy.deepcopy) rebuild their executor instead of copying its buffers
        state = self.__dict__.copy()
        state["_executor"] = None
        return state

    def __deepcopy__(self, memo):
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__getstate__().items():
            new.__dict__[key] = _deepcopy(value, memo)
        return new


class Layer(Module):
    """A leaf of the graph: hyper-parameters, parameters, buffers, and kernels found by type
    name."""

    num_outputs = 1
    differentiable_inputs = None   # None: every float input gets a gradient; else a bool per input

    def __init__(self):
        super().__init__()
        self._params = OrderedDict()
        self._buffers = OrderedDict()

    def add_param(self, name, data, requires_grad=True):
        """Declare a parameter (also reachable as ``self.<name>``)."""
        param = Param(np.asarray(data, order="C"), requires_grad)
        self._params[name] = param
        object.__setattr__(self, name, param)
        return param

    def __setattr__(self, name, value):
        """``self.name = Param(array)`` declares a parameter too, as PyTorch's ``nn.Parameter``
        does (an unregistered one would silently never train); an array assigned over a
        parameter is an error that says to assign its ``.data``."""
        params = self.__dict__.get("_params")
        if params is not None:
            if isinstance(value, Param):
                if params.get(name) is not value:
                    params[name] = value
                    structure.changed()      # plans pack and order the parameters
            elif name in params and value is not None:
                raise TypeError(f"{self.type_name}.{name} is a parameter: assign a Param, or "
                                f"the array to {name}.data, not a {type(value).__name__}")
        object.__setattr__(self, name, value)

    def add_buffer(self, name, data):
        """Declare non-trainable state saved in the state dict (running statistics...)."""
        self._buffers[name] = None
        object.__setattr__(self, name, np.asarray(data, order="C"))   # keeps 0-d arrays 0-d

    def _own_params(self):
        return self._params

    def _own_buffers(self):
        return OrderedDict((name, getattr(self, name)) for name in self._buffers)

    def _lower(self, builder, in_values, name):
        return builder.add_step(name, self, in_values)

    def check_inputs(self, in_shapes, count=None):
        """Raise ShapeError unless exactly ``count`` (default ``num_inputs``) inputs came."""
        count = self.num_inputs if count is None else count
        if count is not None and len(in_shapes) != count:
            raise ShapeError("wrong number of inputs", expected=f"{count} input(s)",
                             received=f"{len(in_shapes)}")

    def check_rank(self, shape, rank, what="input"):
        """Raise ShapeError unless ``shape`` has ``rank`` axes; ``what`` describes the layout."""
        if len(shape) != rank:
            raise ShapeError(f"{what} has the wrong number of axes",
                             expected=f"{rank} axes", received=f"shape {tuple(shape)}")


class Loss(Layer):
    """A layer whose output is a scalar: ``value = loss(prediction, target); g = loss.backward()``.

    ``reduction`` is ``"mean"`` (default) or ``"sum"``, as in PyTorch. The target gets no gradient.

    ``loss(...)`` returns a Python float, so on the GPU it waits for the forward pass to finish.
    ``loss.compute(...)`` does the same work but returns the 0-d array holding the value (numpy
    on the CPU, a device array on the GPU) without reading it: a loop that does not look at every
    step's loss keeps the GPU busy while the host queues the backward pass, as a PyTorch loop
    without ``loss.item()`` does. ``float(minicnn.to_numpy(value))`` reads it later.
    """

    num_inputs = 2
    input_kinds = ("float", "float")

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            from .errors import ConfigError
            raise ConfigError(f"{type(self).__name__}: reduction must be 'mean' or 'sum', "
                              f"got {reduction!r}")
        self.reduction = reduction

    def __call__(self, *inputs, name=None):
        out = super().__call__(*inputs, name=name)
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = inputs[0]          # loss([prediction, target]) as well as loss(pred, target)
        if is_symbolic(inputs):
            return out
        from .device import to_numpy
        return float(to_numpy(out))

    def compute(self, *inputs):
        """The loss as a 0-d array on the inputs' device, not read back (see the class doc);
        ``backward()`` follows it as it follows a call."""
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        if is_symbolic(inputs):
            raise TypeError(f"{type(self).__name__}.compute runs on arrays; call the loss on "
                            f"symbolic values to add it to a graph")
        self.__dict__["_value_unread"] = True   # device kernels defer checks that would wait
        try:
            return Layer.__call__(self, *inputs)
        finally:
            del self.__dict__["_value_unread"]

    differentiable_inputs = (True, False)   # the target gets no gradient

    def backward(self, grad_output=None, input_grad=True):
        """Gradient of the loss with respect to the prediction (``grad_output`` defaults to 1)."""
        grads = self._get_executor().backward(1.0 if grad_output is None else grad_output,
                                              input_grad=input_grad)
        return None if grads is None else grads[0]

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
