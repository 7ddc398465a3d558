"""The conformance suite: what ``minicnn check-plugin NAME`` runs on every layer a plugin registers.

Each layer type is checked on a few *cases* (constructor arguments plus input shapes):

========== ===================================================================================
build      the layer is built from the case's arguments and registered under its type name
shapes     ``infer_shapes`` (pure) gives the shapes and count of the real outputs, float32 and
           float64 outputs keep the input dtype, ``flops`` returns a non-negative number
forward    outputs match the plugin's slow reference (float32 run against a float64 reference)
gradcheck  float64 central differences against backward for every input and trainable parameter
layout     non-contiguous inputs give the same outputs
repeat     two forward + backward runs (random draws replayed) are bit-identical
state      ``state_dict`` round trip into a freshly built layer, and ``minicnn.save``/``load``
errors     the plugin's error cases raise what they declare, naming the layer; inputs of another
           rank / channel count / spatial size are rejected with a ShapeError that says what was
           expected and received, or run and match ``infer_shapes``
cuda       CPU / GPU parity (``minicnn.testing.check_parity``) when a "cuda" kernel and device
           (or the simulator, ``NUMBA_ENABLE_CUDASIM=1``) are there
========== ===================================================================================

A check that was not run says why ("not checked"); it never counts as passed. How a plugin gives
cases and a reference (see docs/writing-a-plugin.md)::

    class Swish(minicnn.Layer):
        @classmethod
        def conformance_cases(cls):
            return [{"args": (3,), "shapes": [(2, 3, 4, 4)]},
                    {"kwargs": {"num_features": 0}, "raises": "ConfigError"}]

        def reference_forward(self, x):          # slow, obviously correct, float64 in and out
            ...

or, without touching the class, a dict in the plugin module (or the layer's module)::

    minicnn_conformance = {"Swish": {"cases": [...], "reference": lambda layer, x: ...}}

With no help the suite tries the layer built with no arguments on a few guessed input shapes.
"""

import builtins
import contextlib
import copy
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import errors, testing
from . import random as _random
from .registry import get_registry, set_registry

CHECKS = ("build", "shapes", "forward", "gradcheck", "layout", "repeat", "state", "errors", "cuda")
PASS, FAIL, SKIP, NA = "ok", "FAIL", "not checked", "n/a"
_GUESSED_SHAPES = ((2, 3, 5, 5), (2, 3, 7), (2, 5), (2, 3, 4, 4, 4))


@dataclass
class Case:
    """One configuration to check: ``cls(*args, **kwargs)`` on inputs of full ``shapes``.

    ``inputs(seed) -> list of arrays`` replaces the generated inputs (tie-free floats, integer
    indices below ``index_high``) when a layer needs particular values (probabilities...).
    ``raises`` (an exception class or its name in :mod:`minicnn`, e.g. ``"ConfigError"``) makes it
    an error case: building, or running on ``shapes``, must raise that, with ``match`` (a regex) in
    the message. ``train`` selects the mode; ``atol`` / ``rtol`` apply to the reference comparison.
    """

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    shapes: list = None
    inputs: object = None
    index_high: int = 2
    train: bool = True
    raises: object = None
    match: str = None
    atol: float = 1e-5
    rtol: float = 1e-4
    gradcheck_elements: int = 64
    label: str = ""

    def describe(self):
        if self.label:
            return self.label
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        shapes = "" if self.shapes is None else " on " + ", ".join(str(tuple(s))
                                                                     for s in self.shapes)
        if self.inputs is not None:
            shapes += " on its own inputs"
        return f"({', '.join(parts)}){shapes}"


def as_case(spec):
    """A Case from a Case or a dict of its fields."""
    if isinstance(spec, Case):
        return spec
    if not isinstance(spec, dict):
        raise TypeError(f"a conformance case must be a dict or a minicnn.conformance.Case, got "
                        f"{spec!r:.80}")
    case = Case(**spec)
    case.args = tuple(case.args)
    case.shapes = None if case.shapes is None else [tuple(s) for s in case.shapes]
    return case


# -- reports --------------------------------------------------------------------------------------

