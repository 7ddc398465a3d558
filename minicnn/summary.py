"""``model.summary()``: one row per node with output shapes, receptive field, parameters, FLOPs;
totals and device.

The receptive field ("RF" column) of a node is the size, in input pixels, of the input window that
one output element can depend on; "jump" is the distance, in input pixels, between neighbouring
output elements (the product of the strides so far). Both are computed from the layers'
hyper-parameters along the graph (see :func:`receptive_fields` for the rules), never from data.
They are the theoretical values: the field may be larger than the image (ResNet-20's last block
sees 81 x 81 pixels of a 32 x 32 input, most of it padding) and does not shrink at the borders.
"""

from fractions import Fraction

import numpy as np


class Summary:
    """Rows of a model summary; ``str()`` renders the table."""

    def __init__(self, title, rows, input_shapes, device, dtype):
        self.title, self.rows = title, rows
        self.input_shapes, self.device, self.dtype = input_shapes, device, dtype
        self.trainable = sum(r["trainable"] for r in rows)
        self.frozen = sum(r["frozen"] for r in rows)
        self.flops = sum(r["flops"] for r in rows)

    @property
    def total_params(self):
        return self.trainable + self.frozen

    def row(self, name):
        """The row of node ``name``: a dict with ``name``, ``type``, ``shapes``, ``rf`` and
        ``jump`` (tuples per spatial axis, see :func:`receptive_fields`; None where the node has
        no spatial axes), ``trainable``, ``frozen``, ``flops``."""
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(f"no node named {name!r}; nodes: {[r['name'] for r in self.rows]}")

    def __str__(self):
        spatial = any(r.get("rf") is not None for r in self.rows)
        header = ("node", "type", "output shape") + (("RF", "jump") if spatial else ()) \
            + ("params", "frozen", "FLOPs")
        lines = [[r["name"], r["type"], " ".join(str(s) for s in r["shapes"])]
                 + (list(format_field(r.get("rf"), r.get("jump"))) if spatial else [])
                 + [f"{r['trainable'] + r['frozen']:,}",
                    f"{r['frozen']:,}" if r["frozen"] else "", _si(r["flops"])]
                 for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]

        def fmt(cells):
            return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        rule = "-" * len(fmt(header))
        shapes = ", ".join(str(s) for s in self.input_shapes)
        out = [f"{self.title}  (input {shapes}, device {self.device}, {self.dtype})", rule,
               fmt(header), rule]
        out += [fmt(cells) for cells in lines]
        out += [rule, f"parameters: {self.total_params:,} (trainable {self.trainable:,}, "
                      f"frozen {self.frozen:,});  forward FLOPs: {_si(self.flops)} for this batch"]
        return "\n".join(out)

    __repr__ = __str__


