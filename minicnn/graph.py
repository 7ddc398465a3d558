"""Containers: Model (a DAG described with symbols, Keras-style) and Sequential (a stack).

Both are modules: they can be called on arrays, on symbols, and nested inside each other. Parameter
names come from the container tree (``features.3.weight``), node names from the same tree, so taps,
state dicts and summaries agree.
"""

import copy
from collections import OrderedDict

from . import structure
from .errors import ShapeError
from .layer import Module
from .symbolic import Symbol


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class Model(Module):
    """A graph of layers between input symbols and output symbols.

    >>> x = minicnn.Input((4, 6, 6))
    >>> h = nn.ReLU()(nn.Conv2d(4, 4, 3, padding=1)(x), name="relu1")
    >>> model = minicnn.Model(x, nn.Add()([h, x]))
    """

    def __init__(self, inputs, outputs):
        super().__init__()
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self.outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for s in self.inputs + self.outputs:
            if not isinstance(s, Symbol):
                raise TypeError(f"Model inputs and outputs must be symbols, got {type(s).__name__}")
        self.nodes = self._toposort()
        self._name_nodes()
        self.num_inputs = len(self.inputs)
        self.input_kinds = tuple(s.kind for s in self.inputs)
        self._adopt_device()

    def _toposort(self):
        """The nodes the outputs depend on, each after its inputs' nodes: a depth-first walk, kept
        on an explicit stack so a graph thousands of nodes deep does not exhaust Python's
        recursion limit. The order is that of the recursive walk: inputs in order, first use
        first."""
        order, seen = [], set()
        input_ids = {id(s) for s in self.inputs}

        def node_of(symbol):
            if id(symbol) in input_ids:
                return None
            if symbol.node is None:
                raise ValueError("an output depends on an Input that is not among the model's "
                                 "inputs")
            return symbol.node

        for output in self.outputs:
            root = node_of(output)
            if root is None or id(root) in seen:
                continue
            seen.add(id(root))
            stack = [(root, iter(root.inputs))]
            while stack:
                node, pending = stack[-1]
                for symbol in pending:
                    child = node_of(symbol)
                    if child is not None and id(child) not in seen:
                        seen.add(id(child))
                        stack.append((child, iter(child.inputs)))
                        break
                else:                     # every input placed: the node follows them
                    order.append(node)
                    stack.pop()
        return order

    def _name_nodes(self):
        counts, taken = {}, {n.name for n in self.nodes if n.name}
        for node in self.nodes:
            if node.name is None:
                base = node.module.type_name.lower()
                while True:
                    counts[base] = counts.get(base, 0) + 1
                    candidate = f"{base}_{counts[base]}"
                    if candidate not in taken:
                        break
                node.name = candidate
                taken.add(candidate)
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node names must be unique in a model, repeated: {dupes}")

    def __deepcopy__(self, memo):
        # copy the nodes in graph order first: each then finds its inputs' nodes already copied,
        # so copy's recursion stays shallow however deep the graph is
        for node in self.nodes:
            copy.deepcopy(node, memo)
        return super().__deepcopy__(memo)

    def named_children(self):
        seen = set()
        for node in self.nodes:
            if id(node.module) not in seen:
                seen.add(id(node.module))
                yield node.name, node.module

    def __getitem__(self, name):
        """The module at a node, by node name."""
        for node in self.nodes:
            if node.name == name:
                return node.module
        raise KeyError(f"no node named {name!r}; nodes: {[n.name for n in self.nodes]}")

    def node(self, name):
        """The output symbol(s) of a node, to build new models from this one's graph (taps)."""
        for node in self.nodes:
            if node.name == name:
                return node.outputs[0] if len(node.outputs) == 1 else node.outputs
        raise KeyError(f"no node named {name!r}; nodes: {[n.name for n in self.nodes]}")

    def infer_shapes(self, in_shapes):
        shapes = {id(s): tuple(shape) for s, shape in zip(self.inputs, in_shapes, strict=True)}
        for node in self.nodes:
            try:
                outs = node.module.infer_shapes([shapes[id(s)] for s in node.inputs])
            except ShapeError as err:
                raise err.at_node(node.name, node.module.type_name) from None
            for s, shape in zip(node.outputs, outs, strict=True):
                shapes[id(s)] = tuple(shape)
        return [shapes[id(s)] for s in self.outputs]

    def _lower(self, builder, in_values, name):
        values = {id(s): v for s, v in zip(self.inputs, in_values, strict=True)}
        for node in self.nodes:
            outs = node.module._lower(builder, [values[id(s)] for s in node.inputs],
                                      _join(name, node.name))
            for s, v in zip(node.outputs, outs, strict=True):
                values[id(s)] = v
        return [values[id(s)] for s in self.outputs]

    def extra_repr(self):
        return ", ".join(f"{n.name}={n.module!r}" for n in self.nodes)


class Sequential(Module):
    """A stack of modules, each feeding the next: ``Sequential(a, b, c)`` or
    ``Sequential(OrderedDict)``.

    Children are named "0", "1", ... (or by the dict's keys), so parameter names match PyTorch's.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, module in items:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential child {name!r} is not a minicnn module: {module!r}")
        self._children = OrderedDict(items)
        self._adopt_device()

    @property
    def input_kinds(self):
        first = next(iter(self._children.values()), None)
        return first.input_kinds[:1] if first is not None else ("float",)

    def named_children(self):
        return iter(self._children.items())

    def __len__(self):
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())

    def __getitem__(self, index):
        if isinstance(index, str):
            return self._children[index]
        modules = list(self._children.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __setitem__(self, index, module):
        """Replace a child (swap a classifier head: ``model[-1] = nn.Linear(512, 10)``)."""
        keys = list(self._children)
        key = index if isinstance(index, str) else keys[index]
        if key not in self._children:
            raise KeyError(key)
        self._children[key] = module
        structure.changed()

    def __getattr__(self, name):
        children = self.__dict__.get("_children")
        if children is not None and name in children:
            return children[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def append(self, module):
        self._children[str(len(self._children))] = module
        structure.changed()
        return self

    def infer_shapes(self, in_shapes):
        shapes = list(in_shapes)
        for name, child in self._children.items():
            try:
                shapes = child.infer_shapes(shapes)
            except ShapeError as err:
                if err.node is not None:
                    raise
                raise err.at_node(name, child.type_name) from None
        return shapes

    def _lower(self, builder, in_values, name):
        values = list(in_values)
        for child_name, child in self._children.items():
            values = child._lower(builder, values, _join(name, child_name))
        return values

    def extra_repr(self):
        return ", ".join(f"{k}: {m!r}" for k, m in self._children.items())
