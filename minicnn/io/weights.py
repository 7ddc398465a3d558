"""Whole models (architecture + weights) and weights alone, in safetensors files.

* ``save(model, path)`` / ``load(path)``: one file (``.mcnn`` by convention; any name works) holding
  the state dict as tensors and the architecture JSON (:mod:`minicnn.io.architecture`) in its
  metadata. ``load`` rebuilds the modules through the registry and loads the weights; it needs no
  code from the file and no pickle.
* ``save_weights(model, path)`` / ``load_weights(model, path, strict=True)``: the state dict alone
  (``.safetensors``), keyed by PyTorch-style dotted names. ``load_weights`` also accepts a ``.mcnn``
  model file, a checkpoint, and plain safetensors files from other tools (float32/float64/int64).
"""

import json
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


def _state_for_saving(model):
    """The state dict without the copies ``state_dict()`` makes (the arrays are written at once)."""
    state = OrderedDict((n, to_numpy(p.data)) for n, p in model.named_parameters())
    state.update((n, to_numpy(b)) for n, b in model.named_buffers())
    for key in state:
        if key.startswith("__"):
            raise ValueError(f"state dict key {key!r} starts with '__', which minicnn files "
                             f"reserve")
    return state


def save_weights(model, path):
    """Write ``model``'s parameters and buffers (its state dict) to a safetensors file,
    atomically."""
    write_file(path, _state_for_saving(model), base_metadata("weights"))


def save(model, path):
    """Write the architecture and the weights of ``model`` to one file, atomically.

    Raises TypeError (before writing anything) if a module cannot be described: a layer type not in
    the registry, a custom container class, a config value that is not plain data.
    """
    doc, arrays = architecture.describe(model)
    tensors = OrderedDict(_state_for_saving(model))
    tensors.update(arrays)
    metadata = base_metadata("model")
    metadata["architecture"] = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    write_file(path, tensors, metadata)


def load(path):
    """The model saved by :func:`save`, weights loaded (a ModelFormatError for any defect)."""
    tensors, metadata = read_file(path)
    check_minicnn(metadata, "model", path)
    if "architecture" not in metadata:
        raise ModelFormatError("the model file has no architecture entry", path=path)
    doc = parse_json(metadata["architecture"], "the architecture", path)
    arrays = {k: v for k, v in tensors.items() if k.startswith(architecture.CONFIG_PREFIX)}
    state = OrderedDict((k, v) for k, v in tensors.items() if k not in arrays)
    model = architecture.build(doc, arrays, path)
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