def _si(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(int(n))


def summarize(module, input_shape=None):
    """Build the plan for ``input_shape`` (per sample, or full with batch; a list for several
    inputs) without running it, and describe every node. Without ``input_shape`` the last call's is
    used."""
    executor = module._get_executor()
    if input_shape is None:
        if hasattr(module, "inputs") and all(None not in s.shape for s in module.inputs):
            full = [(1,) + s.shape for s in module.inputs]
        elif executor._last is not None:
            plan = executor._last
            full = [plan.shapes[v] for v in plan.in_values]
        else:
            return _without_shapes(module)
    else:
        shapes = input_shape if isinstance(input_shape[0], (tuple, list)) else [input_shape]
        full = [tuple(s) if len(s) == _rank(module, i) else (1,) + tuple(s)
                for i, s in enumerate(shapes)]
    plan = executor.plan(full)
    fields = receptive_fields(plan)
    rows, seen = [], set()
    for step in plan.steps:
        params = [p for p in step.layer._own_params().values() if id(p) not in seen]
        seen.update(id(p) for p in params)
        in_shapes = [plan.shapes[v] for v in step.ins]
        out_shapes = [plan.shapes[v] for v in step.outs]
        rows.append({
            "name": step.name, "type": step.layer.type_name, "shapes": out_shapes,
            "rf": fields[step.name][0], "jump": fields[step.name][1],
            "trainable": sum(p.size for p in params if p.requires_grad),
            "frozen": sum(p.size for p in params if not p.requires_grad),
            "flops": int(step.layer.flops(in_shapes, out_shapes)),
        })
    dtype = module.dtype or np.dtype(np.float32)
    return Summary(type(module).__name__, rows, full, module.device, dtype)


def _rank(module, index):
    """Expected rank of a full input shape, when the model says (functional models do)."""
    inputs = getattr(module, "inputs", None)
    if inputs is not None:
        return len(inputs[index].shape) + 1
    return -1


def _without_shapes(module):
    """Before any call and without ``input_shape``: the layers and their parameters (shapes and
    FLOPs need an input shape)."""
    rows, seen = [], set()
    for name, layer in module.named_modules():
        if layer is module or any(True for _ in layer.named_children()) or id(layer) in seen:
            continue
        seen.add(id(layer))
        params = list(layer._own_params().values())
        rows.append({"name": name, "type": layer.type_name, "shapes": ["?"],
                     "trainable": sum(p.size for p in params if p.requires_grad),
                     "frozen": sum(p.size for p in params if not p.requires_grad), "flops": 0})
    dtype = module.dtype or np.dtype(np.float32)
    return Summary(f"{type(module).__name__} (give input_shape for shapes and FLOPs)", rows,
                   ["?"], module.device, dtype)


# -- receptive fields -----------------------------------------------------------------------------

ALL = "all"      # a field covering the whole input along an axis (after global pooling, Linear)
UNKNOWN = "?"    # a layer that changes the spatial size in a way these rules do not know


def receptive_fields(plan):
    """``{node name: (rf, jump)}`` for every step of an executor plan.

    ``rf`` and ``jump`` are tuples with one entry per spatial axis of the node's first output
    (``(h, w)`` for images), or None where there are no spatial axes to speak of (a model whose
    input is a plain feature vector). An ``rf`` entry is an int (pixels of the model input), or
    ``"all"`` when the output depends on the whole input along that axis, or ``"?"`` when unknown;
    a ``jump`` entry is an int (or a Fraction after a transposed convolution) or None.

    The rules, per axis, with ``rf``/``jump`` of the node's input and ``k_eff = dilation (k - 1) +
    1``:

    * a layer with ``kernel_size`` and ``stride`` (convolutions, pools): ``rf + (k_eff - 1) jump``
      and ``jump * stride``; padding moves the window, not its size;
    * a transposed convolution (it also has ``output_padding``): one output gathers at most
      ``span`` neighbouring inputs (``span`` = the largest count of kernel taps landing on one
      output, ``ceil(k_eff / stride)`` without dilation), so ``rf + (span - 1) jump`` and
      ``jump / stride`` (fractional: outputs are closer together than input pixels);
    * adaptive pooling (``output_size``): the widest of its windows; an output of size 1 (global
      pooling) covers everything: ``"all"``;
    * ``Flatten`` keeps each element's field; a layer after it that mixes the flattened features
      (``Linear``) sees everything: ``"all"``;
    * a layer that keeps the spatial size (activations, batch norm, dropout, padding layers aside)
      is pointwise in space; a ``Softmax`` over a spatial axis covers that axis;
    * several inputs (``Add``, ``Concat``): the largest field and jump over the inputs.

    Padding layers (``ZeroPad2d``) change the size without changing the field. Any other change of
    spatial size gives ``"?"``.
    """
    states = {}
    for v in plan.in_values:
        shape = plan.shapes[v]
        states[v] = _Field((1,) * (len(shape) - 2), (1,) * (len(shape) - 2)) \
            if len(shape) >= 3 else None
    out = {}
    for step in plan.steps:
        ins = [states.get(v) for v in step.ins]
        in_shapes = [plan.shapes[v] for v in step.ins]
        out_shape = plan.shapes[step.outs[0]] if step.outs else ()
        state = _step_field(step.layer, ins, in_shapes, out_shape)
        for v in step.outs:
            states[v] = state
        out[step.name] = (None, None) if state is None else (state.rf, state.jump)
    return out


class _Field:
    __slots__ = ("rf", "jump", "flat")

    def __init__(self, rf, jump, flat=False):
        self.rf, self.jump, self.flat = tuple(rf), tuple(jump), flat


def _unknown(n):
    return _Field((UNKNOWN,) * n, (None,) * n)


def _grow(rf, jump, taps):
    """The field after a window of ``taps`` input elements spaced ``jump`` apart."""
    if rf in (ALL, UNKNOWN):
        return rf
    return rf + (taps - 1) * jump


def _as_tuple(value, n):
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * n


def _transposed_span(k, s, d):
    """The most kernel taps of a transposed convolution that land on one output (input span)."""
    best = 1
    for r in range(s):
        taps = [t for t in range(k) if (r - d * t) % s == 0]
        if taps:
            best = max(best, (max(taps) - min(taps)) * d // s + 1)
    return best


def _step_field(layer, ins, in_shapes, out_shape):
    fields = [f for f in ins if f is not None]
    if not fields:
        return None
    n_out = max(len(out_shape) - 2, 0)
    first = ins[0] if ins[0] is not None else fields[0]
    kernel = getattr(layer, "kernel_size", None)
    stride = getattr(layer, "stride", None)
    if kernel is not None and stride is not None and not first.flat:
        n = len(first.rf)
        ks, ss = _as_tuple(kernel, n), _as_tuple(stride, n)
        ds = _as_tuple(getattr(layer, "dilation", 1), n)
        if len(ks) != n or n_out != n:
            return _unknown(n_out)
        rf, jump = [], []
        transposed = hasattr(layer, "output_padding")
        for r, j, k, s, d in zip(first.rf, first.jump, ks, ss, ds, strict=True):
            if j is None:
                rf.append(r)
                jump.append(None)
            elif transposed:
                rf.append(_grow(r, j, _transposed_span(k, s, d)))
                jump.append(Fraction(j) / s)
            else:
                rf.append(_grow(r, j, d * (k - 1) + 1))
                jump.append(j * s)
        return _Field(rf, [_plain(j) for j in jump])
    if hasattr(layer, "output_size") and not first.flat and n_out == len(first.rf):
        return _adaptive(first, in_shapes[0][2:], out_shape[2:])
    if hasattr(layer, "start_dim") and len(out_shape) < len(in_shapes[0]):
        return _Field(first.rf, first.jump, flat=True)          # Flatten: each element as before
    if first.flat or n_out == 0:
        n = len(first.rf)
        return _Field((ALL,) * n, (None,) * n, flat=first.flat or n_out == 0)
    if any(len(s) != len(out_shape) or tuple(s[2:]) != tuple(out_shape[2:])
           for s, f in zip(in_shapes, ins, strict=True) if f is not None):
        if hasattr(layer, "padding") and len(in_shapes[0]) == len(out_shape):
            return _merge(fields)                       # padding layers: the field is unchanged
        return _unknown(n_out)
    merged = _merge(fields)
    dim = getattr(layer, "dim", None)
    if isinstance(dim, int) and not isinstance(dim, bool):
        axis = dim % len(out_shape)
        if axis >= 2:                                            # softmax over a spatial axis
            rf, jump = list(merged.rf), list(merged.jump)
            rf[axis - 2], jump[axis - 2] = ALL, None
            return _Field(rf, jump)
    return merged


def _plain(j):
    if isinstance(j, Fraction) and j.denominator == 1:
        return int(j)
    return j


def _merge(fields):
    """The largest field and jump per axis over several inputs ("all" wins, "?" spreads)."""
    n = min(len(f.rf) for f in fields)
    rf, jump = [], []
    for axis in range(n):
        values = [f.rf[axis] for f in fields]
        if UNKNOWN in values:
            rf.append(UNKNOWN)
        elif ALL in values:
            rf.append(ALL)
        else:
            rf.append(max(values))
        jumps = [f.jump[axis] for f in fields if f.jump[axis] is not None]
        jump.append(max(jumps) if jumps else None)
    return _Field(rf, jump, flat=any(f.flat for f in fields))


def _adaptive(field, in_size, out_size):
    """Adaptive pooling: windows ``[floor(i L / O), ceil((i + 1) L / O))`` (PyTorch's rule)."""
    rf, jump = [], []
    for r, j, size, o in zip(field.rf, field.jump, in_size, out_size, strict=True):
        if o == 1 and size > 1 or r == ALL:
            rf.append(ALL)
            jump.append(None)
            continue
        widest = max(-(-(i + 1) * size // o) - (i * size) // o for i in range(o))
        rf.append(r if j is None else _grow(r, j, widest))
        step = Fraction(size, o)
        jump.append(None if j is None else _plain(j * step))
    return _Field(rf, jump)


def _fmt_number(v):
    if isinstance(v, Fraction):
        return f"{float(v):g}"
    return str(v)


def format_field(rf, jump):
    """The summary's "RF" and "jump" cells: ``"14"``, ``"14 x 10"`` (h x w when they differ),
    ``"all"``; empty for nodes without spatial axes."""
    if rf is None:
        return "", ""
    cells = []
    for values in (rf, jump):
        shown = ["-" if v is None else _fmt_number(v) for v in values]
        cells.append(shown[0] if len(set(shown)) == 1 else " x ".join(shown))
    if cells[1] == "-":
        cells[1] = ""
    return cells[0], cells[1]
