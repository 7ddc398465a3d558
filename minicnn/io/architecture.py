"""The architecture of a model as JSON: the module tree, each layer's type name and its config.

Document layout (stored in the ``architecture`` metadata entry of a ``.mcnn`` file)::

    {"format": "minicnn-architecture", "version": 1,
     "dtype": "float32",                  # of the parameters
     "frozen": ["features.0.weight"],     # parameters with requires_grad False
     "types": {"Conv2d": {"plugin": "minicnn.layers.conv", "package": null}},
     "root": <module>}

    <module> = {"id": 3, "kind": "layer", "type": "Conv2d", "config": {...}}
             | {"id": 0, "kind": "sequential", "children": [["features", <module>], ...]}
             | {"id": 1, "kind": "model",
                "inputs": [{"shape": [3, null, null], "kind": "float"}],
                "nodes": [{"name": "conv1", "module": <module>, "inputs": [<ref>, ...]}, ...],
                "outputs": [<ref>, ...]}
             | {"ref": 3}                 # the same module object again (shared weights)
    <ref>    = ["input", i] | ["node", j, slot]

Configs are encoded by :mod:`minicnn.io.codec` (tuples stay tuples, arrays go to the tensor part
under ``__config__/...``). Loading builds each layer as ``registry.layers[type][0](**config)``: a
type the registry does not know is an error naming the plugin and package recorded at save time.
Only ``Sequential``, ``Model`` and registered layer types can be described; a custom container class
is rejected when saving (save its weights with ``save_weights`` instead).
"""

import inspect

import numpy as np

from ..errors import ModelFormatError, ShapeError
from ..graph import Model, Sequential
from ..layer import Layer
from ..random import no_init
from ..registry import get_registry
from ..symbolic import Input, Node
from . import codec

ARCH_FORMAT = "minicnn-architecture"
ARCH_VERSION = 1
CONFIG_PREFIX = "__config__/"
#: More modules than this is refused: the deepest real networks have a few thousand, and building
#: costs about 0.1 ms a module, so a hostile file could otherwise keep a loader busy for minutes.
MAX_MODULES = 65_536
#: A layer config integer above both this and the file's weight count is refused before the layer
#: is built: only a size the file cannot fill could need it, and some layers fill arrays at once.
SMALL_CONFIG_INT = 2**20


# -- describing -----------------------------------------------------------------------------------

class _Describer:
    def __init__(self, registry):
        self.registry = registry
        self.ids = {}
        self.arrays = {}
        self.types = {}

    def module(self, module, where):
        if id(module) in self.ids:
            return {"ref": self.ids[id(module)]}
        ident = self.ids[id(module)] = len(self.ids)
        entry = self.registry.layers.get(module.type_name)
        if entry is not None and entry[0] is type(module):
            return self.layer(module, ident, where)
        if type(module) is Sequential:
            return {"id": ident, "kind": "sequential",
                    "children": [[name, self.module(child, _join(where, name))]
                                 for name, child in module.named_children()]}
        if type(module) is Model:
            return self.model(module, ident, where)
        if isinstance(module, Layer):
            raise TypeError(f"cannot save the architecture: layer '{where or 'root'}' has type "
                            f"{module.type_name!r} ({type(module).__module__}."
                            f"{type(module).__qualname__}), which is not registered with minicnn's "
                            f"registry; register it through a plugin, or use save_weights")
        raise TypeError(f"cannot save the architecture: module '{where or 'root'}' is a "
                        f"{type(module).__name__}, a custom container; only Sequential, Model and "
                        f"registered layer types can be described (save its weights with "
                        f"save_weights)")

    def layer(self, module, ident, where):
        name = module.type_name
        provider = self.registry.provider_of(name)
        if provider is not None:
            self.types[name] = {"plugin": provider[0], "package": provider[1]}
        key = f"{CONFIG_PREFIX}{where or 'root'}"
        config = {arg: codec.encode(value, self.arrays, f"{key}.{arg}",
                                    f"config '{arg}' of '{where or 'root'}'")
                  for arg, value in module.config().items()}
        return {"id": ident, "kind": "layer", "type": name, "config": config}

    def model(self, model, ident, where):
        refs = {id(s): ["input", i] for i, s in enumerate(model.inputs)}
        nodes = []
        for j, node in enumerate(model.nodes):
            inputs = []
            for s in node.inputs:
                if id(s) not in refs:
                    raise TypeError(f"cannot save the architecture: node '{node.name}' of "
                                    f"'{where or 'root'}' reads a symbol outside the model")
                inputs.append(refs[id(s)])
            nodes.append({"name": node.name,
                          "module": self.module(node.module, _join(where, node.name)),
                          "inputs": inputs})
            for s in node.outputs:
                refs[id(s)] = ["node", j, s.index]
        return {"id": ident, "kind": "model",
                "inputs": [{"shape": None if s.shape is None else list(s.shape), "kind": s.kind}
                           for s in model.inputs],
                "nodes": nodes, "outputs": [refs[id(s)] for s in model.outputs]}


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def describe(model, registry=None):
    """``(document, arrays)``: the architecture JSON document and the arrays its configs hold."""
    d = _Describer(registry or get_registry())
    root = d.module(model, "")
    dtype = model.dtype
    doc = {"format": ARCH_FORMAT, "version": ARCH_VERSION,
           "dtype": None if dtype is None else str(np.dtype(dtype)),
           "frozen": [n for n, p in model.named_parameters() if not p.requires_grad],
           "types": d.types, "root": root}
    return doc, d.arrays