@dataclass
class LayerReport:
    """Results for one layer type: per check a list of (status, detail)."""

    type_name: str
    plugin: str = ""
    cases_from: str = ""
    devices: tuple = ()
    results: dict = field(default_factory=lambda: {c: [] for c in CHECKS})

    def add(self, check, status, detail=""):
        self.results[check].append((status, detail))

    def status(self, check):
        statuses = [s for s, _ in self.results[check]]
        for s in (FAIL, PASS, SKIP):
            if s in statuses:
                return s
        return NA if statuses else SKIP

    def details(self, check):
        """What to say about a check: the details of its overall status, and for a check that
        passed, what was not checked (so a partial check never reads as a full pass)."""
        wanted = self.status(check)
        seen = []
        for status, detail in self.results[check]:
            if detail and status == wanted and detail not in seen:
                seen.append(detail)
        if wanted == PASS:
            seen += [f"partly not checked: {d}" for s, d in self.results[check]
                     if s == SKIP and d and f"partly not checked: {d}" not in seen]
        return seen or (["no case ran this check"] if wanted == SKIP else [])

    def partial(self, check):
        return self.status(check) == PASS and any(s == SKIP for s, _ in self.results[check])

    @property
    def failed(self):
        return [c for c in CHECKS if self.status(c) == FAIL]

    @property
    def not_checked(self):
        return [c for c in CHECKS if self.status(c) == SKIP]


@dataclass
class PluginReport:
    plugin: str
    package: str = None
    layers: list = field(default_factory=list)

    @property
    def failed(self):
        return any(r.failed for r in self.layers)

    def format(self, verbose=False):
        return format_report(self, verbose)

    def assert_ok(self, strict=False):
        """Raise AssertionError with the report if a check failed (or, ``strict``, was not run)."""
        skipped = any(r.not_checked or any(r.partial(c) for c in CHECKS) for r in self.layers)
        bad = self.failed or not self.layers or (strict and skipped)
        if bad:
            raise AssertionError("\n" + self.format())


_SYMBOLS = {PASS: "ok", FAIL: "FAIL", SKIP: "--", NA: "n/a"}


def format_report(report, verbose=False):
    """The per-layer table, then a line for every check that failed or was not run."""
    pkg = f" (package {report.package})" if report.package else ""
    lines = [f"plugin '{report.plugin}'{pkg}: {len(report.layers)} layer type(s)"]
    if not report.layers:
        lines.append("  it registers no layers and no kernels: nothing to check")
        return "\n".join(lines)
    head = ["layer", "cases", "kernels"] + list(CHECKS)
    rows = [[r.type_name, r.cases_from, ",".join(r.devices) or "none"]
            + [_SYMBOLS[r.status(c)] + ("*" if r.partial(c) else "") for c in CHECKS]
            for r in report.layers]
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
    for row in [head] + rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    lines.append("(ok passed, ok* passed but partly not checked, FAIL failed, -- not checked, "
                 "n/a does not apply)")
    counts = {s: 0 for s in _SYMBOLS}
    for r in report.layers:
        shown = [c for c in CHECKS if verbose or r.status(c) in (FAIL, SKIP) or r.partial(c)]
        if shown:
            lines.append(f"{r.type_name} ({r.plugin}):")
        for c in CHECKS:
            counts[r.status(c)] += 1
        for c in shown:
            for detail in (r.details(c) if verbose else
                           [d for d in r.details(c) if r.status(c) != PASS or "partly" in d]) \
                    or [""]:
                lines.append(f"  {c}: {r.status(c)}" + (f": {detail}" if detail else ""))
    lines.append(f"result: {counts[FAIL]} failed, {counts[PASS]} passed, {counts[SKIP]} not "
                 f"checked, {counts[NA]} not applicable")
    return "\n".join(lines)


# -- finding layers, cases and references -------------------------------------------------------

def plugin_layer_types(registry, plugin):
    """Layer types a plugin registers, then those it only adds kernels for (sorted each)."""
    own = sorted(t for t, (_, owner) in registry.layers.items() if owner == plugin)
    kernels = sorted({t for (t, _), (_, owner) in registry.kernels.items()
                      if owner == plugin and t not in own and t in registry.layers})
    return own + kernels


def _modules(registry, cls):
    found = []
    for owner in {registry.layers.get(cls.type_name, (None, None))[1]} | {
            o for (t, _), (_, o) in registry.kernels.items() if t == cls.type_name}:
        plugin = registry.pm.get_plugin(owner) if owner else None
        if plugin is not None:
            found.append(plugin)
    module = sys.modules.get(cls.__module__)
    if module is not None and module not in found:
        found.append(module)
    return found


