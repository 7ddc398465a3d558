"""Whole models (architecture + weights) and weights alone, in safetensors files.

* ``save(model, path)`` / ``load(path)``: one file (``.mcnn`` by convention; any name works) holding
  the state dict as tensors and the architecture JSON (:mod:`minicnn.io.architecture`) in its
  metadata. ``load`` rebuilds the modules through the registry and loads the weights; it needs no
  code from the file and no pickle.
* ``save_weights(model, path)`` / ``load_weights(model, path, strict=True)``: the state dict alone
  (``.safetensors``), keyed by PyTorch-style dotted names. ``load_weights`` also accepts a ``.mcnn``
  model file, a checkpoint, and plain safetensors files from other tools (float32/float64/int64).
* ``save(..., metadata={...})`` and ``save_weights(..., metadata={...})`` also store a dict of your
  own (plain JSON data: class names, preprocessing settings, a plugin's configuration...) as one
  JSON metadata entry; :func:`read_metadata` returns it without building the model.
"""

import json
import os
from collections import OrderedDict, namedtuple

import numpy as np

from ..device import to_numpy
from ..errors import ModelFormatError
from . import architecture
from .tensorfile import base_metadata, check_minicnn, parse_json, read_file, write_file

LoadReport = namedtuple("LoadReport", ["missing", "unexpected"])
LoadReport.__doc__ = """What ``load_weights`` found: model keys absent from the file (``missing``)
and file keys the model does not have (``unexpected``); both empty after a strict load."""

MODEL_PREFIX = "model/"     # state dict keys inside a checkpoint
METADATA_KEY = "user_metadata"     # the metadata entry holding save(..., metadata=...) as JSON
MAX_METADATA_DEPTH = 100           # nesting levels of lists and dicts in that entry
MAX_INT_BITS = 4096                # about 1233 digits: well within what json.loads reads back


def _metadata_path(keys):
    return "metadata" + "".join(f"[{k!r}]" for k in keys)


def _check_plain(value, keys, active):
    """Raise TypeError / ValueError naming the key path unless ``value`` is plain JSON data."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise ValueError(f"{_metadata_path(keys)} is an integer of {value.bit_length()} bits; "
                             f"metadata integers are limited to {MAX_INT_BITS} bits")
        return
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"{_metadata_path(keys)} is {value!r}; metadata numbers must be "
                             f"finite (JSON has no NaN or infinity)")
        return
    if not isinstance(value, (dict, list, tuple)):
        raise TypeError(f"{_metadata_path(keys)} is a {type(value).__name__}; metadata holds only "
                        f"str, int, float, bool, None, lists and dicts with str keys")
    if id(value) in active:
        raise ValueError(f"{_metadata_path(keys)} contains itself")
    if len(keys) >= MAX_METADATA_DEPTH:
        raise ValueError(f"{_metadata_path(keys)} is nested more than {MAX_METADATA_DEPTH} levels "
                         f"deep")
    active.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{_metadata_path(keys)} has the key {key!r} of type "
                                f"{type(key).__name__}; metadata keys must be str")
            _check_plain(item, keys + [key], active)
    else:
        for index, item in enumerate(value):
            _check_plain(item, keys + [index], active)
    active.discard(id(value))


def encode_metadata(metadata):
    """``metadata`` (a dict of plain JSON data, or None) as the JSON text to store, after checking
    all of it: TypeError or ValueError naming the offending key path (``metadata['a'][0]``)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict (or None), got {type(metadata).__name__}")
    _check_plain(metadata, [], set())
    return json.dumps(metadata, separators=(",", ":"), allow_nan=False)


def _base(kind, metadata):
    text = encode_metadata(metadata)      # before anything is described or written
    meta = base_metadata(kind)
    if text is not None:
        meta[METADATA_KEY] = text
    return meta


def _state_for_saving(model):
    """The state dict without the copies ``state_dict()`` makes (the arrays are written at once)."""
    state = OrderedDict((n, to_numpy(p.data)) for n, p in model.named_parameters())
    state.update((n, to_numpy(b)) for n, b in model.named_buffers())
    for key in state:
        if key.startswith("__"):
            raise ValueError(f"state dict key {key!r} starts with '__', which minicnn files "
                             f"reserve")
    return state


def save_weights(model, path, metadata=None):
    """Write ``model``'s parameters and buffers (its state dict) to a safetensors file,
    atomically; ``metadata`` as in :func:`save`."""
    meta = _base("weights", metadata)
    write_file(path, _state_for_saving(model), meta)


