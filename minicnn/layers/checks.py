"""Hyper-parameter validation shared by layer constructors (errors name the layer)."""

from ..errors import ConfigError


def positive_int(layer, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return value


def int_tuple(layer, name, value, n, minimum=0):
    """``value`` as an n-tuple of ints >= minimum (an int is repeated, as PyTorch does)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    value = tuple(value)
    if len(value) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{layer}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ConfigError(f"{layer}: {name} must be >= {minimum}, got {value!r}")
    return value


def probability(layer, name, value):
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{layer}: {name} must be in [0, 1], got {value!r}")
    return float(value)
