"""Transfer learning: reuse pretrained weights in a model whose head (or more) differs.

The usual recipe::

    model = minicnn.io.load("pretrained.mcnn")        # or build it and load_weights(...)
    model[-1] = nn.Linear(512, 10)                    # Sequential: swap the classifier head
    model.freeze("features")                          # train only the new head at first
    ...
    model.unfreeze("features")                        # then fine-tune everything

For a functional ``Model`` rebuild the head on a tap: ``h = model.node("pool"); out =
nn.Linear(512, 10)(h); new = minicnn.Model(model.inputs, out)`` (the layers are shared, so the
weights come along).

When the architecture is built fresh instead (say with a different number of classes),
:func:`load_matching` copies every tensor whose name AND shape match and reports what it skipped,
so the mismatched head keeps its fresh initialisation.
"""

import os
from collections import OrderedDict, namedtuple

import numpy as np

from .weights import _targets, file_state

TransferReport = namedtuple("TransferReport", ["loaded", "missing", "unexpected", "mismatched"])
TransferReport.__doc__ = """What ``load_matching`` did: ``loaded`` keys; model keys not in the
source (``missing``); source keys not in the model (``unexpected``); ``mismatched`` as
``(key, source shape, model shape)`` for names present in both with different shapes."""


def load_matching(model, source):
    """Load every tensor of ``source`` (a state dict, or a path to a weights / model / checkpoint
    file) whose name and shape match ``model``; return a :class:`TransferReport` of what was
    skipped.
    """
    if isinstance(source, (str, os.PathLike)):
        state = file_state(source)
    else:
        state = OrderedDict((k, np.asarray(v)) for k, v in source.items())
    targets = _targets(model)
    loaded, mismatched = [], []
    chosen = OrderedDict()
    for key, target in targets.items():          # in the model's order
        if key not in state:
            continue
        value = state[key]
        if tuple(value.shape) == tuple(target.shape):
            chosen[key] = value
            loaded.append(key)
        else:
            mismatched.append((key, tuple(value.shape), tuple(target.shape)))
    model.load_state_dict(chosen, strict=False)
    return TransferReport(loaded=loaded,
                          missing=[k for k in targets if k not in state],
                          unexpected=[k for k in state if k not in targets],
                          mismatched=mismatched)
