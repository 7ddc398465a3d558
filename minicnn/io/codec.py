"""Values to JSON and back, with numpy arrays moved to the tensor part of the file.

Layer configs, optimizer / scheduler states and checkpoint extras are nested values. Plain JSON
keeps numbers, strings, booleans, None and lists; everything else is a single-key object with a tag:

    {"__tuple__": [...]}                          a tuple (comes back as a tuple)
    {"__dict__": [[key, value], ...]}             a dict (keys may be ints, as in optimizer states)
    {"__array__": "tensor name", "dtype": "i4"}   a numpy array stored as a tensor of the file
    {"__float__": "nan" | "inf" | "-inf"}         non-finite floats (plain JSON has none)
    {"__rng__": {bit generator state}}            a numpy Generator (PCG64, Philox, SFC64, MT19937)

Decoding builds only these plain values: nothing from a file is imported, evaluated or unpickled.
"""

import math

import numpy as np

from ..errors import ModelFormatError

MAX_DEPTH = 64
# dtypes an array in a config may have, and the dtype its tensor is stored as
_STORED = {"f2": np.float32, "f4": np.float32, "f8": np.float64, "b1": np.int64, "i1": np.int64,
           "i2": np.int64, "i4": np.int64, "i8": np.int64, "u1": np.int64, "u2": np.int64,
           "u4": np.int64}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _dtype_code(dtype):
    dtype = np.dtype(dtype)
    return f"{dtype.kind}{dtype.itemsize}"


def encode(value, arrays, key, where="value"):
    """A JSON-able form of ``value``; arrays are added to ``arrays`` under names starting with
    ``key``.

    ``where`` describes the value in error messages. Raises TypeError for anything unsupported.
    """
    return _encode(value, arrays, key, where, 0)


def _encode(value, arrays, key, where, depth):
    if depth > MAX_DEPTH:
        raise TypeError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, np.ndarray):
        code = _dtype_code(value.dtype)
        if code not in _STORED:
            raise TypeError(f"{where}: arrays of dtype {value.dtype} cannot be stored")
        arrays[key] = np.asarray(value.astype(_STORED[code]), order="C")
        return {"__array__": key, "dtype": code}
    if isinstance(value, np.random.Generator):
        name = type(value.bit_generator).__name__
        if name not in _BIT_GENERATORS:
            raise TypeError(f"{where}: bit generator {name} cannot be stored")
        return {"__rng__": _encode(value.bit_generator.state, arrays, key, where, depth + 1)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays, f"{key}.{i}", f"{where}[{i}]", depth + 1)
                 for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = []
        for i, (k, v) in enumerate(value.items()):
            if not (k is None or isinstance(k, (bool, int, float, str, tuple, np.integer))):
                raise TypeError(f"{where}: dict key {k!r} of type {type(k).__name__} cannot be "
                                f"stored")
            sub = f"{key}.{k}" if isinstance(k, (str, int, np.integer)) else f"{key}.{i}"
            pairs.append([_encode(k, arrays, sub + ".key", f"{where} key", depth + 1),
                          _encode(v, arrays, sub, f"{where}[{k!r}]", depth + 1)])
        return {"__dict__": pairs}
    raise TypeError(f"{where}: a value of type {type(value).__name__} cannot be stored in a "
                    f"minicnn file (allowed: numbers, strings, booleans, None, lists, tuples, "
                    f"dicts, numpy arrays)")


def decode(obj, arrays, path, where="value"):
    """The value :func:`encode` described; any malformed part is a ModelFormatError naming
    ``where``."""
    return _decode(obj, arrays, path, where, 0)


def _fail(path, where, message):
    raise ModelFormatError(f"{where}: {message}", path=path)


def _decode(obj, arrays, path, where, depth):
    if depth > MAX_DEPTH:
        _fail(path, where, f"nested more than {MAX_DEPTH} levels deep")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            _fail(path, where, "non-finite number in plain JSON")
        return obj
    if isinstance(obj, list):
        return [_decode(v, arrays, path, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if not isinstance(obj, dict) or not obj:
        _fail(path, where, f"unexpected JSON value {obj!r:.80}")
    tag = next(iter(obj))
    if tag == "__tuple__" and len(obj) == 1 and isinstance(obj[tag], list):
        return tuple(_decode(v, arrays, path, f"{where}[{i}]", depth + 1)
                     for i, v in enumerate(obj[tag]))
    if tag == "__dict__" and len(obj) == 1 and isinstance(obj[tag], list):
        out = {}
        for pair in obj[tag]:
            if not isinstance(pair, list) or len(pair) != 2:
                _fail(path, where, "a dict entry must be a [key, value] pair")
            k = _decode(pair[0], arrays, path, f"{where} key", depth + 1)
            if not (k is None or isinstance(k, (bool, int, float, str, tuple))) \
                    or not _hashable(k):
                _fail(path, where, f"dict key of type {type(k).__name__} {k!r:.40}")
            if k in out:
                _fail(path, where, f"duplicate dict key {k!r}")
            out[k] = _decode(pair[1], arrays, path, f"{where}[{k!r}]", depth + 1)
        return out
    if tag == "__float__" and len(obj) == 1 and obj[tag] in ("nan", "inf", "-inf"):
        return float(obj[tag])
    if tag == "__array__" and set(obj) == {"__array__", "dtype"}:
        name, code = obj["__array__"], obj["dtype"]
        if not isinstance(name, str) or name not in arrays:
            _fail(path, where, f"refers to tensor {name!r:.80}, which the file does not hold")
        if not isinstance(code, str) or code not in _STORED:
            _fail(path, where, f"unsupported array dtype {code!r:.20}")
        array = arrays[name]
        if array.dtype != np.dtype(_STORED[code]):
            _fail(path, where, f"tensor '{name}' is {array.dtype}, expected "
                               f"{np.dtype(_STORED[code])}")
        return array.astype(np.dtype(code.replace("b1", "?")), copy=True)
    if tag == "__rng__" and len(obj) == 1:
        return make_generator(_decode(obj[tag], arrays, path, where, depth + 1), path, where)
    _fail(path, where, f"unknown tagged value {obj!r:.80}")


def _hashable(key):
    try:
        hash(key)           # a tuple key may hold lists
    except TypeError:
        return False
    return True


def make_generator(state, path, where="generator"):
    """A numpy Generator in ``state`` (a bit generator state dict); ModelFormatError if invalid."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(name, str) or name not in _BIT_GENERATORS:
        _fail(path, where, f"unsupported bit generator {name!r:.40}")
    bit_generator = getattr(np.random, name)()
    set_state(bit_generator, state, path, where)
    return np.random.Generator(bit_generator)


def set_state(bit_generator, state, path, where):
    """Restore a bit generator's state from a decoded dict (ModelFormatError if it does not fit)."""
    expected = type(bit_generator).__name__
    found = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(found, str) or found != expected:
        _fail(path, where, f"random state of bit generator {found!r:.40} cannot restore a "
                           f"{expected} generator")
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        _fail(path, where, f"invalid random generator state: {exc}")
