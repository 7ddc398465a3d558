"""Style transfer as optimisation of the image (Gatys, Ecker and Bethge 2016).

The objective is one minicnn graph: the generated image ``G`` goes through the frozen feature
network; a :class:`ContentLoss` node compares the content layer with the content image's
activations, a :class:`StyleLoss` node per style layer compares Gram matrices with the style
image's, and an optional :class:`TotalVariationLoss` node smooths ``G``. The graph's outputs are
these terms; one backward pass with the output gradients
``(alpha, beta lambda_1, ..., beta lambda_L, tv_weight)`` gives ``dJ/dG`` for

    J = alpha J_content + beta sum_l lambda_l J_style_l + tv_weight TV(G),

with every parameter frozen, so no weight gradient is computed. The targets (content activations,
style Gram matrices) are inputs of the graph, computed once per image size.

Style images of another size than ``G``: their Gram matrices are rescaled by ``M_G / M_S`` (the
ratio of the numbers of positions), so they compare with ``G``'s as per-position averages.
"""

import math
import time
from dataclasses import dataclass, field

import minicnn
import numpy as np
from minicnn import ConfigError, optim

from .images import resize
from .layers import ContentLoss, GramMatrix, StyleLoss, TotalVariationLoss
from .networks import DEFAULT_WEIGHTS, GATYS
from .plugin import ensure_registered

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")


@dataclass
class Evaluation:
    """One evaluation of the objective: the weighted total and the unweighted terms."""
    total: float
    content: float
    style: float                  # sum_l lambda_l J_style_l (before beta)
    style_layers: list
    tv: float


@dataclass
class StyleResult:
    """What :meth:`StyleTransfer.run` returns."""
    image: np.ndarray             # (3, H, W) float32 in [0, 1]
    history: list = field(default_factory=list)   # Evaluation per objective evaluation
    iterations: int = 0           # optimiser iterations at the last scale
    evaluations: int = 0          # objective evaluations (forward + backward), all scales
    seconds: float = 0.0
    sizes: list = field(default_factory=list)     # (H, W) of each scale

    @property
    def style_start(self):
        return self.history[0].style

    @property
    def style_end(self):
        return self.history[-1].style

    @property
    def style_ratio(self):
        """How many times the style loss fell from its first to its last evaluation (last
        scale)."""
        return self.style_start / max(self.style_end, 1e-300)


def _weights(style_layers, style_weights):
    if style_weights is None:
        return [1.0 / len(style_layers)] * len(style_layers)
    weights = [float(w) for w in style_weights]
    if len(weights) != len(style_layers):
        raise ConfigError(f"style transfer: {len(style_layers)} style layers but "
                          f"{len(weights)} style weights")
    return weights