def _module_entry(registry, cls):
    for module in _modules(registry, cls):
        table = getattr(module, "minicnn_conformance", None)
        if isinstance(table, dict) and cls.type_name in table:
            return table[cls.type_name]
    return {}


def find_cases(cls, registry=None):
    """``(cases, source)``: the layer's conformance cases and where they came from."""
    registry = registry or get_registry()
    getter = getattr(cls, "conformance_cases", None)
    if callable(getter):
        return [as_case(c) for c in getter()], "class"
    entry = _module_entry(registry, cls)
    if entry.get("cases"):
        return [as_case(c) for c in entry["cases"]], "module"
    if cls.__module__.startswith("minicnn.") and cls.type_name in _BUILTIN_CASES:
        return [as_case(c) for c in _BUILTIN_CASES[cls.type_name]], "built-in"
    case, why = _guess_case(cls)
    return ([case], "guessed") if case is not None else ([], why)


def find_reference(cls, registry=None):
    """``reference(layer, *inputs) -> output(s)``, or None when the plugin gives none."""
    if callable(getattr(cls, "reference_forward", None)):
        return lambda layer, *xs: layer.reference_forward(*xs)
    return _module_entry(registry or get_registry(), cls).get("reference")


def _guess_case(cls):
    """Build with no arguments and try a few input shapes; ``(case, why-not)``."""
    try:
        layer = cls()
    except TypeError as exc:
        return None, f"none: {cls.type_name}() needs arguments ({exc})"
    except Exception as exc:
        return None, f"none: {cls.type_name}() raised {type(exc).__name__}: {exc}"
    count = layer.num_inputs or 2
    kinds = [_kind(layer, i) for i in range(count)]
    for shape in _GUESSED_SHAPES:
        shapes = [shape if k == "float" else shape[:1] + shape[2:] for k in kinds]
        try:
            layer.infer_shapes(shapes)
        except Exception:
            continue
        return Case(shapes=shapes, label=f"() on {', '.join(map(str, shapes))} (guessed)"), ""
    return None, "none: no guessed input shape fits"


def _kind(layer, i):
    kinds = layer.input_kinds
    return kinds[i] if i < len(kinds) else kinds[-1]


# -- running --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _current(registry):
    """Make ``registry`` the process-wide one (the executor and minicnn.save look kernels up there)
    and keep minicnn's random stream as it was."""
    previous_registry = set_registry(registry)
    previous_generator = _random._generator
    try:
        yield
    finally:
        set_registry(previous_registry)
        _random._generator = previous_generator


def _build(cls, case, seed=0):
    _random.manual_seed(seed)
    layer = cls(*case.args, **case.kwargs)
    layer.train(case.train)
    return layer


def _inputs(layer, case, seed=0):
    if case.inputs is not None:
        made = case.inputs(seed) if callable(case.inputs) else case.inputs
        return [np.ascontiguousarray(x) for x in made]
    rng = np.random.default_rng(seed)
    xs = []
    for i, shape in enumerate(case.shapes):
        if _kind(layer, i) == "index":
            xs.append(rng.integers(0, case.index_high, shape).astype(np.int64))
        else:
            xs.append(testing.tie_free(shape, seed=seed + i))
    return xs


def _run(layer, xs):
    return layer._get_executor().forward(list(xs))


def _rng_layers(module):
    return [m for _, m in module.named_modules() if hasattr(m, "rng")]


def _forward_backward(layer, xs, rngs):
    for m, state in zip(_rng_layers(layer), rngs, strict=True):
        m.rng = copy.deepcopy(state)
    ys = [np.array(y) for y in _run(layer, xs)]
    gys = [np.linspace(-1, 1, y.size).reshape(y.shape).astype(y.dtype) if y.ndim else 1.0
           for y in ys]
    gxs = layer._get_executor().backward(gys)
    grads = [np.array(p.grad) for _, p in layer.named_parameters() if p.grad is not None]
    return ys + [np.array(g) for g in gxs if g is not None] + grads


def _error_text(exc):
    return f"{type(exc).__name__}: {exc}"


