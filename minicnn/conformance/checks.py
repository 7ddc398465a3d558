"""The checks the suite runs on every good case (one function each, named after its column).

Each takes keyword arguments (``layer``, ``xs``, ``cls``, ``case``, ``reference``, ``devices``,
``type_name``; ignoring those it does not use) and returns ``(status, detail)``; an exception
(an AssertionError from :mod:`minicnn.testing`, or anything else) is a failure of that check. The
``errors`` column is :mod:`.error_checks`.
"""

import copy
import os
import tempfile

import numpy as np

from .. import testing
from ..registry import get_registry
from .report import FAIL, NA, PASS, SKIP
from .running import build, error_text, forward_backward, rng_layers, run, same


def check_shapes(layer, xs, **_):
    """``infer_shapes`` is pure and gives the real outputs' shapes; outputs keep the input dtype
    (float32 and float64); ``flops`` is a non-negative number."""
    in_shapes = [tuple(x.shape) for x in xs]
    first = layer.infer_shapes(list(in_shapes))
    again = layer.infer_shapes(list(in_shapes))
    if [tuple(s) for s in first] != [tuple(s) for s in again]:
        return FAIL, f"infer_shapes is not pure: {first} then {again}"
    has_float = layer.dtype is not None or any(x.dtype.kind == "f" for x in xs)
    for dtype in (np.float32, np.float64) if has_float else (np.float32,):
        module = copy.deepcopy(layer).astype(dtype) if layer.dtype is not None else layer
        arrays = [x.astype(dtype) if x.dtype.kind == "f" else x for x in xs]
        try:
            ys = run(module, arrays)
        except Exception as exc:
            return FAIL, (f"the {np.dtype(dtype).name} forward, outputs allocated as infer_shapes "
                          f"says ({[tuple(s) for s in first]}), raised {error_text(exc)}")
        got = [tuple(np.shape(y)) for y in ys]
        if got != [tuple(s) for s in first]:
            return FAIL, f"infer_shapes{tuple(in_shapes)} gave {first}, forward gave {got}"
        wrong = [str(y.dtype) for y in ys if np.asarray(y).dtype != np.dtype(dtype)]
        if wrong:
            return FAIL, f"{np.dtype(dtype).name} inputs gave {', '.join(wrong)} outputs"
    flops = layer.flops(in_shapes, [tuple(s) for s in first])
    if not isinstance(flops, (int, np.integer, float)) or flops < 0:
        return FAIL, f"flops() returned {flops!r}, expected a non-negative number"
    return PASS, ""


