"""Reading a model's graph: a flat view of its leaf layers, the CAM head, the default Grad-CAM
node, and the gradient of a class score at any node.

Everything goes through minicnn's public API: ``Module.named_children``, ``Model.inputs`` /
``nodes`` / ``outputs`` / ``node(name)``, calling layers on symbols, ``Model.activation`` and
``Module.backward(..., input_grad=True)`` and ``Module.gradient``.

**The flat view.** :func:`trace` calls every leaf layer of a model (Sequential and Model
containers nested to any depth) on symbols again, naming each node with its dotted path
(``layer3.2.relu_out``, ``features.4``): the same names the executor gives its nodes, so they are
the names ``model.activation(name)`` takes. The flat :class:`minicnn.Model` shares the original's
layers (and so its weights and train/eval flags) and can be cut anywhere.

**The gradient at a node.** :func:`gradient_at` runs the flat model, reads the node's value with
``activation(node)``, back-propagates the one-hot class scores with ``backward(onehot,
input_grad=True)`` (parameters frozen meanwhile, so no ``Param.grad`` is touched) and reads d score
/ d node with ``gradient(node)``: the partial derivative with respect to the node's value that
Grad-CAM needs, paths around the node (skip connections) included in the score but not in it.
"""

import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import minicnn
import numpy as np
from minicnn import nn


class SaliencyError(minicnn.MinicnnError, ValueError):
    """A saliency method cannot run on this model or these arguments; the message says why and
    names the nodes involved."""


_SOFTMAX = (nn.Softmax, nn.LogSoftmax)
_PASS_THROUGH = (nn.Dropout, nn.Identity)   # identities in eval mode (Dropout1d/2d subclass)


@dataclass
class FlatGraph:
    """A model's leaf layers as one functional graph (see the module docstring).

    ``model`` computes the class scores: the original output, or the input of a trailing Softmax /
    LogSoftmax (``softmax`` then names that node). ``nodes`` are in topological order; ``shapes``
    maps each node name to its per-sample output shape.
    """

    model: minicnn.Model
    input: object
    score: object
    nodes: list
    shapes: dict
    softmax: str | None = None

    def node(self, name):
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def describe(self, name):
        node = self.node(name)
        return f"'{name}' ({node.module.type_name}, output {_full(self.shapes[name])})"


def _full(shape):
    return "(N, " + ", ".join(map(str, shape)) + ")"


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else str(name)


def _call_leaf(layer, symbols, name):
    out = layer(list(symbols), name=name)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _trace_module(module, symbols, prefix):
    if isinstance(module, minicnn.Sequential):
        for name, child in module.named_children():
            symbols = _trace_module(child, symbols, _join(prefix, name))
        return symbols
    if isinstance(module, minicnn.Model):
        values = {id(s): v for s, v in zip(module.inputs, symbols, strict=True)}
        for node in module.nodes:
            outs = _trace_module(node.module, [values[id(s)] for s in node.inputs],
                                 _join(prefix, node.name))
            for s, v in zip(node.outputs, outs, strict=True):
                values[id(s)] = v
        return [values[id(s)] for s in module.outputs]
    if any(True for _ in module.named_children()):
        raise SaliencyError(f"cannot read the graph of a {type(module).__name__} container; "
                            f"saliency maps need models built from Sequential and Model")
    return _call_leaf(module, symbols, prefix or module.type_name.lower())


def input_shape(model):
    """The per-sample input shape a model declares (entries may be None), or None (Sequential)."""
    inputs = getattr(model, "inputs", None)
    if inputs:
        return tuple(inputs[0].shape) if inputs[0].shape is not None else None
    return None


_TRACES = weakref.WeakKeyDictionary()     # model -> {(shape, module ids): FlatGraph}


def trace(model, sample_shape):
    """The :class:`FlatGraph` of ``model`` for inputs of per-sample shape ``sample_shape``
    (C, H, W). Kept per model while its module tree is unchanged (a swapped layer makes a new
    one), so that repeated calls reuse the flat model's buffers."""
    if not isinstance(model, minicnn.Module):
        raise SaliencyError(f"expected a minicnn model, got {type(model).__name__}")
    key = (tuple(int(d) for d in sample_shape), model.device,
           tuple(id(m) for _, m in model.named_modules()))
    cached = _TRACES.setdefault(model, {})
    if key not in cached:
        if len(cached) >= 4:
            cached.clear()
        cached[key] = _trace(model, key[0])
    return cached[key]