def check_layer(layer, registry=None, cases=None, reference=None, devices=("cuda",)):
    """Run the suite on one registered layer type (a type name or Layer subclass)."""
    registry = registry or get_registry()
    type_name = layer if isinstance(layer, str) else layer.type_name
    if type_name not in registry.layers:
        raise errors.PluginError(f"layer type '{type_name}' is not registered")
    cls, owner = registry.layers[type_name]
    report = LayerReport(type_name, owner, devices=tuple(registry.devices_for(type_name)))
    if cases is None:
        try:
            cases, report.cases_from = find_cases(cls, registry)
        except Exception as exc:
            report.cases_from = "invalid"
            report.add("build", FAIL, f"the conformance cases are invalid: {_error_text(exc)}")
            return report
        if cases:
            report.cases_from = f"{len(cases)} ({report.cases_from})"
    else:
        cases = [as_case(c) for c in cases]
        report.cases_from = f"{len(cases)} (given)"
    reference = reference or find_reference(cls, registry)
    with _current(registry):
        if registry.kernel(type_name, "cpu") is None:
            report.add("build", FAIL, "no 'cpu' kernel registered (every layer needs one)")
            return report
        good = [c for c in cases if c.raises is None]
        if not good:
            why = ("no cases given and none guessed (" + report.cases_from + "); give "
                   "conformance_cases()") if not cases else "only error cases given"
            for check in CHECKS:
                if check != "errors":
                    report.add(check, SKIP, why)
        for case in good:
            _check_case(report, cls, case, reference, devices)
        for case in cases:
            if case.raises is not None:
                _check_error_case(report, cls, case)
        report.devices = tuple(registry.devices_for(type_name))   # with lazily loaded devices
        if good and not any(c.raises is not None for c in cases):
            report.add("errors", SKIP, "no error cases given (cases with raises=...): only the "
                                       "shape probes ran")
    return report


def _check_case(report, cls, case, reference, devices):
    where = f"case {case.describe()}"
    try:
        layer = _build(cls, case)
        if type(layer).type_name != report.type_name:
            raise TypeError(f"built a {type(layer).type_name}, registered as {report.type_name}")
        xs = _inputs(layer, case)
    except Exception as exc:
        report.add("build", FAIL, f"{where}: {_error_text(exc)}")
        for check in CHECKS[1:]:
            report.add(check, SKIP, f"{where}: the layer could not be built")
        return
    report.add("build", PASS)
    steps = [("shapes", _check_shapes), ("forward", _check_forward),
             ("gradcheck", _check_gradients), ("layout", _check_layout),
             ("repeat", _check_repeat), ("state", _check_state), ("errors", _check_probes),
             ("cuda", _check_parity)]
    for check, fn in steps:
        try:
            status, detail = fn(cls=cls, case=case, layer=layer, xs=xs, reference=reference,
                                devices=devices, type_name=report.type_name)
        except Exception as exc:   # AssertionError from minicnn.testing, or anything else
            status, detail = FAIL, _error_text(exc)
        if detail and status != SKIP:   # reasons for not checking hold for every case
            detail = f"{where}: {detail}"
        report.add(check, status, detail)


def _check_shapes(layer, xs, type_name, **_):
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
            ys = _run(module, arrays)
        except Exception as exc:
            return FAIL, (f"the {np.dtype(dtype).name} forward, outputs allocated as infer_shapes "
                          f"says ({[tuple(s) for s in first]}), raised {_error_text(exc)}")
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


