"""The ``errors`` column: the plugin's error cases raise what they declare, and inputs of another
rank, channel count or spatial size are refused with a ShapeError that says what was expected and
received (or run and give the shapes ``infer_shapes`` promised)."""

import builtins
import copy
import re

import numpy as np

from .. import errors, testing
from .report import FAIL, NA, PASS
from .running import build, error_text, make_inputs, run


def probes(shape):
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


def check_probes(layer, xs, type_name, **_):
    """Each perturbed input is rejected with a ShapeError that says what was expected and received,
    or runs and gives the shapes infer_shapes promised."""
    if not xs or xs[0].dtype.kind != "f":
        return NA, "the first input is not a float input"
    layer = copy.deepcopy(layer)
    notes = []
    for what, shape in probes(tuple(xs[0].shape)):
        shapes = [shape] + [tuple(x.shape) for x in xs[1:]]
        try:
            promised = layer.infer_shapes(list(shapes))
        except errors.ShapeError as exc:
            if exc.expected is None or exc.received is None:
                return FAIL, (f"{what} {shape}: ShapeError without expected= and received= "
                              f"({exc})")
            try:
                run(layer, [testing.tie_free(shape, seed=3)] + list(xs[1:]))
            except errors.ShapeError as called:
                if type_name not in str(called):
                    return FAIL, f"{what} {shape}: the error does not name {type_name}: {called}"
            else:
                return FAIL, f"{what} {shape}: infer_shapes raised but the forward ran"
            notes.append(f"rejects {what}")
            continue
        except Exception as exc:
            return FAIL, f"{what} {shape}: infer_shapes raised {error_text(exc)}, not a ShapeError"
        try:
            got = [tuple(np.shape(y)) for y in
                   run(layer, [testing.tie_free(shape, seed=3)] + list(xs[1:]))]
        except Exception as exc:
            return FAIL, (f"{what} {shape}: infer_shapes accepted it but the forward raised "
                          f"{error_text(exc)}")
        if got != [tuple(s) for s in promised]:
            return FAIL, f"{what} {shape}: infer_shapes gave {promised}, the forward {got}"
        notes.append(f"accepts {what}")
    return PASS, "; ".join(notes)


def resolve_exception(raises):
    """The exception class of a case's ``raises``: a class, or a name in :mod:`minicnn.errors`
    or the built-ins."""
    if isinstance(raises, type):
        return raises
    found = getattr(errors, str(raises), None) or getattr(builtins, str(raises), None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ValueError(f"raises={raises!r} names no exception class")
    return found


def check_error_case(report, cls, case):
    """Building the error case's layer, or running it on the case's inputs, raises what the case
    declares (a ConfigError naming the layer), with ``match`` in the message; adds the result to
    the report's ``errors`` column."""
    where = f"error case {case.describe()}"
    try:
        expected = resolve_exception(case.raises)
    except ValueError as exc:
        report.add("errors", FAIL, f"{where}: {exc}")
        return
    try:
        layer = build(cls, case)
        if case.shapes is None and case.inputs is None:
            report.add("errors", FAIL, f"{where}: built without raising {expected.__name__}")
            return
        run(layer, make_inputs(layer, case))
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
        report.add("errors", FAIL, f"{where}: raised {error_text(exc)}, expected "
                                   f"{expected.__name__}")
        return
    report.add("errors", FAIL, f"{where}: ran without raising {expected.__name__}")
