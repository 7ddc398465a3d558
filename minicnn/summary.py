"""``model.summary()``: one row per node with output shapes, parameters, FLOPs; totals and
device."""

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

    def __str__(self):
        header = ("node", "type", "output shape", "params", "frozen", "FLOPs")
        lines = [[r["name"], r["type"], " ".join(str(s) for s in r["shapes"]),
                  f"{r['trainable'] + r['frozen']:,}", f"{r['frozen']:,}" if r["frozen"] else "",
                  _si(r["flops"])] for r in self.rows]
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
    rows, seen = [], set()
    for step in plan.steps:
        params = [p for p in step.layer._own_params().values() if id(p) not in seen]
        seen.update(id(p) for p in params)
        in_shapes = [plan.shapes[v] for v in step.ins]
        out_shapes = [plan.shapes[v] for v in step.outs]
        rows.append({
            "name": step.name, "type": step.layer.type_name, "shapes": out_shapes,
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
