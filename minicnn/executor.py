"""Runs a module's graph on one device: lowering, shape inference, allocation, forward and backward.

An executor is built once per (module, device) and keeps one *plan* per input signature (shapes,
dtypes). A plan is a flat list of steps (one per layer node) over numbered values; buffers for every
intermediate value, gradient and kernel workspace are allocated once and reused, so memory does not
grow from call to call. Outputs and returned gradients are fresh arrays, so a caller never sees them
overwritten.
"""

import logging
from collections import OrderedDict

import numpy as np

from . import fusion, structure
from .device import device_of, get_device, to_numpy
from .errors import (
    ConfigError,
    InputError,
    KernelMissingError,
    NonFiniteError,
    PluginError,
    ShapeError,
)
from .layer import Layer
from .packed import by_dtype, pack, packable
from .registry import get_registry

_MAX_PLANS = 4   # input signatures remembered per executor (train batch, last batch, eval batch...)
log = logging.getLogger("minicnn.device")


class Step:
    """One layer node in a plan."""

    __slots__ = ("name", "layer", "kernel", "ins", "outs", "ws", "fused", "fused_into", "view")

    def __init__(self, name, layer, kernel, ins, outs):
        self.name, self.layer, self.kernel, self.ins, self.outs = name, layer, kernel, ins, outs
        self.ws = {}
        self.fused = None        # the activation step this step's kernel applies (fusion.py)
        self.fused_into = None   # the step whose kernel runs this one's forward
        self.view = False        # its output buffer is a view of its input's: nothing to run


class GraphBuilder:
    """Collects steps while modules lower themselves (``Module._lower`` calls ``add_step``)."""

    def __init__(self, registry, device):
        self.registry = registry
        self.device = device
        self.shapes, self.kinds, self.producers = [], [], []
        self.steps = []
        self.missing = OrderedDict()   # layer type -> node names without a kernel on this device
        self.fallbacks = []            # (node name, layer) run by a logged CPU fallback

    def new_value(self, shape, kind="float", producer=None):
        self.shapes.append(tuple(shape))
        self.kinds.append(kind)
        self.producers.append(producer)
        return len(self.shapes) - 1

    def add_step(self, name, layer, in_values):
        in_shapes = [self.shapes[v] for v in in_values]
        try:
            layer.check_inputs(in_shapes)
            out_shapes = layer.infer_shapes(in_shapes)
        except ShapeError as err:
            raise err.at_node(name, layer.type_name) from None
        self._check_placement(name, layer)
        kernel = self.registry.kernel(layer.type_name, self.device)
        if kernel is None and self.device != "cpu" and getattr(layer, "_fallback", None) == "cpu":
            cpu_kernel = self.registry.kernel(layer.type_name, "cpu")
            if cpu_kernel is not None:   # the user allowed it at .to(): logged, explicit copies
                kernel = HostFallback(cpu_kernel)
                self.fallbacks.append((name, layer))
        if kernel is None:
            self.missing.setdefault(layer.type_name, []).append(name)
        step = Step(name, layer, kernel, list(in_values), [])
        step.outs = [self.new_value(s, "float", len(self.steps)) for s in out_shapes]
        self.steps.append(step)
        return step.outs

    def _check_placement(self, name, layer):
        """A layer's parameters and buffers must be where the plan runs (or on the host for a
        logged CPU fallback): a layer swapped into a moved model, say, was never moved."""
        if getattr(layer, "_fallback", None) == "cpu":
            return
        elsewhere = sorted(layer._array_devices() - {self.device})
        if elsewhere:
            raise ConfigError(f"node '{name}' ({layer.type_name}): its parameters or buffers are "
                              f"on '{elsewhere[0]}' but the model runs on '{self.device}'; move "
                              f"the whole model with .to('{self.device}') after changing it")