def _trace(model, sample_shape):
    if getattr(model, "num_inputs", 1) not in (1, None) or len(getattr(model, "inputs", [0])) != 1:
        raise SaliencyError("saliency maps need a model with one image input")
    x = minicnn.Input(tuple(int(d) for d in sample_shape))
    try:
        outs = _trace_module(model, [x], "")
    except minicnn.ShapeError as err:
        raise SaliencyError(f"the model does not take inputs of shape "
                            f"{_full(tuple(sample_shape))}: {err}") from None
    if len(outs) != 1:
        raise SaliencyError(f"saliency maps need a model with one output (class scores), this "
                            f"one has {len(outs)}")
    flat = minicnn.Model(x, outs[0])
    score, softmax = outs[0], None
    last = score.node
    if last is not None and isinstance(last.module, _SOFTMAX):
        softmax, score = last.name, last.inputs[0]
    if score.shape is None or len(score.shape) != 1:
        shape = "unknown" if score.shape is None else _full(score.shape)
        what = f"input of its softmax '{softmax}'" if softmax else "output"
        raise SaliencyError(f"saliency maps need a classifier whose output is (N, classes); "
                            f"this model's {what} has shape {shape}")
    model_scores = _on_device(minicnn.Model(x, score) if softmax else flat, model.device)
    shapes = {n.name: tuple(n.outputs[0].shape) for n in model_scores.nodes}
    return FlatGraph(model_scores, x, score, list(model_scores.nodes), shapes, softmax)


def _on_device(new_model, device):
    """A model built around existing layers runs where they are (a new container says "cpu")."""
    return new_model if device == "cpu" else new_model.to(device)


# -- the CAM head --------------------------------------------------------------------------------

@dataclass
class CamHead:
    """Where a class activation map comes from.

    ``feature`` names the node whose (C, h, w) maps the global average pooling reduces; ``weight``
    is the (classes, C) matrix of the Linear after the pooling (``linear`` names it), or None when
    the pooled maps are the class scores themselves (a network ending in class maps and global
    average pooling, such as Network in Network or Darknet): the CAM of class k is then map k.
    """

    feature: str
    pool: str
    linear: str | None
    weight: np.ndarray | None
    bias: np.ndarray | None


def _is_global_average(node):
    module = node.module
    out = node.outputs[0].shape
    if out is None or len(out) != 3 or out[1:] != (1, 1):
        return False
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return True
    if type(module) is nn.AvgPool2d:       # a window exactly the size of the map
        src = node.inputs[0].shape
        return (src is not None and tuple(module.kernel_size) == tuple(src[1:])
                and tuple(module.padding) == (0, 0) and module.divisor_override is None)
    return False


def _tail(graph, symbol, count=6):
    """The last nodes on the way to ``symbol``, for messages: "Conv2d 'c' -> ReLU 'r' -> ..."."""
    chain = []
    node = symbol.node
    while node is not None and len(chain) < count:
        chain.append(f"{node.module.type_name} '{node.name}'")
        node = node.inputs[0].node if len(node.inputs) == 1 else None
    return " -> ".join(reversed(chain)) or "the input"


def find_cam_head(graph):
    """The :class:`CamHead` of a traced model, or a :class:`SaliencyError` saying what the model
    ends with instead.

    Accepted endings (a trailing Softmax / LogSoftmax is ignored; Dropout and Identity may sit
    anywhere in the head): ``features -> global average pool -> [Flatten] -> Linear`` and
    ``class maps -> global average pool -> [Flatten]``. The global average pool is an
    ``AdaptiveAvgPool2d`` with output 1x1 (``GlobalAvgPool2d``) or an ``AvgPool2d`` whose window is
    the whole map.
    """
    wanted = ("CAM needs a model ending in global average pooling, [Flatten] and a Linear layer "
              "(or in class maps and global average pooling)")
    end = f"this model ends with {_tail(graph, graph.score)}"
    steps, symbol, pool = [], graph.score, None
    while symbol.node is not None and len(symbol.node.inputs) == 1:
        node = symbol.node
        if _is_global_average(node):
            pool = node
            break
        steps.append(node)
        symbol = node.inputs[0]
    if pool is None:
        raise SaliencyError(f"{wanted}; {end}: no global average pooling on the way back from "
                            f"the output; use Grad-CAM instead (method 'gradcam')")
    head = [n for n in steps if not isinstance(n.module, _PASS_THROUGH)]
    linear = None
    for n in head:
        if isinstance(n.module, nn.Linear) and linear is None:
            linear = n
        elif isinstance(n.module, nn.Flatten):
            continue
        else:
            raise SaliencyError(f"{wanted}; {end}: {n.module.type_name} '{n.name}' sits between "
                                f"the pooling '{pool.name}' and the output; use Grad-CAM "
                                f"instead (method 'gradcam')")
    feature = pool.inputs[0].node
    if feature is None:
        raise SaliencyError(f"{wanted}; {end}: the pooling '{pool.name}' reads the model input "
                            f"directly, there is no feature map")
    if linear is None:
        return CamHead(feature.name, pool.name, None, None, None)
    weight = np.asarray(linear.module.weight.data, dtype=np.float64)
    bias = linear.module.bias
    bias = None if bias is None else np.asarray(bias.data, dtype=np.float64)
    return CamHead(feature.name, pool.name, linear.name, weight, bias)