def check_forward(layer, xs, reference, case, **_):
    """float32 outputs against the plugin's float64 reference."""
    if reference is None:
        return SKIP, "no reference given (reference_forward or minicnn_conformance)"

    def ref(module, inputs):
        arrays = [np.asarray(x, np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
                  for x in inputs]
        out = reference(copy.deepcopy(module).double() if module.dtype else module, *arrays)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    testing.check_forward(layer, xs, ref, atol=case.atol, rtol=case.rtol)
    return PASS, ""


def check_gradients(layer, xs, case, **_):
    """float64 central differences against backward, every float input and trainable
    parameter."""
    float_inputs = [i for i, x in enumerate(xs) if x.dtype.kind == "f"]
    diff = layer.differentiable_inputs
    if diff is not None:
        float_inputs = [i for i in float_inputs if i < len(diff) and diff[i]]
    if not float_inputs and not any(p.requires_grad for p in layer.parameters()):
        return NA, "no differentiable input or trainable parameter"
    testing.gradcheck(layer, xs, max_elements=case.gradcheck_elements)
    return PASS, ""


def check_layout(layer, xs, **_):
    """Non-contiguous inputs give the same outputs."""
    testing.check_noncontiguous(layer, xs)
    return PASS, ""


def check_repeat(layer, xs, **_):
    """Two forward + backward runs, random draws replayed, are bit-identical."""
    rngs = [copy.deepcopy(m.rng) for m in rng_layers(layer)]
    first = forward_backward(layer, xs, rngs)
    second = forward_backward(layer, xs, rngs)
    for k, (a, b) in enumerate(zip(first, second, strict=True)):
        if not np.array_equal(a, b, equal_nan=True):
            return FAIL, (f"array {k} of outputs, input and parameter gradients differs between "
                          f"two identical runs (max difference {np.nanmax(np.abs(a - b)):.3g})")
    return PASS, ""


def check_state(cls, case, layer, xs, **_):
    """``state_dict`` into a freshly built layer, and ``minicnn.save`` / ``load``, give the same
    outputs."""
    run(layer, xs)                    # training-mode forward: running statistics move
    state = layer.state_dict()
    names = [n for n, _ in layer.named_parameters()] + [n for n, _ in layer.named_buffers()]
    if list(state) != names:
        return FAIL, f"state_dict keys {list(state)}, parameters and buffers {names}"
    fresh = build(cls, case, seed=12345)
    fresh.load_state_dict(state)
    layer.eval()
    fresh.eval()
    try:
        want = run(layer, xs)
        if not same(want, run(fresh, xs)):
            return FAIL, "a fresh layer given the state_dict computes other outputs (eval mode)"
        with tempfile.TemporaryDirectory(prefix="minicnn-conformance-") as tmp:
            path = os.path.join(tmp, "layer.mcnn")
            from ..io import load, save
            save(layer, path)
            loaded = load(path)
        if type(loaded) is not cls:
            return FAIL, f"minicnn.load gave a {type(loaded).__name__}, saved a {cls.__name__}"
        loaded.eval()
        if not same(want, run(loaded, xs)):
            return FAIL, "the layer saved with minicnn.save and loaded back computes other outputs"
    finally:
        layer.train(case.train)
    return PASS, ""


def check_parity(layer, xs, type_name, devices, case, **_):
    """CPU / device parity (``minicnn.testing.check_parity``) on each device that is there."""
    if not devices:
        return SKIP, "no device asked for"
    results = []
    for device in devices:
        kernel, unavailable = _device_kernel(type_name, device)
        if unavailable is not None:
            what = (f"a '{device}' kernel is registered but" if kernel is not None else
                    f"no '{device}' kernel registered{_lazy_note(device)}, and")
            hint = "" if "CUDASIM" in unavailable else "; NUMBA_ENABLE_CUDASIM=1 runs the simulator"
            results.append((SKIP, f"{what} the device is not available here ({unavailable}){hint}"))
            continue
        if kernel is None:
            results.append((SKIP, f"no '{device}' kernel registered"))
            continue
        testing.check_parity(layer, xs, device=device, atol=max(case.atol, 1e-4),
                             rtol=max(case.rtol, 1e-4))
        results.append((PASS, ""))
    status = PASS if any(s == PASS for s, _ in results) else SKIP
    return status, "; ".join(d for _, d in results if d)


def _device_kernel(type_name, device):
    """``(kernel or None, why the device is unavailable or None)``; a device that is available is
    enabled first: its built-in kernel modules and the plugins' ``minicnn_device_kernels`` load
    with it."""
    registry = get_registry()
    try:
        from ..device import get_device
        get_device(device)
    except Exception as exc:
        return registry.kernel(type_name, device), f"{exc}"
    registry.enable_device(device)
    return registry.kernel(type_name, device), None


def _lazy_note(device):
    """Which plugins would load kernels for ``device`` once it is there, as a note ('' if none)."""
    registry = get_registry()
    lazy = sorted({registry.pm.get_name(impl.plugin) for impl in
                   registry.pm.hook.minicnn_device_kernels.get_hookimpls()})
    if not lazy:
        return ""
    names = ", ".join(f"'{name}'" for name in lazy)
    if len(lazy) == 1:
        return f" yet (plugin {names} loads its '{device}' kernels with the device)"
    return f" yet (plugins {names} load their '{device}' kernels with the device)"