class Plan:
    """Steps, value shapes and buffers for one input signature."""

    def __init__(self, builder, in_values, out_values, dtype, dev, param_order=()):
        self.steps = builder.steps
        self.param_order = param_order   # the root's parameters: the order gradients are packed in
        self.shapes = builder.shapes
        self.kinds = builder.kinds
        self.producers = builder.producers
        self.in_values, self.out_values = in_values, out_values
        self.dtype, self.dev = dtype, dev
        self.by_name = {step.name: step for step in self.steps}
        self.fused = fusion.fuse_activations(self.steps, out_values)   # [(producer, activation)]
        self.consumed = {v for step in self.steps for v in step.ins}
        self.in_set = set(in_values)
        _check_shortcuts(self.steps, self.shapes)
        fresh = set(in_values) | set(out_values)
        views = {}   # output value -> input value, of steps whose output is a reshaped view
        for step in self.steps:
            if getattr(step.kernel, "output_is_view", False) and step.ins[0] not in fresh \
                    and step.outs[0] not in fresh:
                views[step.outs[0]] = step.ins[0]
                step.view = True
        self.buffers = {}
        for v in range(len(self.shapes)):     # in graph order: a view's input comes first
            if v in views:
                self.buffers[v] = self.buffers[views[v]].reshape(self.shapes[v])
            elif v not in fresh:
                self.buffers[v] = dev.empty(self.shapes[v], dtype)
        for step in self.steps:
            in_shapes = [self.shapes[v] for v in step.ins]
            out_shapes = [self.shapes[v] for v in step.outs]
            wdev = get_device("cpu") if isinstance(step.kernel, HostFallback) else dev
            for key, (shape, wdtype) in step.kernel.workspace(step.layer, in_shapes, out_shapes,
                                                               dtype).items():
                step.ws[key] = wdev.empty(shape, wdtype)
        self.values = None          # the arrays of the last forward pass
        self.grads = None           # value -> gradient array of the last backward pass
        self.grad_required = None   # value -> whether the last backward needed its gradient
        self.grad_buffers = {}      # value -> gradient buffer, allocated at first backward
        self._constants = {}        # value -> the constant its (unread) gradient buffer holds
        self._param_grads_seen = {}  # id(layer) -> (its parameters' arrays and flags, grads)
        self.scratch = {}           # (step index, input slot) -> buffer for a second writer
        self.param_scratch = {}     # id(param) -> buffer for a layer used at several nodes
        self._requires = {}         # (input_grad, flags version) -> per-value "needs a gradient"
        self._schedules = {}        # the same keys -> the steps a backward pass runs (_schedule)

    def forward(self, arrays, check_finite):
        values = [None] * len(self.shapes)
        for v, array in zip(self.in_values, arrays, strict=True):
            values[v] = array
        for v, buf in self.buffers.items():
            values[v] = buf
        for v in self.out_values:
            if values[v] is None:
                values[v] = self.dev.empty(self.shapes[v], self.dtype)
        for step in self.steps:
            if step.fused_into is not None or step.view:
                continue                 # its producer's kernel wrote its output, or its input did
            ys = [values[v] for v in step.outs]
            xs = [values[v] for v in step.ins]
            act = step.fused
            fused = None if act is None else getattr(step.kernel, "forward_fused", None)
            try:
                if fused is not None:
                    fused(step.layer, xs, ys, step.ws, act.kernel.epilogue(act.layer),
                          values[act.outs[0]])
                else:
                    step.kernel.forward(step.layer, xs, ys, step.ws)
                    if act is not None:   # a kernel swapped in after planning (a wrapper)
                        act.kernel.forward(act.layer, ys, [values[act.outs[0]]], act.ws)
            except (InputError, ShapeError) as err:
                raise _at_node(err, step) from None
            if check_finite:
                self._check_finite(step, ys)
                if act is not None:
                    self._check_finite(act, [values[act.outs[0]]])
        self.values = values
        return [values[v] for v in self.out_values]

    def _check_finite(self, step, ys):
        for y in ys:
            if not self.dev.all_finite(y):
                raise NonFiniteError(
                    f"node '{step.name}' ({step.layer.type_name}) produced NaN or Inf",
                    node=step.name)

    def requires_grad(self, input_grad):
        """Which values need a gradient: downstream of a wanted input or of a trainable parameter.
        Worked out again whenever a parameter was frozen or unfrozen since (anywhere: the count
        is global), so freezing after a call takes effect at once."""
        key = (input_grad, structure.flags_version())
        if key not in self._requires:
            trainable = [any(p.requires_grad for p in step.layer._own_params().values())
                         for step in self.steps]
            req = [False] * len(self.shapes)
            if input_grad:
                for v in self.in_values:
                    req[v] = self.kinds[v] == "float"
            for step, has_trainable in zip(self.steps, trainable, strict=True):
                if has_trainable or any(req[v] for v in step.ins):
                    for v in step.outs:
                        req[v] = True
            if len(self._requires) > 8:
                self._requires.clear()
            self._requires[key] = req
        return self._requires[key]

    def backward(self, grad_outputs, input_grad):
        if self.values is None:
            raise RuntimeError("backward() called before any forward pass")
        dev, values = self.dev, self.values
        req = self.requires_grad(input_grad)
        grad = {}   # value -> its gradient array in this pass (present once written)
        for v, g in zip(self.out_values, grad_outputs, strict=True):
            if g is None or not req[v]:
                continue
            if isinstance(g, float):
                grad[v] = self._constant_grad(v, g)
            elif v in self.consumed or g.dtype != self.dtype:
                buf = grad[v] = self._grad_buffer(v)
                self._constants.pop(v, None)
                dev.assign(buf, g)
            else:
                grad[v] = g     # used read-only: kernels never write their gys
        done_layers = set()
        borrowed = set()   # values whose gradient is a later value's gradient array (read-only)
        for index, step, wanted, passes in self._schedule(input_grad):
            gys = [grad[v] if v in grad else self._zero_grad(v) for v in step.outs]
            if passes:
                self._pass_gradient(gys[0], wanted, grad, borrowed)
                continue
            gxs, pending = [None] * len(step.ins), []
            for slot, v in wanted:
                if v in grad:            # a second consumer: write aside, add afterwards
                    buf = gxs[slot] = self._scratch((index, slot), v)
                    pending.append((v, buf))
                else:                    # model inputs get fresh arrays: they are returned
                    grad[v] = gxs[slot] = dev.empty(self.shapes[v], self.dtype) \
                        if v in self.in_set else self._grad_buffer(v)
            grads, param_pending = self._param_grads(step.layer, done_layers)
            try:
                step.kernel.backward(step.layer, [values[v] for v in step.ins],
                                     [values[v] for v in step.outs], gys, gxs, step.ws, grads)
            except (InputError, ShapeError) as err:
                raise _at_node(err, step) from None
            for v, buf in pending:
                self._accumulate(v, buf, grad, borrowed)
            for param, buf in param_pending:
                get_device(device_of(buf)).add_into(param.grad, buf)
        self.grads, self.grad_required = grad, req
        if not input_grad:
            return None
        return [grad.get(v) for v in self.in_values]

    def _schedule(self, input_grad):
        """The steps a backward pass runs, last first, each as (index, step, the (slot, value)
        pairs of the inputs whose gradient it must write, whether its kernel passes its output
        gradient on): worked out with ``requires_grad``."""
        key = (input_grad, structure.flags_version())
        schedule = self._schedules.get(key)
        if schedule is None:
            req = self.requires_grad(input_grad)
            schedule = []
            for index in range(len(self.steps) - 1, -1, -1):
                step = self.steps[index]
                if not any(req[v] for v in step.outs):
                    continue
                diff = step.layer.differentiable_inputs
                wanted = [(slot, v) for slot, v in enumerate(step.ins)
                          if req[v] and (diff is None or diff[slot]) and self.kinds[v] == "float"]
                passes = getattr(step.kernel, "passes_gradient", False)   # wrappers may lack it
                schedule.append((index, step, wanted, passes))
            if len(self._schedules) > 8:
                self._schedules.clear()
            self._schedules[key] = schedule
        return schedule

    def _pass_gradient(self, gy, wanted, grad, borrowed):
        """The backward of a kernel whose every input gradient is its output gradient (Add,
        Flatten, Identity): handed on as it is, reshaped, instead of copied by a launch."""
        for _, v in wanted:
            g = gy if tuple(gy.shape) == self.shapes[v] else gy.reshape(self.shapes[v])
            if v in grad:                # a second consumer
                self._accumulate(v, g, grad, borrowed)
            elif v in self.in_set:       # returned to the caller: an array of its own
                grad[v] = self.dev.copy(g)
            else:
                grad[v] = g
                borrowed.add(v)

    def _accumulate(self, v, g, grad, borrowed):
        """grad[v] += g; a borrowed gradient is not written: the sum goes to v's own buffer."""
        if v in borrowed:
            borrowed.discard(v)
            own = self._grad_buffer(v)
            self.dev.add(own, grad[v], g)
            grad[v] = own
        else:
            self.dev.add_into(grad[v], g)

    def _param_grads(self, layer, done_layers):
        shared = id(layer) in done_layers
        done_layers.add(id(layer))
        if not shared:   # as last time while the parameters hold the same arrays and flags
            seen = self._param_grads_seen.get(id(layer))
            if seen is not None and all(p.grad is g and p.data is d and p.requires_grad == r
                                        for p, g, d, r in seen[0]):
                return seen[1], []
        grads, pending = {}, []
        params = layer._own_params()
        for name, param in params.items():
            if not param.requires_grad:
                grads[name] = None
                continue
            # a parameter's gradient lives where the parameter does (a CPU-fallback layer keeps its
            # parameters on the host)
            pdev = self.dev if device_of(param.data) == self.dev.name \
                else get_device(device_of(param.data))
            if not _grad_fits(param, pdev):
                if pdev is self.dev and packable(param.data):
                    self._pack_grads()
                if not _grad_fits(param, pdev):
                    param.grad = pdev.empty(param.data.shape, param.data.dtype)
            if shared:   # second node of a shared layer: write aside, then accumulate
                buf = self.param_scratch.get(id(param))
                if buf is None:
                    buf = self.param_scratch[id(param)] = pdev.empty(param.data.shape,
                                                                     param.data.dtype)
                grads[name] = buf
                pending.append((param, buf))
            else:
                grads[name] = param.grad
        if not shared:
            self._param_grads_seen[id(layer)] = (
                tuple((p, p.grad, p.data, p.requires_grad) for p in params.values()), grads)
        return grads, pending

    def _pack_grads(self):
        """Give every trainable device parameter of the root that lacks a usable gradient array
        one, packed in the parameters' order (so an optimiser updates them in one launch)."""
        todo = [p for p in self.param_order
                if p.requires_grad and packable(p.data) and device_of(p.data) == self.dev.name
                and not _grad_fits(p, self.dev)]
        for params in by_dtype(todo):
            views = pack(self.dev, [p.data.shape for p in params], params[0].data.dtype)
            for param, view in zip(params, views, strict=True):
                param.grad = view

    def _grad_buffer(self, v):
        buf = self.grad_buffers.get(v)
        if buf is None:
            buf = self.grad_buffers[v] = self.dev.empty(self.shapes[v], self.dtype)
        return buf

    def _zero_grad(self, v):
        return self._constant_grad(v, 0.0)

    def _constant_grad(self, v, value):
        """The gradient buffer of value ``v`` filled with ``value``. Kernels never write their
        output gradients, so the buffer of a value that no step reads (a loss, a model output)
        keeps its constant, and refilling it is skipped: the loss's 1.0 costs one launch, not
        one per step."""
        buf = self._grad_buffer(v)
        if v in self.consumed or self._constants.get(v) != value:
            self.dev.fill(buf, value)
            if v not in self.consumed:
                self._constants[v] = value
        return buf

    def _scratch(self, key, v):
        buf = self.scratch.get(key)
        if buf is None:
            buf = self.scratch[key] = self.dev.empty(self.shapes[v], self.dtype)
        return buf


