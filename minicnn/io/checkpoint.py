"""Training checkpoints for an exact resume: model, optimizer, scheduler, counters, random states.

One safetensors file (``kind`` "checkpoint"):

* tensors ``model/<state dict key>``; optimizer / scheduler / extra arrays under ``optimizer/...``,
  ``scheduler/...``, ``extra/...`` (their ``state_dict()`` is a nested structure of numbers,
  strings, None, lists, dicts and numpy arrays, encoded by :mod:`minicnn.io.codec`);
* metadata ``checkpoint``: JSON with ``epoch``, ``step``, ``extra``, the encoded optimizer and
  scheduler states, the frozen parameter names, the training mode, and the random states: minicnn's
  generator (``minicnn.random``) and the ``rng`` generator of every layer that has one (Dropout), by
  module name.

``load_checkpoint`` restores all of it into existing objects, so that continuing the loop gives
bit-identical results to a run that was never interrupted.
"""

import json
from collections import OrderedDict

import numpy as np

from .. import random as mrandom
from ..errors import ModelFormatError
from . import codec
from .tensorfile import base_metadata, check_minicnn, parse_json, read_file, write_file
from .weights import MODEL_PREFIX, _state_for_saving, assign_state


def _layer_rngs(model):
    return OrderedDict((name or "root", m.rng) for name, m in model.named_modules()
                       if isinstance(getattr(m, "rng", None), np.random.Generator))


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=None, step=None, extra=None):
    """Write everything needed to resume training exactly, atomically.

    ``extra`` is any plain value (numbers, strings, lists, dicts, numpy arrays): metrics, the data
    order, a best score...
    """
    tensors = OrderedDict((MODEL_PREFIX + k, v) for k, v in _state_for_saving(model).items())
    arrays = {}
    doc = {
        "epoch": codec.encode(epoch, arrays, "extra/epoch", "epoch"),
        "step": codec.encode(step, arrays, "extra/step", "step"),
        "extra": codec.encode(extra, arrays, "extra/extra", "extra"),
        "optimizer": None if optimizer is None else
        codec.encode(optimizer.state_dict(), arrays, "optimizer/state", "optimizer state"),
        "scheduler": None if scheduler is None else
        codec.encode(scheduler.state_dict(), arrays, "scheduler/state", "scheduler state"),
        "frozen": [n for n, p in model.named_parameters() if not p.requires_grad],
        "training": bool(model.training),
        "rng": {
            "minicnn": codec.encode(mrandom.generator().bit_generator.state, arrays,
                                    "rng/minicnn", "minicnn's generator"),
            "layers": [[name, codec.encode(g.bit_generator.state, arrays, f"rng/{name}",
                                           f"generator of '{name}'")]
                       for name, g in _layer_rngs(model).items()],
        },
    }
    tensors.update(arrays)
    metadata = base_metadata("checkpoint")
    metadata["checkpoint"] = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    write_file(path, tensors, metadata)


def _fit(method, state, what, path):
    """Call ``method(state)``, any error a ModelFormatError naming the file."""
    try:
        method(state)
    except Exception as exc:
        raise ModelFormatError(f"the {what} state does not fit the {what} given: "
                               f"{type(exc).__name__}: {exc}", path=path) from exc


def load_checkpoint(path, model, optimizer=None, scheduler=None):
    """Restore a checkpoint into ``model`` (and ``optimizer``, ``scheduler`` when given).

    Returns ``{"epoch": ..., "step": ..., "extra": ...}``. The model's keys and shapes must match
    exactly; an optimizer or scheduler asked for but absent from the file is an error. Everything is
    decoded and checked before anything is changed (the optimizer and scheduler states too, for
    objects with a ``check_state_dict`` method, as minicnn's own have: a hand-written one is only
    checked by its ``load_state_dict``, after the model's weights are in).
    """
    tensors, metadata = read_file(path)
    check_minicnn(metadata, "checkpoint", path)
    doc = parse_json(metadata.get("checkpoint", "null"), "the checkpoint entry", path)
    needed = {"epoch", "step", "extra", "optimizer", "scheduler", "frozen", "training", "rng"}
    if not isinstance(doc, dict) or set(doc) != needed:
        raise ModelFormatError(f"the checkpoint entry must be an object with keys {sorted(needed)}",
                               path=path)
    arrays = {k: v for k, v in tensors.items() if not k.startswith(MODEL_PREFIX)}
    state = OrderedDict((k[len(MODEL_PREFIX):], v) for k, v in tensors.items()
                        if k.startswith(MODEL_PREFIX))
    values = {k: codec.decode(doc[k], arrays, path, k)
              for k in ("epoch", "step", "extra", "optimizer", "scheduler")}
    for what, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None and values[what] is None:
            raise ModelFormatError(f"the checkpoint holds no {what} state", path=path)
    params = dict(model.named_parameters())
    frozen = doc["frozen"]
    if not isinstance(frozen, list) or not all(isinstance(n, str) and n in params for n in frozen):
        raise ModelFormatError("'frozen' must list parameter names of the model", path=path)
    rng = doc["rng"]
    if not isinstance(rng, dict) or set(rng) != {"minicnn", "layers"} \
            or not isinstance(rng["layers"], list):
        raise ModelFormatError("'rng' must hold 'minicnn' and 'layers'", path=path)
    global_state = codec.decode(rng["minicnn"], arrays, path, "rng of minicnn")
    layer_states = OrderedDict()
    for item in rng["layers"]:
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
            raise ModelFormatError("each layer random state must be a [name, state] pair",
                                   path=path)
        layer_states[item[0]] = codec.decode(item[1], arrays, path, f"rng of '{item[0]}'")
    generators = _layer_rngs(model)
    if list(generators) != list(layer_states):
        raise ModelFormatError(f"the checkpoint has random generators for layers "
                               f"{list(layer_states)}, the model has them for {list(generators)}",
                               path=path)
    # test the states on scratch generators first, so a bad one changes nothing
    codec.make_generator(global_state, path, "rng of minicnn")
    for name, value in layer_states.items():
        codec.make_generator(value, path, f"rng of '{name}'")
    for what, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None and hasattr(obj, "check_state_dict"):   # minicnn's own: checkable
            _fit(obj.check_state_dict, values[what], what, path)

    assign_state(model, state, path, strict=True)
    for name, param in params.items():
        param.requires_grad = name not in frozen
    model.train(bool(doc["training"]))
    for what, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            _fit(obj.load_state_dict, values[what], what, path)
    codec.set_state(mrandom.generator().bit_generator, global_state, path, "rng of minicnn")
    for name, value in layer_states.items():
        codec.set_state(generators[name].bit_generator, value, path, f"rng of '{name}'")
    return {"epoch": values["epoch"], "step": values["step"], "extra": values["extra"]}