def save(model, path, metadata=None):
    """Write the architecture and the weights of ``model`` to one file, atomically.

    ``metadata``: an optional dict of your own, stored in the file as one JSON entry and returned
    by :func:`read_metadata` (``minicnn.load`` ignores it). It must be plain JSON data: str keys;
    str, int, float, bool, None, lists (tuples are stored as lists) and dicts as values; finite
    numbers only.

    Raises TypeError (before writing anything) if a module cannot be described: a layer type not in
    the registry, a custom container class, a config value that is not plain data; and TypeError
    or ValueError (before writing anything) naming the key path, e.g. ``metadata['classes'][2]``,
    for metadata that is not plain JSON data.
    """
    meta = _base("model", metadata)
    doc, arrays = architecture.describe(model)
    tensors = OrderedDict(_state_for_saving(model))
    tensors.update(arrays)
    meta["architecture"] = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    write_file(path, tensors, meta)


def read_metadata(path):
    """The ``metadata`` dict given to :func:`save` or :func:`save_weights` for the file ``path``.

    An empty dict when the file was saved without it (and for checkpoints). The model is not
    built; the file is read and checked like :func:`load` reads it (sizes, digest). A file that
    is not a minicnn file, or whose metadata entry is not a JSON object of plain data, is a
    ModelFormatError naming the file.
    """
    path = os.fspath(path)
    _, metadata = read_file(path)
    check_minicnn(metadata, None, path)
    if METADATA_KEY not in metadata:
        return {}
    doc = parse_json(metadata[METADATA_KEY], "the metadata entry", path, allow_nan=False)
    if not isinstance(doc, dict):
        raise ModelFormatError(f"the metadata entry must be a JSON object, not "
                               f"{type(doc).__name__}", path=path)
    return doc


def load(path):
    """The model saved by :func:`save`, weights loaded (a ModelFormatError for any defect)."""
    tensors, metadata = read_file(path)
    check_minicnn(metadata, "model", path)
    if "architecture" not in metadata:
        raise ModelFormatError("the model file has no architecture entry", path=path)
    doc = parse_json(metadata["architecture"], "the architecture", path)
    arrays = {k: v for k, v in tensors.items() if k.startswith(architecture.CONFIG_PREFIX)}
    state = OrderedDict((k, v) for k, v in tensors.items() if k not in arrays)
    model = architecture.build(doc, arrays, path,
                               weight_count=sum(int(v.size) for v in state.values()))
    assign_state(model, state, path, strict=True)
    return model


def file_state(path):
    """The state dict stored in any weights, model or checkpoint file (or plain safetensors)."""
    tensors, metadata = read_file(path)
    if metadata.get("format") == "minicnn" and metadata.get("kind") == "checkpoint":
        return OrderedDict((k[len(MODEL_PREFIX):], v) for k, v in tensors.items()
                           if k.startswith(MODEL_PREFIX))
    return OrderedDict((k, v) for k, v in tensors.items()
                       if not k.startswith(architecture.CONFIG_PREFIX))


def _targets(model):
    targets = OrderedDict((n, p.data) for n, p in model.named_parameters())
    targets.update(model.named_buffers())
    return targets


def assign_state(model, state, path, strict=True):
    """Check names and shapes of ``state`` against ``model``, then copy it in (all or nothing).

    Returns a LoadReport; with ``strict``, missing or unexpected keys are a ModelFormatError. A
    shape mismatch is always one, naming the key.
    """
    targets = _targets(model)
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    if strict and (missing or unexpected):
        raise ModelFormatError(f"the weights do not match the model: missing keys {missing}, "
                               f"unexpected keys {unexpected}", path=path)
    wrong = [f"'{key}' has shape {tuple(np.shape(state[key]))} in the file, the model expects "
             f"{tuple(target.shape)}" for key, target in targets.items()
             if key in state and tuple(np.shape(state[key])) != tuple(target.shape)]
    if wrong:
        raise ModelFormatError("; ".join(wrong), path=path)
    model.load_state_dict(OrderedDict((k, v) for k, v in state.items() if k in targets),
                          strict=False)
    return LoadReport(missing, unexpected)


def load_weights(model, path, strict=True):
    """Load a weights file into ``model`` by name; returns ``LoadReport(missing, unexpected)``.

    ``strict=False`` loads what matches by name (for transfer learning) and reports the rest; shapes
    must still match (see :func:`minicnn.io.transfer.load_matching` to skip mismatched shapes too).
    """
    return assign_state(model, file_state(path), path, strict=strict)