def _check_forward(layer, xs, reference, case, **_):
    if reference is None:
        return SKIP, "no reference given (reference_forward or minicnn_conformance)"

    def ref(module, inputs):
        arrays = [np.asarray(x, np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
                  for x in inputs]
        out = reference(copy.deepcopy(module).double() if module.dtype else module, *arrays)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    testing.check_forward(layer, xs, ref, atol=case.atol, rtol=case.rtol)
    return PASS, ""


def _check_gradients(layer, xs, case, **_):
    float_inputs = [i for i, x in enumerate(xs) if x.dtype.kind == "f"]
    diff = layer.differentiable_inputs
    if diff is not None:
        float_inputs = [i for i in float_inputs if i < len(diff) and diff[i]]
    if not float_inputs and not any(p.requires_grad for p in layer.parameters()):
        return NA, "no differentiable input or trainable parameter"
    testing.gradcheck(layer, xs, max_elements=case.gradcheck_elements)
    return PASS, ""


def _check_layout(layer, xs, **_):
    testing.check_noncontiguous(layer, xs)
    return PASS, ""


def _check_repeat(layer, xs, **_):
    rngs = [copy.deepcopy(m.rng) for m in _rng_layers(layer)]
    first = _forward_backward(layer, xs, rngs)
    second = _forward_backward(layer, xs, rngs)
    for k, (a, b) in enumerate(zip(first, second, strict=True)):
        if not np.array_equal(a, b, equal_nan=True):
            return FAIL, (f"array {k} of outputs, input and parameter gradients differs between "
                          f"two identical runs (max difference {np.nanmax(np.abs(a - b)):.3g})")
    return PASS, ""


def _check_state(cls, case, layer, xs, **_):
    _run(layer, xs)                   # training-mode forward: running statistics move
    state = layer.state_dict()
    names = [n for n, _ in layer.named_parameters()] + [n for n, _ in layer.named_buffers()]
    if list(state) != names:
        return FAIL, f"state_dict keys {list(state)}, parameters and buffers {names}"
    fresh = _build(cls, case, seed=12345)
    fresh.load_state_dict(state)
    layer.eval()
    fresh.eval()
    try:
        want = _run(layer, xs)
        if not _same(want, _run(fresh, xs)):
            return FAIL, "a fresh layer given the state_dict computes other outputs (eval mode)"
        with tempfile.TemporaryDirectory(prefix="minicnn-conformance-") as tmp:
            path = os.path.join(tmp, "layer.mcnn")
            from .io import load, save
            save(layer, path)
            loaded = load(path)
        if type(loaded) is not cls:
            return FAIL, f"minicnn.load gave a {type(loaded).__name__}, saved a {cls.__name__}"
        loaded.eval()
        if not _same(want, _run(loaded, xs)):
            return FAIL, "the layer saved with minicnn.save and loaded back computes other outputs"
    finally:
        layer.train(case.train)
    return PASS, ""


def _same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(a, b, strict=True))


def _probes(shape):
    """Perturbed shapes of an input: another rank, channel count, spatial size."""
    out = []
    if len(shape) >= 2:
        out.append(("one axis fewer", shape[:-1]))
    out.append(("one axis more", shape + (3,)))
    if len(shape) >= 2:
        out.append(("one channel more", shape[:1] + (shape[1] + 1,) + shape[2:]))
    if len(shape) >= 3:
        out.append(("spatial size 1", shape[:2] + (1,) * (len(shape) - 2)))
    return out


def _check_probes(layer, xs, type_name, **_):
    """Each perturbed input is rejected with a ShapeError that says what was expected and received,
    or runs and gives the shapes infer_shapes promised."""
    if not xs or xs[0].dtype.kind != "f":
        return NA, "the first input is not a float input"
    layer = copy.deepcopy(layer)
    notes = []
    for what, shape in _probes(tuple(xs[0].shape)):
        shapes = [shape] + [tuple(x.shape) for x in xs[1:]]
        try:
            promised = layer.infer_shapes(list(shapes))
        except errors.ShapeError as exc:
            if exc.expected is None or exc.received is None:
                return FAIL, (f"{what} {shape}: ShapeError without expected= and received= "
                              f"({exc})")
            try:
                _run(layer, [testing.tie_free(shape, seed=3)] + list(xs[1:]))
            except errors.ShapeError as called:
                if type_name not in str(called):
                    return FAIL, f"{what} {shape}: the error does not name {type_name}: {called}"
            else:
                return FAIL, f"{what} {shape}: infer_shapes raised but the forward ran"
            notes.append(f"rejects {what}")
            continue
        except Exception as exc:
            return FAIL, f"{what} {shape}: infer_shapes raised {_error_text(exc)}, not a ShapeError"
        try:
            got = [tuple(np.shape(y)) for y in
                   _run(layer, [testing.tie_free(shape, seed=3)] + list(xs[1:]))]
        except Exception as exc:
            return FAIL, (f"{what} {shape}: infer_shapes accepted it but the forward raised "
                          f"{_error_text(exc)}")
        if got != [tuple(s) for s in promised]:
            return FAIL, f"{what} {shape}: infer_shapes gave {promised}, the forward {got}"
        notes.append(f"accepts {what}")
    return PASS, "; ".join(notes)


