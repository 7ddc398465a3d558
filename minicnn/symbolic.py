"""Symbolic values for the functional (Keras-style) form: ``x = Input(shape); y = layer(x)``.

A :class:`Symbol` stands for an array that does not exist yet; calling a layer on symbols records a
:class:`Node` and returns the node's output symbols. :class:`minicnn.Model` collects the nodes between its
inputs and outputs into a graph.
"""

from .errors import ShapeError

_SYMBOLIC_BATCH = 1   # batch size used to check shapes while a graph is being described


class Symbol:
    """One output of a node (or a model input). ``shape`` is per sample, without the batch axis."""

    def __init__(self, node, index, shape, kind="float"):
        self.node = node      # producing Node, or None for an Input
        self.index = index
        self.shape = tuple(shape)
        self.kind = kind      # "float" for activations, "index" for integer labels

    def __repr__(self):
        where = self.node.name if self.node is not None else "input"
        return f"<Symbol {where}[{self.index}] shape=(N, {', '.join(map(str, self.shape))})>"


def Input(shape, kind="float"):  # noqa: N802 - a constructor in the user's eyes, as in Keras
    """A model input of per-sample ``shape`` (C, H, W for images; the batch axis is left out)."""
    if any((not isinstance(s, int)) or s <= 0 for s in shape):
        raise ValueError(f"Input shape must be positive integers (without the batch axis), got {shape}")
    return Symbol(None, 0, shape, kind)


class Node:
    """A layer (or a whole model) applied to input symbols; ``name`` is assigned by the Model if None."""

    def __init__(self, module, inputs, name=None):
        self.module = module
        self.inputs = list(inputs)
        self.name = name
        in_shapes = [(_SYMBOLIC_BATCH,) + s.shape for s in self.inputs]
        try:
            out_shapes = module.infer_shapes(in_shapes)
        except ShapeError as err:
            raise err.at_node(name or module.type_name.lower(), module.type_name) from None
        self.outputs = [Symbol(self, i, shape[1:] if len(shape) else shape)
                        for i, shape in enumerate(out_shapes)]


def is_symbolic(values):
    return any(isinstance(v, Symbol) for v in values)
