"""Forward fusion: an element-wise activation applied by the kernel that produces its input.

On the GPU every kernel launch costs tens of microseconds of host time and every separate
activation one more pass over memory; small networks are bound by launches. When a step's kernel
can apply an activation as it stores (``Kernel.forward_fused``), the step's only output feeds
exactly one step, and that step is an activation whose kernel describes itself as an epilogue
(``epilogue(layer)``) on the same device, the plan runs the pair as one launch: the producer writes
its own output *and* the activation's. Both values stay in memory, so taps (``activation(name)``),
the activation's backward and every gradient are exactly what the two separate kernels give, bit
for bit; only the activation's forward launch and its read of the input are saved. Backward is not
fused.

Not fused: a producer whose output is also a model output or feeds several steps (or a step
twice), kernels on different devices, CPU fallbacks. ``set_enabled(False)`` (or the environment
variable ``MINICNN_FUSION=0``) turns fusion off, for debugging and for measuring what it saves;
plans are rebuilt at the next call.
"""

import os

from . import structure

_enabled = os.environ.get("MINICNN_FUSION", "1") != "0"


def enabled():
    """Whether new plans fuse activations into their producers."""
    return _enabled


def set_enabled(flag):
    """Turn fusion on or off; executors rebuild their plans at their next call. Returns the
    previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(flag)
    if previous != _enabled:
        structure.changed()
    return previous


def fuse_activations(steps, out_values):
    """Mark the fusable (producer, activation) pairs of a plan's steps: ``producer.fused`` is the
    activation's step and ``activation.fused_into`` the producer's. Returns the pairs' node
    names."""
    if not _enabled:
        return []
    readers = {}
    for index, step in enumerate(steps):
        for v in step.ins:
            readers.setdefault(v, []).append(index)
    outputs = set(out_values)
    pairs = []
    for step in steps:
        if not hasattr(step.kernel, "forward_fused") or len(step.outs) != 1:
            continue
        value = step.outs[0]
        users = readers.get(value, [])
        if value in outputs or len(users) != 1:
            continue
        act = steps[users[0]]
        if (len(act.ins) != 1 or len(act.outs) != 1 or act.fused_into is not None
                or not hasattr(act.kernel, "epilogue")
                or getattr(act.kernel, "device", None) != getattr(step.kernel, "device", "")):
            continue
        step.fused, act.fused_into = act, step
        pairs.append((step.name, act.name))
    return pairs
