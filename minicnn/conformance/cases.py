"""Conformance cases: what a case is, and where the suite finds a layer's cases and reference.

In order: the layer class (``conformance_cases()``, ``reference_forward``), a
``minicnn_conformance`` dict in the plugin module or the layer's module, minicnn's table for its
own layers (:mod:`.builtin_cases`), and last a guess (built with no arguments, a few input shapes
tried)."""

import sys
from dataclasses import dataclass, field

from .. import random as minicnn_random
from ..registry import get_registry
from .builtin_cases import BUILTIN_CASES

GUESSED_SHAPES = ((2, 3, 5, 5), (2, 3, 7), (2, 5), (2, 3, 4, 4, 4))


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


def find_cases(cls, registry=None):
    """``(cases, source)``: the layer's conformance cases and where they came from."""
    registry = registry or get_registry()
    getter = getattr(cls, "conformance_cases", None)
    if callable(getter):
        return [as_case(c) for c in getter()], "class"
    entry = _module_entry(registry, cls)
    if entry.get("cases"):
        return [as_case(c) for c in entry["cases"]], "module"
    if cls.__module__.startswith("minicnn.") and cls.type_name in BUILTIN_CASES:
        return [as_case(c) for c in BUILTIN_CASES[cls.type_name]], "built-in"
    case, why = _guess_case(cls)
    return ([case], "guessed") if case is not None else ([], why)


def find_reference(cls, registry=None):
    """``reference(layer, *inputs) -> output(s)``, or None when the plugin gives none."""
    if callable(getattr(cls, "reference_forward", None)):
        return lambda layer, *xs: layer.reference_forward(*xs)
    return _module_entry(registry or get_registry(), cls).get("reference")


def input_kind(layer, i):
    """``"float"`` or ``"index"``: the kind of the layer's input ``i``."""
    kinds = layer.input_kinds
    return kinds[i] if i < len(kinds) else kinds[-1]


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



def _guess_case(cls):
    """Build with no arguments and try a few input shapes; ``(case, why-not)``. The layer's
    initial weights do not move minicnn's random stream."""
    try:
        with minicnn_random.preserved():
            layer = cls()
    except TypeError as exc:
        return None, f"none: {cls.type_name}() needs arguments ({exc})"
    except Exception as exc:
        return None, f"none: {cls.type_name}() raised {type(exc).__name__}: {exc}"
    count = layer.num_inputs or 2
    kinds = [input_kind(layer, i) for i in range(count)]
    for shape in GUESSED_SHAPES:
        shapes = [shape if k == "float" else shape[:1] + shape[2:] for k in kinds]
        try:
            layer.infer_shapes(shapes)
        except Exception:
            continue
        return Case(shapes=shapes, label=f"() on {', '.join(map(str, shapes))} (guessed)"), ""
    return None, "none: no guessed input shape fits"
