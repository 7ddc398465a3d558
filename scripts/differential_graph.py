"""The ``graph`` family of ``differential_torch.py``: random DAGs in the graph executor against the
same arithmetic written out in PyTorch.

A case draws one or two inputs and then a random sequence of nodes over everything made so far:
convolutions (some reusing an earlier convolution's module, so its weights are shared), activations,
batch norm in training mode (on its running statistics when frozen, minicnn's documented rule),
max and average pooling, Add and Concat (an input may be taken twice,
as in ``Add()([a, a])``). One to three of the values become outputs, an intermediate one included,
so values fan out to several consumers and to the outputs. Some modules are frozen, and sometimes
the input gradient is not asked for.

Compared: every output, the input gradients and every weight gradient (None where frozen or where
no path reaches an output, as in PyTorch), batch
norm's running statistics, and a tapped node's activation and gradient (``model.activation`` and
``model.gradient`` against PyTorch's ``retain_grad``).
"""

import numpy as np
from differential_common import Mismatch, _close


class _Case:
    """The graph being drawn: minicnn symbols and, for each, how PyTorch computes it."""

    def __init__(self, rng, minicnn):
        self.rng, self.nn = rng, minicnn.nn
        self.symbols, self.channels, self.recipes = [], [], []
        self.modules = []            # (module, kind) in creation order, for weights and freezing
        self.description = "a graph still being drawn"

    def add(self, symbol, channels, recipe):
        self.symbols.append(symbol)
        self.channels.append(channels)
        self.recipes.append(recipe)

    def describe(self, out_ids, input_grad):
        """The graph in one line, for a mismatch report."""
        parts = []
        for i, (kind, module, sources) in enumerate(self.recipes):
            what = f"Input{self.channels[i]}" if kind == "input" else repr(module)
            frozen = module is not None and any(not p.requires_grad for p in module.parameters())
            parts.append(f"v{i}={what}{' frozen' if frozen else ''}{sources or ''}")
        return f"{'; '.join(parts)}; outputs {out_ids}, input_grad={input_grad}"

    def pick(self):
        return int(self.rng.integers(len(self.symbols)))

    def node(self):
        """Draw one node over the values made so far."""
        rng, nn = self.rng, self.nn
        kind = str(rng.choice(["conv", "conv", "activation", "batchnorm", "pool", "add", "concat"]))
        name = f"n{len(self.symbols)}"
        if kind in ("add", "concat"):
            first = self.pick()
            same = [i for i, c in enumerate(self.channels) if c == self.channels[first]]
            pool = same if kind == "add" else range(len(self.symbols))
            chosen = [first] + [int(rng.choice(pool)) for _ in range(int(rng.integers(1, 3)))]
            module = nn.Add() if kind == "add" else nn.Concat(dim=1)
            out = module([self.symbols[i] for i in chosen], name=name)
            channels = self.channels[first] if kind == "add" else sum(self.channels[i]
                                                                     for i in chosen)
            self.add(out, channels, (kind, module, chosen))
            return
        source = self.pick()
        cin = self.channels[source]
        if kind == "conv":
            module = self._conv(cin)
            channels = module.out_channels
        elif kind == "activation":
            module = getattr(nn, str(rng.choice(["ReLU", "Tanh", "Sigmoid", "LeakyReLU"])))()
            channels = cin
        elif kind == "batchnorm":
            module = nn.BatchNorm2d(cin, momentum=float(rng.choice([0.1, 0.5]))).double()
            module.weight.data[...] = rng.uniform(0.5, 2, cin)
            module.bias.data[...] = rng.standard_normal(cin)
            self.modules.append((module, kind))
            channels = cin
        else:
            cls = nn.MaxPool2d if rng.random() < 0.5 else nn.AvgPool2d
            module = cls(3, stride=1, padding=1)
            channels = cin
        self.add(module(self.symbols[source], name=name), channels, (kind, module, [source]))

    def _conv(self, cin):
        rng = self.rng
        shared = [m for m, kind in self.modules if kind == "conv" and m.in_channels == cin]
        if shared and rng.random() < 0.4:
            return shared[int(rng.integers(len(shared)))]
        groups = int(rng.choice([g for g in (1, 2, 3) if cin % g == 0]))
        cout = groups * int(rng.integers(1, 4))
        size = int(rng.choice([1, 3]))
        module = self.nn.Conv2d(cin, cout, size, padding=size // 2, groups=groups,
                                bias=bool(rng.random() < 0.7)).double()
        self.modules.append((module, "conv"))
        return module


def _torch_params(case, torch):
    """Each module's weights as PyTorch leaves (one per module: shared weights stay shared)."""
    params = {}
    for module, _ in case.modules:
        for name, param in module.named_parameters():
            params[(id(module), name)] = torch.tensor(np.array(param.data),
                                                      requires_grad=param.requires_grad)
    return params