# -- building -------------------------------------------------------------------------------------

def _largest_int(value, depth=0):
    """The largest integer anywhere in a decoded config value (0 if none)."""
    if isinstance(value, bool) or depth > codec.MAX_DEPTH:
        return 0
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.size:
        return int(value.max())
    if isinstance(value, (list, tuple)):
        return max((_largest_int(v, depth + 1) for v in value), default=0)
    if isinstance(value, dict):
        return max((_largest_int(v, depth + 1) for v in value.values()), default=0)
    return 0


class _Builder:
    def __init__(self, doc, arrays, path, registry, weight_count):
        self.types = doc.get("types") if isinstance(doc.get("types"), dict) else {}
        self.arrays = arrays
        self.path = path
        self.registry = registry
        self.built = {}
        self.weight_count = weight_count   # elements the file holds for the state (None: unknown)
        self.declared = 0                  # elements of the layers built so far
        self.modules = 0

    def fail(self, where, message):
        raise ModelFormatError(f"architecture, module '{where or 'root'}': {message}",
                               path=self.path)

    def module(self, spec, where, depth=0):
        if depth > codec.MAX_DEPTH:
            self.fail(where, "modules nested too deeply")
        if not isinstance(spec, dict):
            self.fail(where, f"expected a module description, got {spec!r:.80}")
        if set(spec) == {"ref"}:
            ref = spec["ref"]
            if not isinstance(ref, int) or isinstance(ref, bool) or ref not in self.built:
                self.fail(where, f"refers to module {ref!r:.20}, which is not defined before it")
            return self.built[ref]
        self.modules += 1
        if self.modules > MAX_MODULES:
            self.fail(where, f"more than {MAX_MODULES} modules "
                             f"(minicnn.io.architecture.MAX_MODULES)")
        ident = spec.get("id")
        if not isinstance(ident, int) or isinstance(ident, bool) or ident in self.built:
            self.fail(where, f"missing or repeated module id {ident!r:.20}")
        kind = spec.get("kind")
        if kind == "layer":
            module = self.layer(spec, where)
        elif kind == "sequential":
            module = self.sequential(spec, where, depth)
        elif kind == "model":
            module = self.model(spec, where, depth)
        else:
            self.fail(where, f"unknown module kind {kind!r:.40}")
        self.built[ident] = module
        return module

    def layer(self, spec, where):
        if set(spec) != {"id", "kind", "type", "config"} or not isinstance(spec["type"], str):
            self.fail(where, "a layer needs exactly 'id', 'kind', 'type' (a string) and 'config'")
        type_name = spec["type"]
        entry = self.registry.layers.get(type_name)
        if entry is None:
            self.fail(where, self._unknown(type_name))
        cls = entry[0]
        if not isinstance(spec["config"], dict):
            self.fail(where, f"the config of layer type '{type_name}' must be a JSON object")
        config = {arg: codec.decode(value, self.arrays, self.path,
                                    f"architecture, config '{arg}' of '{where or 'root'}'")
                  for arg, value in spec["config"].items()}
        args, kwargs = self._arguments(cls, type_name, config, where)
        self._check_sizes_before(type_name, config, where)
        try:
            layer = cls(*args, **kwargs)
        except Exception as exc:   # a layer's own validation: ConfigError, TypeError, ValueError...
            self.fail(where, f"cannot build layer type '{type_name}' from config {config!r:.200}: "
                             f"{type(exc).__name__}: {exc}")
        self._check_sizes_after(layer, type_name, where)
        return layer

    def _check_sizes_before(self, type_name, config, where):
        """Refuse a config integer only a size the file cannot fill could need."""
        if self.weight_count is None:
            return
        largest = _largest_int(config)
        if largest > max(self.weight_count, SMALL_CONFIG_INT):
            self.fail(where, f"layer type '{type_name}' has config value {largest}, more than the "
                             f"{self.weight_count} weights the file holds; refused before building")

    def _check_sizes_after(self, layer, type_name, where):
        """Keep the model near the size of the file's weights (its arrays are not yet touched:
        casting or loading them is what would cost the memory). A smaller excess is left to the
        loading, whose error names the keys that differ."""
        if self.weight_count is None:
            return
        arrays = [p.data for _, p in layer.named_parameters()]
        arrays += [b for _, b in layer.named_buffers()]
        self.declared += sum(int(np.size(a)) for a in arrays)
        if self.declared > self.weight_count + SMALL_CONFIG_INT:   # small ones: named per key
            self.fail(where, f"the layers up to this '{type_name}' have {self.declared} weights, "
                             f"far more than the {self.weight_count} the file holds")

    def _unknown(self, type_name):
        recorded = self.types.get(type_name)
        if isinstance(recorded, dict) and isinstance(recorded.get("plugin"), str):
            package = recorded.get("package")
            pkg = f" (package '{package}')" if isinstance(package, str) else ""
            return (f"layer type '{type_name}' is provided by plugin '{recorded['plugin']}'{pkg}; "
                    f"install it")
        return f"unknown layer type '{type_name}' (no installed plugin registers it)"

    def _arguments(self, cls, type_name, config, where):
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):
            return [], config
        params = signature.parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        accepted = {n for n, p in params.items()
                    if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                  inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_POSITIONAL)}
        unknown = sorted(k for k in config if k not in accepted and not var_kw)
        if unknown:
            self.fail(where, f"layer type '{type_name}' does not accept config key(s) {unknown}; "
                             f"it accepts {sorted(accepted)}")
        args, kwargs = [], dict(config)
        var_pos = [n for n, p in params.items() if p.kind is inspect.Parameter.VAR_POSITIONAL]
        if var_pos and var_pos[0] in kwargs:
            before = [n for n, p in params.items()
                      if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
            args = [kwargs.pop(n) for n in before if n in kwargs]
            extra = kwargs.pop(var_pos[0])
            if not isinstance(extra, (list, tuple)):
                self.fail(where, f"*{var_pos[0]} of layer type '{type_name}' must be a list")
            args += list(extra)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            self.fail(where, f"config does not fit layer type '{type_name}': {exc}")
        return args, kwargs

    def sequential(self, spec, where, depth):
        children = spec.get("children")
        if set(spec) != {"id", "kind", "children"} or not isinstance(children, list):
            self.fail(where, "a sequential needs exactly 'id', 'kind' and 'children' (a list)")
        items = {}
        for child in children:
            if not isinstance(child, list) or len(child) != 2 or not isinstance(child[0], str):
                self.fail(where, "each child must be a [name, module] pair")
            if child[0] in items:
                self.fail(where, f"repeated child name {child[0]!r:.40}")
            items[child[0]] = self.module(child[1], _join(where, child[0]), depth + 1)
        return Sequential(items)

    def model(self, spec, where, depth):
        if set(spec) != {"id", "kind", "inputs", "nodes", "outputs"} \
                or not all(isinstance(spec[k], list) for k in ("inputs", "nodes", "outputs")):
            self.fail(where, "a model needs exactly 'id', 'kind' and the lists 'inputs', 'nodes', "
                             "'outputs'")
        inputs = []
        for i, desc in enumerate(spec["inputs"]):
            if not isinstance(desc, dict) or set(desc) != {"shape", "kind"} \
                    or desc["kind"] not in ("float", "index") \
                    or not isinstance(desc["shape"], list):
                self.fail(where, f"input {i} must be {{'shape': [...], 'kind': 'float'|'index'}}")
            try:
                inputs.append(Input(tuple(desc["shape"]), kind=desc["kind"]))
            except (TypeError, ValueError) as exc:
                self.fail(where, f"input {i}: {exc}")
        produced = []
        for j, desc in enumerate(spec["nodes"]):
            if not isinstance(desc, dict) or set(desc) != {"name", "module", "inputs"} \
                    or not isinstance(desc["name"], str) or not isinstance(desc["inputs"], list):
                self.fail(where, f"node {j} must have exactly 'name' (a string), 'module', "
                                 f"'inputs'")
            name = desc["name"]
            module = self.module(desc["module"], _join(where, name), depth + 1)
            symbols = [self._resolve(ref, inputs, produced, where) for ref in desc["inputs"]]
            try:
                node = Node(module, symbols, name=name)
            except ShapeError as exc:
                self.fail(where, f"node '{name}' does not fit its inputs: {exc}")
            except Exception as exc:
                self.fail(where, f"node '{name}': {type(exc).__name__}: {exc}")
            produced.append(node.outputs)
        outputs = [self._resolve(ref, inputs, produced, where) for ref in spec["outputs"]]
        try:
            return Model(inputs, outputs)
        except (TypeError, ValueError) as exc:
            self.fail(where, f"cannot assemble the model: {exc}")

    def _resolve(self, ref, inputs, produced, where):
        def ok_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        if isinstance(ref, list) and len(ref) == 2 and ref[0] == "input" and ok_int(ref[1]) \
                and 0 <= ref[1] < len(inputs):
            return inputs[ref[1]]
        if isinstance(ref, list) and len(ref) == 3 and ref[0] == "node" and ok_int(ref[1]) \
                and ok_int(ref[2]) and 0 <= ref[1] < len(produced) \
                and 0 <= ref[2] < len(produced[ref[1]]):
            return produced[ref[1]][ref[2]]
        self.fail(where, f"invalid reference {ref!r:.60} (must name an input or an earlier node's "
                         f"output)")


def build(doc, arrays, path, registry=None, weight_count=None):
    """The module an architecture document describes (ModelFormatError for anything wrong).

    ``weight_count``, the number of parameter and buffer elements the file holds, bounds what may be
    built: a file cannot make the loader allocate more than it could fill."""
    if not isinstance(doc, dict) or doc.get("format") != ARCH_FORMAT:
        raise ModelFormatError("the architecture is not a minicnn architecture document", path=path)
    if doc.get("version") != ARCH_VERSION:
        raise ModelFormatError(f"unsupported architecture version {doc.get('version')!r:.20}",
                               path=path)
    builder = _Builder(doc, arrays, path, registry or get_registry(), weight_count)
    with no_init():      # the file's weights replace the initial ones: do not draw them
        model = builder.module(doc.get("root"), "")
    dtype = doc.get("dtype")
    if dtype not in (None, "float32", "float64"):
        raise ModelFormatError(f"architecture dtype {dtype!r:.20} is not float32 or float64",
                               path=path)
    if dtype is not None and model.dtype is not None and np.dtype(dtype) != model.dtype:
        model.astype(dtype)
    frozen = doc.get("frozen", [])
    params = dict(model.named_parameters())
    if not isinstance(frozen, list) or not all(isinstance(n, str) and n in params for n in frozen):
        raise ModelFormatError("architecture 'frozen' must list parameter names of the model",
                               path=path)
    for name in frozen:
        params[name].requires_grad = False
    return model