# -- Grad-CAM nodes ------------------------------------------------------------------------------

def feature_nodes(graph):
    """Names of the nodes with a 4-D (N, C, H, W) output, in topological order."""
    return [n.name for n in graph.nodes if len(graph.shapes[n.name]) == 3]


def default_layer(graph):
    """The last node with a 4-D output larger than 1x1 (the last feature map before the head);
    the last 4-D node when every map is 1x1."""
    four = feature_nodes(graph)
    if not four:
        raise SaliencyError(f"Grad-CAM needs a node with a 4-D (N, C, H, W) output; this model "
                            f"has none ({_tail(graph, graph.score)})")
    spatial = [n for n in four if graph.shapes[n][1:] != (1, 1)]
    return (spatial or four)[-1]


def check_layer(graph, layer, what="Grad-CAM"):
    """``layer`` if it names a 4-D node of the graph, else a SaliencyError listing candidates."""
    four = feature_nodes(graph)
    shown = ", ".join(four[-8:]) + (f" (and {len(four) - 8} earlier)" if len(four) > 8 else "")
    try:
        graph.node(layer)
    except KeyError:
        raise SaliencyError(f"{what}: no node named {layer!r}; nodes with 4-D outputs: "
                            f"{shown or 'none'}") from None
    if len(graph.shapes[layer]) != 3:
        raise SaliencyError(f"{what}: node {graph.describe(layer)} is not a feature map; "
                            f"{what} needs a 4-D (N, C, H, W) output; candidates: {shown}")
    return layer


# -- gradients -----------------------------------------------------------------------------------

@contextmanager
def evaluating(model):
    """Eval mode and no parameter gradients for the duration (flags restored after): saliency
    reads the model, it must neither use batch statistics nor overwrite ``Param.grad``."""
    modes = [(m, m.training) for _, m in model.named_modules()]
    params = model.parameters()
    flags = [p.requires_grad for p in params]
    model.eval()
    for p in params:
        p.requires_grad = False
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad = flag


def one_hot(shape, classes, dtype):
    g = np.zeros(shape, dtype=dtype)
    g[np.arange(shape[0]), classes] = 1
    return g


def resolve_classes(target, scores):
    """The class explained for each sample: ``target`` None (each sample's top class), an int
    (the same for all) or one int per sample. Int64 array (N,)."""
    n, k = scores.shape
    if target is None:
        return np.argmax(scores, axis=1).astype(np.int64)
    classes = np.asarray(target)
    if classes.ndim == 0:
        classes = np.full(n, classes)
    if classes.shape != (n,) or classes.dtype.kind not in "iu":
        raise SaliencyError(f"the target class must be an int or one int per sample ({n}), got "
                            f"{target!r}")
    bad = [int(c) for c in classes if not 0 <= c < k]
    if bad:
        raise SaliencyError(f"class {bad[0]} is out of range: the model has {k} classes "
                            f"(0..{k - 1})")
    return classes.astype(np.int64)


def gradient_at(graph, x, layer, target=None):
    """``(value, gradient, scores, classes)`` at node ``layer`` on batch ``x``: the node's (N, C,
    h, w) value, d score[n, classes[n]] / d value, the (N, K) scores and the classes explained
    (:func:`resolve_classes` of ``target``). Call inside :func:`evaluating`."""
    scores = minicnn.to_numpy(graph.model(x))
    classes = resolve_classes(target, scores)
    value = graph.model.activation(layer)
    graph.model.backward(one_hot(scores.shape, classes, scores.dtype), input_grad=True)
    return value, graph.model.gradient(layer), scores, classes
