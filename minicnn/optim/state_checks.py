"""Checks of values that come from outside: optimiser and scheduler state dicts (checkpoint files
are untrusted) and the arguments of the update wrappers.

Every check raises TypeError (wrong kind of value) or ValueError (wrong size, range or key) with a
message that starts with ``where``, the key path the caller built ("SGD state: param 0
'momentum_buffer'"), and says what was expected and what came. Nothing here changes anything.
"""

import math
import numbers

import numpy as np

# largest step or epoch counter taken: beyond it ``beta ** step`` and ``gamma ** epoch`` overflow
# (Python raises) and floats no longer hold every integer
MAX_COUNT = 2 ** 53


def show(value):
    """A short description of ``value`` for a message (a hostile file may hold huge values)."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def type_name(value):
    return type(value).__name__


def is_real(value):
    """A real number that is not a bool (True is an int to Python, never a rate to us)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_mapping(value, where):
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a dict, got {type_name(value)}")


def check_key(key, allowed, where):
    """``key`` must be one of ``allowed`` (strings)."""
    if not isinstance(key, str) or key not in allowed:
        raise ValueError(f"{where} has an unknown key {show(key)} (expected some of "
                         f"{sorted(allowed)})")


def check_int(value, where, minimum=0, maximum=MAX_COUNT):
    if not is_int(value):
        raise TypeError(f"{where} must be an integer, got {type_name(value)} {show(value)}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{where} must be an integer in [{minimum}, {maximum}], got {show(value)}")


def check_real(value, where, minimum=None, finite=True):
    """A real number (finite unless ``finite=False``; never NaN), at least ``minimum``."""
    if not is_real(value):
        raise TypeError(f"{where} must be a number, got {type_name(value)} {show(value)}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if math.isnan(x) or (finite and math.isinf(x)) or (minimum is not None and x < minimum):
        kind = "a finite number" if finite else "a number (not NaN)"
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{where} must be {kind}{bound}, got {show(value)}")


def check_bool(value, where):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where} must be True or False, got {type_name(value)} {show(value)}")


def check_real_list(value, where, length, minimum=None):
    """A list of ``length`` finite numbers (a schedule's rate per parameter group)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{where} must be a list, got {type_name(value)}")
    if len(value) != length:
        raise ValueError(f"{where} has {len(value)} entries, expected {length} (one per "
                         f"parameter group)")
    for i, item in enumerate(value):
        check_real(item, f"{where}[{i}]", minimum)


def check_float_array(value, where, dtype, shape=None, like="the parameter has",
                      nonnegative=False):
    """A numpy array of floats, of ``shape`` (unless None; ``like`` says where it comes from),
    every value finite once in ``dtype`` (the parameter's: a float64 1e300 is an Inf in
    float32), and >= 0 if ``nonnegative``."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where} must be a numpy array, got {type_name(value)}")
    if value.dtype.kind != "f":
        raise TypeError(f"{where} has dtype {value.dtype}, expected a floating-point array")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{where} has shape {tuple(value.shape)}, {like} {tuple(shape)}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = value.astype(dtype, copy=False)
    if not np.isfinite(cast).all():
        raise ValueError(f"{where} holds NaN or infinite values (as {np.dtype(dtype)})")
    if nonnegative and (cast < 0).any():
        raise ValueError(f"{where} holds negative values (a second moment is >= 0)")


def compatible(current, value):
    """Whether ``value`` may replace ``current`` (an attribute or option without its own check):
    the same kind of value (flag, integer, number, string, list, dict or None)."""
    kinds = ((bool, np.bool_), (list, tuple), (dict,), (str,))
    for kind in kinds:
        if isinstance(current, kind):
            return isinstance(value, kind)
    if is_int(current):
        return is_int(value)
    if is_real(current):
        return is_real(value)
    if current is None:
        return value is None
    return type(value) is type(current)


def check_update_sizes(update, param, grad, **buffers):
    """Before a kernel runs: the gradient and each state buffer (None: absent) has as many elements
    as the parameter, since the kernels index all of them by the parameter's size. A cheap
    guard of the last resort: a loaded state is checked long before this."""
    size = param.size
    if grad.size != size:
        raise ValueError(f"{update}: the gradient has {grad.size} elements, the parameter has "
                         f"{size}")
    for name, buf in buffers.items():
        if buf is not None and buf.size != size:
            raise ValueError(f"{update}: {name} has {buf.size} elements, the parameter has "
                             f"{size}")


def check_adam_step(update, step, beta1, beta2):
    """Before the bias corrections ``1 - beta ** step``: a step below 1 or a beta outside [0, 1)
    divides by zero or takes a root of a negative number, a huge step overflows the power."""
    if not is_int(step) or not 1 <= step <= MAX_COUNT:
        raise ValueError(f"{update}: step must be an integer in [1, {MAX_COUNT}], got {show(step)}")
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not is_real(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f"{update}: {name} must be in [0, 1), got {show(beta)}")