class Executor:
    """Runs one root module on one device."""

    def __init__(self, root, device="cpu"):
        self.root = root
        self.dev = get_device(device)
        self.device = self.dev.name
        self._plans = OrderedDict()
        self._version = structure.version()
        self._dtype_cache = None
        self._last = None

    # -- inputs -----------------------------------------------------------------------------------

    def _describe_root(self):
        return f"{self.root.type_name}"

    def _prepare_inputs(self, inputs):
        root = self.root
        expected = root.num_inputs
        if expected is not None and len(inputs) != expected:
            raise InputError(f"{self._describe_root()}: expected {expected} input(s), "
                             f"received {len(inputs)}")
        if not inputs:
            raise InputError(f"{self._describe_root()}: called with no input")
        kinds = root.input_kinds
        param_dtype = self._param_dtype()
        arrays = []
        for i, x in enumerate(inputs):
            kind = kinds[i] if i < len(kinds) else kinds[-1]
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                x = np.asarray(x)
            what = f"{self._describe_root()} input {i}"
            if self.device == "cpu" and device_of(x) != "cpu":
                raise InputError(f"{what}: the array is on the '{device_of(x)}' device and the "
                                 f"module on the CPU; move the module with .to('{device_of(x)}') "
                                 f"or the array with minicnn.to_numpy(x)")
            if x.ndim == 0 or x.shape[0] == 0:
                raise InputError(f"{what}: empty batch (shape {tuple(x.shape)}); "
                                 f"expected at least one sample along axis 0")
            if kind == "index":
                if np.dtype(x.dtype).kind not in "iu":
                    raise InputError(f"{what}: expected integer class indices, received dtype "
                                     f"{x.dtype}")
                if device_of(x) == "cpu":
                    x = x.astype(np.int64)   # one label dtype (one compiled kernel per device)
            else:
                dtype = np.dtype(x.dtype)
                if dtype.kind != "f" or dtype.itemsize not in (4, 8):
                    raise InputError(f"{what}: expected float32 data, received dtype {dtype}")
                if param_dtype is not None and dtype != param_dtype:
                    raise InputError(f"{what}: expected {param_dtype} to match the parameters, "
                                     f"received {dtype}; convert with x.astype(np.{param_dtype})")
            arrays.append(self.dev.asarray(x))
        float_dtypes = {a.dtype for a, k in zip(arrays, kinds, strict=False) if k == "float"}
        if len(float_dtypes) > 1:
            mixed = sorted(map(str, float_dtypes))
            raise InputError(f"{self._describe_root()}: inputs mix dtypes {mixed}")
        return arrays

    def _param_dtype(self):
        """The parameters' dtype, walked once per structure version (a tree walk is not free)."""
        self._check_version()
        if self._dtype_cache is None:
            self._dtype_cache = (self.root.dtype,)
        return self._dtype_cache[0]

    def _check_version(self):
        if self._version != structure.version():
            self._plans.clear()
            self._dtype_cache = None
            self._version = structure.version()

    def _plan_for(self, arrays):
        self._check_version()
        kinds = self.root.input_kinds
        key = tuple((tuple(a.shape), str(a.dtype)) for a in arrays)
        plan = self._plans.get(key)
        if plan is None:
            dtype = self._param_dtype() or next(
                (a.dtype for a, k in zip(arrays, kinds, strict=False) if k == "float"),
                np.dtype(np.float32))
            plan = self._build(arrays, dtype, kinds)
            self._plans[key] = plan
            if len(self._plans) > _MAX_PLANS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def _build(self, arrays, dtype, kinds):
        registry = get_registry()
        registry.enable_device(self.device)
        builder = GraphBuilder(registry, self.device)
        in_values = [builder.new_value(a.shape, kinds[i] if i < len(kinds) else kinds[-1])
                     for i, a in enumerate(arrays)]
        root_name = self.root.type_name.lower() if isinstance(self.root, Layer) else ""
        out_values = self.root._lower(builder, in_values, root_name)
        if builder.missing:
            listing = "; ".join(f"{t} (nodes {', '.join(n)})" for t, n in builder.missing.items())
            raise KernelMissingError(f"no '{self.device}' kernel for: {listing}; move the model "
                                     f"with .to('{self.device}', fallback='cpu') to run these "
                                     f"layers on the CPU with logged copies")
        for name, layer in builder.fallbacks:
            log.warning("node '%s' (%s) has no %s kernel and runs on the CPU (fallback='cpu'): "
                        "every forward copies its inputs to the host and its outputs back, every "
                        "backward its output gradients to the host and its input gradients back; "
                        "its parameters stay on the host", name, layer.type_name, self.device)
        return Plan(builder, in_values, out_values, np.dtype(dtype), self.dev,
                    self.root.parameters())

    # -- running ----------------------------------------------------------------------------------

    def forward(self, inputs):
        arrays = self._prepare_inputs(inputs)
        check = self.root.check_finite
        if check:
            for i, a in enumerate(arrays):
                if a.dtype.kind == "f" and not self.dev.all_finite(a):
                    raise NonFiniteError(f"{self._describe_root()} input {i} contains NaN or Inf")
        plan = self._plan_for(arrays)
        outputs = plan.forward(arrays, check)
        self._last = plan
        return outputs

    def backward(self, grad_outputs, input_grad=True):
        plan = self._last
        if plan is None:
            raise RuntimeError(f"{self._describe_root()}.backward() called before a forward pass")
        if not isinstance(grad_outputs, (list, tuple)):
            grad_outputs = [grad_outputs]
        if len(grad_outputs) != len(plan.out_values):
            raise InputError(f"{self._describe_root()}.backward: expected {len(plan.out_values)} "
                             f"output gradient(s), received {len(grad_outputs)}")
        prepared = []
        for i, (g, v) in enumerate(zip(grad_outputs, plan.out_values, strict=True)):
            shape = plan.shapes[v]
            if g is None or isinstance(g, float):
                prepared.append(g)
                continue
            if isinstance(g, (int, np.floating)):
                prepared.append(float(g))
                continue
            if tuple(g.shape) != shape:
                raise ShapeError(
                    f"{self._describe_root()}.backward: gradient {i} has the wrong shape",
                    expected=shape, received=tuple(g.shape))
            prepared.append(self.dev.asarray(g))
        return plan.backward(prepared, input_grad)

    def _node(self, name, ran, what):
        """The last plan and its step called ``name``, once a pass of ``what`` has run."""
        plan = self._last
        if plan is None or not ran(plan):
            raise RuntimeError(f"no {what} pass has run yet")
        step = plan.by_name.get(name)
        if step is None:
            raise KeyError(f"no node named {name!r}; nodes: {list(plan.by_name)}")
        return plan, step

    def activation(self, name):
        """The value node ``name`` produced in the last forward pass (fresh host copies)."""
        plan, step = self._node(name, lambda p: p.values is not None, "forward")
        outs = [to_numpy(plan.values[v]).copy() for v in step.outs]
        return outs[0] if len(outs) == 1 else outs

    def gradient(self, name):
        """The gradient of the last backward pass with respect to node ``name``'s output(s)."""
        plan, step = self._node(name, lambda p: p.grads is not None, "backward")
        outs = []
        for v in step.outs:
            if not plan.grad_required[v]:
                raise RuntimeError(
                    f"node '{name}' ({step.layer.type_name}) got no gradient in the last backward "
                    f"pass: nothing before it needed one (its layers are frozen and the input "
                    f"gradient was not asked for); call backward(..., input_grad=True)")
            g = plan.grads.get(v)
            outs.append(np.zeros(plan.shapes[v], plan.dtype) if g is None   # no path to a loss
                        else to_numpy(g).copy())
        return outs[0] if len(outs) == 1 else outs

    def plan(self, input_shapes, dtype=None, kinds=None):
        """Build (without running) the plan for these full input shapes; used by summaries."""
        dtype = np.dtype(dtype or self.root.dtype or np.float32)
        kinds = kinds or self.root.input_kinds
        fakes = [np.empty(s, dtype if (kinds[i] if i < len(kinds) else kinds[-1]) == "float"
                          else np.int64) for i, s in enumerate(input_shapes)]
        return self._build(fakes, dtype, kinds)