class StyleTransfer:
    """The objective and its optimisation for one feature network and one choice of layers.

    :param network: a :class:`~minicnn_style_transfer.networks.FeatureNetwork`.
    :param content_layer: the content layer (``"conv4_2"``), or None for texture synthesis.
    :param style_layers: the style layers; ``style_weights`` their ``lambda_l`` (default equal,
        summing to 1).
    :param content_weight, style_weight: ``alpha`` and ``beta`` (None: the network's default
        in :data:`~minicnn_style_transfer.networks.DEFAULT_WEIGHTS`, tuned at 256 pixels).
    :param tv_weight: weight of the total variation (0: none; None: the network's default);
        ``tv_power`` 2 or 1.
    :param norm: the style normaliser (:func:`minicnn_style_transfer.layers.style_scale`).
    """

    def __init__(self, network, content_layer=GATYS["content_layer"],
                 style_layers=GATYS["style_layers"], style_weights=None, content_weight=1.0,
                 style_weight=None, tv_weight=None, tv_power=2, norm="gatys"):
        ensure_registered()
        defaults = DEFAULT_WEIGHTS.get(network.name, DEFAULT_WEIGHTS["other"])
        style_weight = defaults["style_weight"] if style_weight is None else style_weight
        tv_weight = defaults["tv_weight"] if tv_weight is None else tv_weight
        self.network = network
        self.style_layers = list(style_layers)
        if not self.style_layers:
            raise ConfigError("style transfer: give at least one style layer")
        self.style_weights = _weights(self.style_layers, style_weights)
        self.content_layer = content_layer if content_weight else None
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        for layer in self.style_layers + ([self.content_layer] if self.content_layer else []):
            network.node(layer)     # a ConfigError listing the names if unknown
        self._build(tv_power, norm)

    def _build(self, tv_power, norm):
        net = self.network
        image = net.input
        inputs, outputs, weights = [image], [], []
        if self.content_layer:
            shape = net.node(self.content_layer).shape
            target = minicnn.Input((shape[0], None, None))
            inputs.append(target)
            outputs.append(ContentLoss()([net.node(self.content_layer), target], name="content"))
            weights.append(self.content_weight)
        for layer, lam in zip(self.style_layers, self.style_weights, strict=True):
            channels = net.node(layer).shape[0]
            target = minicnn.Input((channels, channels))
            inputs.append(target)
            outputs.append(StyleLoss(norm)([net.node(layer), target], name=f"style_{layer}"))
            weights.append(self.style_weight * lam)
        if self.tv_weight:
            outputs.append(TotalVariationLoss(tv_power)(image, name="tv"))
            weights.append(self.tv_weight)
        self.objective = minicnn.Model(inputs, outputs)
        if net.model.device != "cpu":      # the losses join the network on its device
            self.objective.to(net.model.device)
        self.output_weights = weights
        self._gram = GramMatrix()

    # -- targets ----------------------------------------------------------------------------------

    def targets(self, content, style, out_hw):
        """The graph's target inputs for a generated image of ``out_hw`` = (H, W): the content
        activations of ``content`` (3, H, W) and the style Gram matrices of ``style`` (3, Hs, Ws),
        rescaled to ``H W`` positions."""
        dtype = self.network.dtype
        targets = []
        if self.content_layer:
            feats = self.network.features(content[None].astype(dtype), [self.content_layer])
            targets.append(np.ascontiguousarray(minicnn.to_numpy(feats[self.content_layer])))
        feats = self.network.features(style[None].astype(dtype), self.style_layers)
        for layer in self.style_layers:
            a = minicnn.to_numpy(feats[layer])     # the network may be on a GPU
            gram = self._gram(a)
            ratio = self._positions(layer, out_hw) / (a.shape[2] * a.shape[3])
            targets.append(np.ascontiguousarray(gram * dtype.type(ratio)))
        return targets

    def _positions(self, layer, hw):
        shape = self.network.extractor([layer]).infer_shapes([(1, 3) + tuple(hw)])[0]
        return shape[2] * shape[3]

    # -- the objective ----------------------------------------------------------------------------

    def evaluate(self, image, targets):
        """``(Evaluation, dJ/dimage)`` for a batch of one image (1, 3, H, W)."""
        outs = self.objective([image, *targets])
        outs = outs if isinstance(outs, list) else [outs]
        terms = [float(minicnn.to_numpy(o)) for o in outs]
        grads = self.objective.backward(list(self.output_weights), input_grad=True)
        grad = grads[0] if isinstance(grads, list) else grads
        total = float(sum(w * t for w, t in zip(self.output_weights, terms, strict=True)))
        k = 1 if self.content_layer else 0
        style_terms = terms[k:k + len(self.style_layers)]
        style = float(sum(lam * s for lam, s in zip(self.style_weights, style_terms,
                                                    strict=True)))
        return Evaluation(total, terms[0] if k else 0.0, style, style_terms,
                          terms[-1] if self.tv_weight else 0.0), grad

    # -- cost -------------------------------------------------------------------------------------

    def estimate(self, hw, style_hw, iterations, optimizer="lbfgs", line_search="strong_wolfe",
                 history_size=50, scales=1, seconds_per_evaluation=None):
        """What a run will cost, before running it: a dict with ``memory_bytes`` (activations and
        their gradients at the largest scale, the targets, the optimiser's state),
        ``gflop_per_evaluation`` (forward and backward to the image, about 3x the forward),
        ``evaluations`` (expected, all scales) and ``seconds`` (``None`` unless the measured
        ``seconds_per_evaluation`` at full size is given; coarser scales are counted at 1/4 the
        cost per halving)."""
        itemsize = np.dtype(self.network.dtype).itemsize
        per_iteration = 1.1 if optimizer == "lbfgs" and line_search else 1.0
        evaluations = seconds = 0.0
        memory = flops = 0
        for level in range(scales):
            factor = 4.0 ** -level
            shape = self._scaled(hw, 2 ** level)
            elements, forward = graph_cost(self.objective, self._input_shapes(shape))
            if level == 0:
                numel = 3 * shape[0] * shape[1]
                state = (2 * history_size + 6) * numel if optimizer == "lbfgs" else 4 * numel
                s_elements, _ = graph_cost(self.network.extractor(self.style_layers),
                                           [(1, 3) + tuple(style_hw)])
                memory = itemsize * (2 * elements + state + s_elements)
                flops = 3 * forward
            evaluations += iterations * per_iteration + 1
            if seconds_per_evaluation is not None:
                seconds += factor * (iterations * per_iteration + 1) * seconds_per_evaluation
        return {"memory_bytes": int(memory), "gflop_per_evaluation": flops / 1e9,
                "evaluations": int(round(evaluations)),
                "seconds": seconds if seconds_per_evaluation is not None else None}

    def _scaled(self, hw, factor):
        """``hw`` divided by ``factor``, each side kept at least ``network.min_side``."""
        return tuple(max(self.network.min_side, round(s / factor)) for s in hw)

    def _input_shapes(self, hw):
        shapes = [(1, 3) + tuple(hw)]
        if self.content_layer:
            shapes.append(self.network.extractor([self.content_layer]).infer_shapes(
                [(1, 3) + tuple(hw)])[0])
        for layer in self.style_layers:
            c = self.network.node(layer).shape[0]
            shapes.append((1, c, c))
        return shapes

    # -- optimisation -----------------------------------------------------------------------------

    def initial_image(self, init, content, style, seed=0):
        """The starting point: ``"content"``, ``"noise"`` (uniform in [0, 1], seeded) or
        ``"style"`` (the style image resized to the content's size)."""
        if init == "content":
            return content.copy()
        if init == "noise":
            rng = np.random.default_rng(seed)
            return rng.uniform(0.0, 1.0, content.shape).astype(np.float32)
        if init == "style":
            return resize(style, content.shape[1:])
        raise ConfigError(f"style transfer: init must be one of {INITS}, got {init!r}")

    def optimize(self, start, targets, iterations, optimizer="lbfgs", lr=None,
                 line_search="strong_wolfe", history_size=50, callback=None):
        """Optimise the image from ``start`` (3, H, W) for ``iterations`` optimiser iterations;
        returns ``(image, history, iterations done, evaluations)``, the image clipped to [0, 1].

        L-BFGS (``lr`` 1, ``line_search`` ``"strong_wolfe"`` or None, ``history_size``) or Adam
        (``lr`` default 0.02 in pixel units). ``callback(iteration, image, evaluation)`` is called
        after every iteration with the current image (a view, not clipped) and its last
        evaluation. A non-finite objective stops the run and keeps the last good image.
        """
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"style transfer: optimizer must be one of {OPTIMIZERS}, got "
                              f"{optimizer!r}")
        dtype = self.network.dtype
        param = minicnn.Param(np.ascontiguousarray(start[None], dtype=dtype))
        history = []
        cache = {}

        def closure():
            # L-BFGS evaluates the point its line search accepted once more at the start of
            # each step(): the same array bit for bit, so the last result is reused.
            if "x" in cache and np.array_equal(cache["x"], param.data):
                param.grad = cache["grad"]
                return cache["total"]
            evaluation, grad = self.evaluate(param.data, targets)
            grad = minicnn.to_numpy(grad)   # the image and the optimiser stay on the host
            if not math.isfinite(evaluation.total) or not np.isfinite(grad).all():
                raise FloatingPointError("the objective is not finite")
            history.append(evaluation)
            cache.update(x=param.data.copy(), grad=grad, total=evaluation.total)
            param.grad = grad
            return evaluation.total

        if optimizer == "lbfgs":
            opt = optim.LBFGS([param], lr=1.0 if lr is None else lr, max_iter=1, max_eval=25,
                              history_size=history_size, line_search_fn=line_search,
                              tolerance_grad=0.0, tolerance_change=0.0)
        else:
            opt = optim.Adam([param], lr=0.02 if lr is None else lr)
        done, last_good = 0, param.data.copy()
        try:
            while done < iterations:
                if optimizer == "lbfgs":
                    opt.step(closure)      # one iteration (its line search included)
                    if np.array_equal(last_good, param.data):
                        break              # no descent direction left: converged
                else:
                    closure()
                    opt.step()
                done += 1
                last_good = param.data.copy()
                if callback is not None:
                    callback(done, param.data[0], history[-1])
        except FloatingPointError:
            param.data = last_good
        if optimizer == "adam" or not history or not np.array_equal(cache.get("x"), param.data):
            evaluation, _ = self.evaluate(param.data, targets)   # the final point's losses
            history.append(evaluation)
        image = np.clip(np.nan_to_num(param.data[0], nan=0.5), 0.0, 1.0).astype(np.float32)
        return image, history, done, len(history)

    def run(self, content, style, iterations=300, optimizer="lbfgs", init="content", seed=0,
            scales=1, lr=None, line_search="strong_wolfe", history_size=50, callback=None):
        """Style transfer of ``content`` (3, H, W) in the style of ``style`` (3, Hs, Ws), both
        float arrays in [0, 1]; returns a :class:`StyleResult`.

        ``scales`` > 1 runs coarse-to-fine: the images are first halved ``scales - 1`` times, each
        scale runs ``iterations`` and its result, upsampled, starts the next one (``init`` applies
        to the coarsest). ``callback(scale, iteration, image, evaluation)`` is called after every
        iteration (``scale`` counts from 0, the coarsest; ``image`` is not clipped).
        """
        content = _check_image(content, "content")
        style = _check_image(style, "style")
        least = self.network.min_side
        for what, image in (("content", content), ("style", style)):
            if min(image.shape[1:]) < least:
                raise ConfigError(f"style transfer: the {what} image is {image.shape[2]}x"
                                  f"{image.shape[1]}; {self.network.name} needs at least {least} "
                                  f"pixels a side")
        scales = int(scales)
        if scales < 1:
            raise ConfigError(f"style transfer: scales must be >= 1, got {scales}")
        began = time.perf_counter()
        result = StyleResult(image=None)
        image = None
        for level in range(scales - 1, -1, -1):
            factor = 2 ** level
            hw = self._scaled(content.shape[1:], factor)
            shw = self._scaled(style.shape[1:], factor)
            c = resize(content, hw) if factor > 1 else content
            s = resize(style, shw) if factor > 1 else style
            start = (self.initial_image(init, c, s, seed) if image is None
                     else np.clip(resize(image, hw), 0.0, 1.0))
            targets = self.targets(c, s, hw)
            scale_index = scales - 1 - level

            def report(it, img, evaluation, scale_index=scale_index):
                callback(scale_index, it, img, evaluation)

            image, history, done, evals = self.optimize(
                start, targets, iterations, optimizer, lr, line_search, history_size,
                report if callback is not None else None)
            result.sizes.append(hw)
            result.evaluations += evals
            result.history, result.iterations = history, done
        result.image = image
        result.seconds = time.perf_counter() - began
        return result


def _check_image(image, what):
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 3 or a.shape[0] != 3:
        raise ConfigError(f"style transfer: the {what} image must be (3, H, W) RGB, got shape "
                          f"{a.shape}")
    if not np.isfinite(a).all():
        raise ConfigError(f"style transfer: the {what} image has NaN or infinite pixels")
    return np.ascontiguousarray(np.clip(a, 0.0, 1.0))


def graph_cost(model, input_shapes):
    """``(elements, flops)``: the number of elements of every node's outputs and the FLOPs of one
    forward pass of a :class:`minicnn.Model` for these full input shapes."""
    shapes = {id(s): tuple(shape) for s, shape in zip(model.inputs, input_shapes, strict=True)}
    elements = flops = 0
    for node in model.nodes:
        ins = [shapes[id(s)] for s in node.inputs]
        outs = node.module.infer_shapes(ins)
        for s, shape in zip(node.outputs, outs, strict=True):
            shapes[id(s)] = tuple(shape)
            elements += math.prod(shape)
        flops += node.module.flops(ins, outs)
    return elements, flops
