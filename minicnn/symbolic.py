"""Symbolic values for the functional (Keras-style) form: ``x = Input(shape); y = layer(x)``.

A :class:`Symbol` stands for an array that does not exist yet; calling a layer on symbols records a
:class:`Node` and returns the node's output symbols. :class:`minicnn.Model` collects the nodes
between its inputs and outputs into a graph.
"""

from .errors import ShapeError

_SYMBOLIC_BATCH = 1   # batch size used to check shapes while a graph is being described
# Sizes tried for axes left free (None) in an Input: an axis whose inferred size differs between the
# two probes is free in the output too. Large, so that no kernel or window is bigger than a probe.
_PROBES = (509, 1021)


class Symbol:
    """One output of a node (or a model input). ``shape`` is per sample, without the batch axis; an
    axis may be None (free, known only when data comes), and the whole shape None when not
    inferable."""

    def __init__(self, node, index, shape, kind="float"):
        self.node = node      # producing Node, or None for an Input
        self.index = index
        self.shape = tuple(shape) if shape is not None else None
        self.kind = kind      # "float" for activations, "index" for integer labels

    def __repr__(self):
        where = self.node.name if self.node is not None else "input"
        dims = "?" if self.shape is None else ", ".join(map(str, self.shape))
        return f"<Symbol {where}[{self.index}] shape=(N, {dims})>"


def Input(shape, kind="float"):  # noqa: N802 - a constructor in the user's eyes, as in Keras
    """A model input of per-sample ``shape`` (C, H, W for images; the batch axis is left out).

    An axis given as None is free: ``Input((3, None, None))`` takes images of any size, and shape
    checks that depend on it happen when data comes.
    """
    if any(s is not None and ((not isinstance(s, int)) or s <= 0) for s in shape):
        raise ValueError(f"Input shape must be positive integers or None (without the batch axis), "
                         f"got {shape}")
    return Symbol(None, 0, shape, kind)


class Node:
    """A layer (or a whole model) applied to input symbols; ``name`` is assigned by the Model if
    None."""

    def __init__(self, module, inputs, name=None):
        self.module = module
        self.inputs = list(inputs)
        self.name = name
        try:
            out_shapes = _infer(module, [s.shape for s in self.inputs])
        except ShapeError as err:
            raise err.at_node(name or module.type_name.lower(), module.type_name) from None
        if out_shapes is None:
            out_shapes = [None] * _output_count(module)
        self.outputs = [Symbol(self, i, shape) for i, shape in enumerate(out_shapes)]


def is_symbolic(values):
    return any(isinstance(v, Symbol) for v in values)


def _infer(module, shapes):
    """Per-sample output shapes, with None for free axes; None if they depend on free axes in a way
    that cannot be checked before data comes."""
    if any(s is None for s in shapes):
        return None
    if not any(d is None for s in shapes for d in s):
        full = module.infer_shapes([(_SYMBOLIC_BATCH,) + s for s in shapes])
        return [tuple(o[1:]) for o in full]
    probed = []
    for probe in _PROBES:
        concrete = [(_SYMBOLIC_BATCH,) + tuple(probe if d is None else d for d in s)
                    for s in shapes]
        try:
            probed.append([tuple(o[1:]) for o in module.infer_shapes(concrete)])
        except ShapeError:
            return None   # depends on the free axes (a Linear after Flatten): checked at run time
    return [tuple(a if a == b else None for a, b in zip(x, y, strict=True))
            for x, y in zip(*probed, strict=True)]


def _output_count(module):
    outputs = getattr(module, "outputs", None)
    return len(outputs) if outputs is not None else getattr(module, "num_outputs", 1)