class HostFallback:
    """Runs a CPU kernel inside a plan on another device, copying explicitly (``fallback='cpu'``).

    The layer's parameters and buffers stayed on the host when the model was moved; its inputs are
    copied to the host, the CPU kernel writes host outputs (workspace), which are copied to the
    device outputs; backward likewise. The plan allocates this kernel's workspace on the host."""

    device = "cpu"
    passes_gradient = False   # the host kernel's backward runs, with its copies

    def __init__(self, kernel):
        self.kernel = kernel
        self.layer = kernel.layer

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        ws = {f"cpu:{k}": v for k, v in self.kernel.workspace(layer, in_shapes, out_shapes,
                                                              dtype).items()}
        for i, shape in enumerate(out_shapes):
            ws[f"y{i}"] = (shape, dtype)
        for i, shape in enumerate(in_shapes):
            ws[f"gx{i}"] = (shape, dtype)
        return ws

    @staticmethod
    def _inner(ws):
        return {k[4:]: v for k, v in ws.items() if k.startswith("cpu:")}

    def forward(self, layer, xs, ys, ws):
        hxs = [to_numpy(x) for x in xs]
        hys = [ws[f"y{i}"] for i in range(len(ys))]
        self.kernel.forward(layer, hxs, hys, self._inner(ws))
        for y, hy in zip(ys, hys, strict=True):
            y.copy_to_device(hy)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        hxs = [to_numpy(x) for x in xs]
        hys = [ws[f"y{i}"] for i in range(len(ys))]
        hgys = [to_numpy(g) for g in gys]
        hgxs = [None if g is None else ws[f"gx{i}"] for i, g in enumerate(gxs)]
        self.kernel.backward(layer, hxs, hys, hgys, hgxs, self._inner(ws), grads)
        for g, hg in zip(gxs, hgxs, strict=True):
            if g is not None:
                g.copy_to_device(hg)

    def __repr__(self):
        return f"<HostFallback {self.kernel!r}>"


