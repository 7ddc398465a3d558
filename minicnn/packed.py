"""Packed device arrays: many small arrays stored as consecutive views of one flat buffer.

On the GPU an optimiser step launches one kernel per parameter (65 for ResNet-20, a fifth of its
training step's launches), and each launch costs tens of microseconds of host time. When the
parameters, their gradients and the optimiser's state are packed (``model.to("cuda")`` packs the
parameters, the executor packs the gradients it allocates, the optimisers pack their state), a
group's whole update is one launch over the flat range that :func:`span` finds. Packing changes
no arithmetic: the update is element-wise, so one launch gives the bits of many.

Only device arrays are packed (numpy arrays have nowhere to keep the tag, and the CPU update is not
launch-bound). A packed view carries ``(base, first, stop)`` in its ``__dict__``; an array replaced
later (a ``load_state_dict``, ``astype``, a user assignment) has no tag, :func:`span` returns None
and the caller falls back to one update per array: packing is an optimisation, never a condition.
"""

import math

_TAG = "_minicnn_packed"      # view.__dict__[_TAG] = (base, first, stop), offsets in elements
_NO_DICT = {}
_SPANS = "_minicnn_spans"     # base.__dict__[_SPANS] = {(start, stop): flat view}


def packable(array):
    """Whether ``array`` can be tagged (numba device arrays can, numpy arrays cannot)."""
    return hasattr(array, "__dict__") and hasattr(array, "copy_to_host")


def pack(dev, shapes, dtype):
    """Views of one new flat ``dev`` buffer with the given shapes, in order (uninitialised)."""
    sizes = [math.prod(shape) for shape in shapes]
    base = dev.empty((max(1, sum(sizes)),), dtype)
    views, offset = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        view = base[offset:offset + size].reshape(shape)
        if packable(view):
            view.__dict__[_TAG] = (base, offset, offset + size)
        views.append(view)
        offset += size
    return views


def pack_copies(dev, arrays):
    """Packed copies of same-dtype ``dev`` arrays (their values, in order). Copied by the
    driver (device-to-device memcpy), not by a kernel: a large model moves in moments, also on
    numba's simulator, which would run a copy kernel element by element in Python."""
    views = pack(dev, [tuple(a.shape) for a in arrays], arrays[0].dtype)
    for view, array in zip(views, arrays, strict=True):
        view.copy_to_device(array)
    return views


def span(arrays):
    """The flat view covering ``arrays`` when they are consecutive views of one packed buffer, in
    this order; otherwise None."""
    if not arrays:
        return None
    tag = getattr(arrays[0], "__dict__", {}).get(_TAG)
    if tag is None:
        return None
    base, start, stop = tag[0], tag[1], tag[1]
    for array in arrays:   # every optimiser step walks this: the tags carry the sizes
        tag = getattr(array, "__dict__", _NO_DICT).get(_TAG)
        if tag is None or tag[0] is not base or tag[1] != stop:
            return None
        stop = tag[2]
    spans = base.__dict__.setdefault(_SPANS, {})
    view = spans.get((start, stop))
    if view is None:
        view = spans[(start, stop)] = base[start:stop]
    return view


def by_dtype(params):
    """``params`` grouped by their data's dtype (one buffer each), in order, each once (a shared
    parameter appears once however often it is listed)."""
    groups, seen = {}, set()
    for param in params:
        if id(param) not in seen:
            seen.add(id(param))
            groups.setdefault(param.data.dtype.str, []).append(param)
    return list(groups.values())


def pack_parameters(params, dev):
    """Replace the data of ``params`` that live on ``dev`` (device arrays) with packed copies, one
    buffer per dtype, in the order given (shared parameters once)."""
    for group in by_dtype(p for p in params if packable(p.data)):
        for param, view in zip(group, pack_copies(dev, [p.data for p in group]), strict=True):
            param.data = view