def _device_kernel(type_name, device):
    """``(kernel or None, why the device is unavailable or None)``; a device that is available gets
    its built-in kernel modules registered first (they load with the device)."""
    registry = get_registry()
    try:
        from .device import get_device
        get_device(device)
    except Exception as exc:
        return registry.kernel(type_name, device), f"{exc}"
    enable = getattr(registry, "enable_device", None)
    if enable is not None:
        enable(device)
    return registry.kernel(type_name, device), None


def _check_parity(layer, xs, type_name, devices, case, **_):
    if not devices:
        return SKIP, "no device asked for"
    results = []
    for device in devices:
        kernel, unavailable = _device_kernel(type_name, device)
        if unavailable is not None:
            what = (f"a '{device}' kernel is registered but" if kernel is not None else
                    f"no '{device}' kernel registered, and")
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


def _resolve_exception(raises):
    if isinstance(raises, type):
        return raises
    found = getattr(errors, str(raises), None) or getattr(builtins, str(raises), None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ValueError(f"raises={raises!r} names no exception class")
    return found


def _check_error_case(report, cls, case):
    where = f"error case {case.describe()}"
    try:
        expected = _resolve_exception(case.raises)
    except ValueError as exc:
        report.add("errors", FAIL, f"{where}: {exc}")
        return
    try:
        layer = _build(cls, case)
        if case.shapes is None and case.inputs is None:
            report.add("errors", FAIL, f"{where}: built without raising {expected.__name__}")
            return
        _run(layer, _inputs(layer, case))
    except expected as exc:
        text = str(exc)
        if expected is errors.ConfigError and report.type_name not in text:
            report.add("errors", FAIL, f"{where}: the message does not name "
                                       f"{report.type_name}: {text}")
        elif case.match and not re.search(case.match, text):
            report.add("errors", FAIL, f"{where}: message {text!r} does not match {case.match!r}")
        else:
            report.add("errors", PASS, "")
        return
    except Exception as exc:
        report.add("errors", FAIL, f"{where}: raised {_error_text(exc)}, expected "
                                   f"{expected.__name__}")
        return
    report.add("errors", FAIL, f"{where}: ran without raising {expected.__name__}")


# -- plugins --------------------------------------------------------------------------------------

def resolve_plugin(name, registry):
    """The registered plugin name for a plugin name, a distribution name or a module path; a
    module that is importable but not registered is registered now."""
    if name in registry.plugin_names():
        return name
    by_dist = [p for p, dist in registry.distributions.items()
               if dist and dist.lower().replace("_", "-") == name.lower().replace("_", "-")]
    if by_dist:
        return by_dist[0]
    for plugin_name in registry.plugin_names():
        if getattr(registry.pm.get_plugin(plugin_name), "__name__", None) == name:
            return plugin_name
    import importlib
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        known = ", ".join(registry.plugin_names())
        raise errors.PluginError(f"no plugin of this name is registered and no module of this "
                                 f"name can be imported ({exc}); registered plugins: {known}",
                                 plugin=name) from exc
    registry.register(module, name=name)
    return name


def check_plugin(plugin, registry=None, devices=("cuda",), layers=None):
    """Run the suite on every layer type a plugin registers (or adds kernels for).

    ``plugin`` is a registered plugin name, a distribution name, an importable module path, or a
    plugin module object (registered into a fresh built-ins-only registry when not registered).
    """
    if not isinstance(plugin, str):
        module = plugin
        registry = registry or get_registry()
        names = [n for n in registry.plugin_names() if registry.pm.get_plugin(n) is module]
        if names:
            plugin = names[0]
        else:
            from .registry import Registry
            registry = Registry(load_entry_points=False)
            plugin = getattr(module, "__name__", repr(module))
            registry.register(module, name=plugin)
    registry = registry or get_registry()
    plugin = resolve_plugin(plugin, registry)
    report = PluginReport(plugin, registry.distributions.get(plugin))
    for type_name in plugin_layer_types(registry, plugin):
        if layers and type_name not in layers:
            continue
        report.layers.append(check_layer(type_name, registry, devices=devices))
    return report


def _probabilities(shape, seed):
    return 0.1 + 0.8 * np.abs(testing.tie_free(shape, seed=seed))


# Cases for minicnn's own layers (their loop references live in tests/reference, outside the
# package), so that ``minicnn check-plugin minicnn.layers.conv`` checks the built-ins too.
_BUILTIN_CASES = {
    "AdaptiveAvgPool2d": [dict(args=(2,), shapes=[(2, 3, 5, 5)])],
    "Add": [dict(shapes=[(2, 3, 4, 4), (2, 3, 4, 4)])],
    "AvgPool2d": [dict(args=(2,), shapes=[(2, 3, 4, 4)]),
                  dict(args=(3,), kwargs=dict(stride=2, padding=1, ceil_mode=True),
                       shapes=[(2, 2, 6, 6)])],
    "BCELoss": [dict(inputs=lambda s: [_probabilities((3, 4), s), _probabilities((3, 4), s + 1)])],
    "BCEWithLogitsLoss": [dict(inputs=lambda s: [testing.tie_free((3, 4), s),
                                                 _probabilities((3, 4), s + 1)])],
    "BatchNorm1d": [dict(args=(3,), shapes=[(4, 3)]), dict(args=(3,), shapes=[(2, 3, 5)],
                                                           train=False)],
    "BatchNorm2d": [dict(args=(3,), shapes=[(2, 3, 3, 3)]),
                    dict(args=(0,), raises="ConfigError")],
    "BatchNorm3d": [dict(args=(2,), shapes=[(2, 2, 2, 3, 3)])],
    "Concat": [dict(shapes=[(2, 3, 4, 4), (2, 2, 4, 4)])],
    "ConstantPad2d": [dict(args=((1, 0, 2, 1), 0.5), shapes=[(2, 2, 3, 3)])],
    "Conv1d": [dict(args=(2, 4, 3), shapes=[(2, 2, 7)])],
    "Conv2d": [dict(args=(3, 4, 3), kwargs=dict(padding=1), shapes=[(2, 3, 5, 5)]),
               dict(args=(4, 4, 3), kwargs=dict(stride=2, dilation=2, groups=2),
                    shapes=[(2, 4, 7, 7)]),
               dict(args=(3, 4, 3), kwargs=dict(stride=0), raises="ConfigError"),
               dict(args=(3, 4, 5), shapes=[(2, 3, 4, 4)], raises="ShapeError")],
    "Conv3d": [dict(args=(2, 3, 2), shapes=[(2, 2, 3, 4, 4)])],
    "ConvTranspose2d": [dict(args=(3, 2, 3), kwargs=dict(stride=2, padding=1),
                             shapes=[(2, 3, 3, 3)])],
    "CrossEntropyLoss": [dict(shapes=[(4, 5), (4,)], index_high=5),
                         dict(kwargs=dict(label_smoothing=0.1), shapes=[(2, 3, 2, 2), (2, 2, 2)],
                              index_high=3)],
    "Dropout": [dict(shapes=[(2, 3, 4, 4)])],
    "Dropout1d": [dict(shapes=[(2, 3, 5)])],
    "Dropout2d": [dict(shapes=[(2, 3, 4, 4)])],
    "Flatten": [dict(shapes=[(2, 3, 2, 2)])],
    "GlobalAvgPool2d": [dict(shapes=[(2, 3, 4, 4)])],
    "L1Loss": [dict(shapes=[(3, 4), (3, 4)])],
    "LPPool2d": [dict(args=(2, 2), shapes=[(2, 2, 4, 4)])],
    "Linear": [dict(args=(5, 3), shapes=[(4, 5)]), dict(args=(0, 3), raises="ConfigError")],
    "LogSoftmax": [dict(kwargs=dict(dim=1), shapes=[(3, 5)])],
    "MSELoss": [dict(shapes=[(3, 4), (3, 4)])],
    "MaxPool2d": [dict(args=(2,), shapes=[(2, 3, 4, 4)]),
                  dict(args=(3,), kwargs=dict(stride=2, padding=1), shapes=[(2, 2, 5, 5)])],
    "NLLLoss": [dict(shapes=[(4, 5), (4,)], index_high=5)],
    "SmoothL1Loss": [dict(shapes=[(3, 4), (3, 4)])],
    "Softmax": [dict(kwargs=dict(dim=1), shapes=[(3, 5)])],
    "ZeroPad2d": [dict(args=((1, 0, 2, 1),), shapes=[(2, 2, 3, 3)])],
}