def _check_shortcuts(steps, shapes):
    """A kernel that declares ``passes_gradient`` or ``output_is_view`` has its backward or
    forward skipped: refuse declarations that would skip real work (a plugin's mistake would
    otherwise give silently wrong results)."""
    for step in steps:
        kernel = step.kernel
        what = f"node '{step.name}': kernel {type(kernel).__name__} of layer {step.layer.type_name}"
        params = list(step.layer._own_params())
        if getattr(kernel, "passes_gradient", False) and params:
            raise PluginError(f"{what} declares passes_gradient, but the layer has parameters "
                              f"({', '.join(params)}) whose gradients its backward computes")
        if getattr(kernel, "output_is_view", False) and (
                len(step.ins) != 1 or len(step.outs) != 1 or params
                or np.prod(shapes[step.ins[0]]) != np.prod(shapes[step.outs[-1]])):
            raise PluginError(f"{what} declares output_is_view, which needs one input, one "
                              f"output of as many elements and no parameters; it has "
                              f"{len(step.ins)} input(s), {len(step.outs)} output(s) (shapes "
                              f"{[shapes[v] for v in step.ins + step.outs]}) and {len(params)} "
                              f"parameter(s)")


def _grad_fits(param, dev):
    """Whether ``param.grad`` can receive this backward's gradient as it is."""
    grad = param.grad
    return (grad is not None and grad.shape == param.data.shape
            and grad.dtype == param.data.dtype and device_of(grad) == dev.name)


def _at_node(err, step):
    """The same error with the node named (errors raised inside kernels do not know it)."""
    if isinstance(err, ShapeError):
        return err if err.node is not None else err.at_node(step.name, step.layer.type_name)
    return type(err)(f"node '{step.name}' ({step.layer.type_name}): {err}")