def _replay(case, inputs, params, running, reached, torch):
    """PyTorch's values for every symbol, in order, each retaining its gradient."""
    functional = torch.nn.functional
    values = list(inputs)
    for kind, module, sources in case.recipes[len(inputs):]:
        xs = [values[i] for i in sources]
        if kind == "add":
            y = xs[0]
            for x in xs[1:]:
                y = y + x
        elif kind == "concat":
            y = torch.cat(xs, dim=1)
        elif kind == "conv":
            bias = params.get((id(module), "bias"))
            y = functional.conv2d(xs[0], params[(id(module), "weight")], bias,
                                  padding=module.padding, groups=module.groups)
        elif kind == "activation":
            y = getattr(torch.nn, type(module).__name__)()(xs[0])
        elif kind == "batchnorm":
            # a frozen batch norm runs on its running statistics (minicnn's documented choice, as
            # Keras); one the outputs do not reach never runs, so its statistics stay
            frozen = not any(p.requires_grad for p in module.parameters())
            mean, var = running[id(module)] if frozen or id(module) in reached else (None, None)
            y = functional.batch_norm(xs[0], mean, var, params[(id(module), "weight")],
                                      params[(id(module), "bias")], training=not frozen,
                                      momentum=module.momentum, eps=module.eps)
        elif type(module).__name__ == "MaxPool2d":
            y = functional.max_pool2d(xs[0], 3, stride=1, padding=1)
        else:
            y = functional.avg_pool2d(xs[0], 3, stride=1, padding=1)
        y.retain_grad()
        values.append(y)
    return values


def graph_check(rng, minicnn, torch):
    """One random DAG: outputs, input, weight and tap gradients, running statistics."""
    case = _Case(rng, minicnn)
    try:
        return _check(case, rng, minicnn, torch)
    except Mismatch as exc:
        raise Mismatch(f"{exc} in {case.description}") from None


def _check(case, rng, minicnn, torch):
    batch, height, width = int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(2, 5))
    for _ in range(int(rng.integers(1, 3))):
        channels = int(rng.integers(1, 4))
        case.add(minicnn.Input((channels, height, width)), channels, ("input", None, []))
    n_inputs = len(case.symbols)
    for _ in range(int(rng.integers(1, 9))):
        case.node()
    if len(case.symbols) == n_inputs:
        return False
    last = len(case.symbols) - 1
    extra = [int(i) for i in rng.integers(n_inputs, last + 1, int(rng.integers(0, 3)))]
    out_ids = list(dict.fromkeys([last] + extra))
    model = minicnn.Model(case.symbols[:n_inputs], [case.symbols[i] for i in out_ids])
    for module, _ in case.modules:
        if rng.random() < 0.25:
            for param in module.parameters():
                param.requires_grad = False
    input_grad = bool(rng.random() < 0.8)
    case.description = case.describe(out_ids, input_grad)

    xs = [rng.standard_normal((batch, case.channels[i], height, width)) for i in range(n_inputs)]
    running = {id(m): (torch.tensor(np.array(m.running_mean)),
                       torch.tensor(np.array(m.running_var)))
               for m, kind in case.modules if kind == "batchnorm"}
    params = _torch_params(case, torch)
    inputs = [torch.tensor(x, requires_grad=True) for x in xs]
    reached = {id(node.module) for node in model.nodes}
    values = _replay(case, inputs, params, running, reached, torch)

    got = model(*xs)
    got = got if isinstance(got, list) else [got]
    for k, i in enumerate(out_ids):
        _close(f"output {k} (value {i})", got[k], values[i].detach().numpy())
    grads = [rng.standard_normal(np.shape(g)) for g in got]
    result = model.backward(grads if len(grads) > 1 else grads[0], input_grad=input_grad)
    torch.autograd.backward([values[i] for i in out_ids], [torch.tensor(g) for g in grads])

    if input_grad:
        result = result if isinstance(result, list) else [result]
        for i, (mine, x) in enumerate(zip(result, inputs, strict=True)):
            if (mine is None) != (x.grad is None):     # None: no path to an output, as in PyTorch
                raise Mismatch(f"gradient of input {i}: minicnn {_kind(mine)}, PyTorch "
                               f"{_kind(x.grad)}")
            if mine is not None:
                _close(f"gradient of input {i}", mine, x.grad.numpy())
        tap = int(str(rng.choice([node.name for node in model.nodes]))[1:])
        want = values[tap].grad
        _close(f"activation of n{tap}", model.activation(f"n{tap}"), values[tap].detach().numpy())
        _close(f"gradient at n{tap}", model.gradient(f"n{tap}"),
               np.zeros(values[tap].shape) if want is None else want.numpy())
    for module, kind in case.modules:
        for name, param in module.named_parameters():
            theirs = params[(id(module), name)]
            if not param.requires_grad:
                if param.grad is not None:
                    raise Mismatch(f"frozen {kind} {name} got a gradient")
                continue
            if (param.grad is None) != (theirs.grad is None):    # None: no path to an output
                raise Mismatch(f"{kind} {name} gradient: minicnn {_kind(param.grad)}, PyTorch "
                               f"{_kind(theirs.grad)}")
            if theirs.grad is not None:
                _close(f"{kind} {name} gradient", param.grad, theirs.grad.numpy())
        if kind == "batchnorm":
            mean, var = running[id(module)]
            _close("running mean", module.running_mean, mean.numpy())
            _close("running variance", module.running_var, var.numpy())
    return True



def _kind(gradient):
    return "None" if gradient is None else "an array"
