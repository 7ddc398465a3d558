"""Style transfer: PyTorch's tutorial "Neural Transfer Using PyTorch" against this plugin, side by
side, with the same VGG-19 weights, layers, losses, images and L-BFGS budget, on one device.

PyTorch side: a transcription of the official tutorial (Alexis Jacq, edited by Winston Herring;
``advanced_source/neural_style_tutorial.py`` of pytorch/tutorials): VGG-19 ``features`` (built here
with plain ``torch.nn`` in torchvision's layout, so torchvision and its weight download are not
needed), ImageNet normalisation, content loss at ``conv_4``, style losses at ``conv_1`` ...
``conv_5`` (each right after its convolution, before the ReLU), Gram matrices divided by
``a*b*c*d``, MSE losses, style weight 1e6, content weight 1, the input image a clone of the content
image, ``optim.LBFGS([input_img])`` with the closure that clamps the image to [0, 1], and
``num_steps=300`` counted as closure evaluations as the tutorial counts them (its
``while run[0] <= num_steps`` loop of 20-iteration ``step()`` calls makes 320).

minicnn side: the plugin's public API (:func:`vgg19_features`, :class:`FeatureNetwork`,
:class:`StyleTransfer`) with the torch weights copied in, the tutorial's layers mapped to the
plugin's nodes, ``norm="mean"`` and a content weight that turn the plugin's losses into the
tutorial's, and the plugin's L-BFGS with the tutorial's settings and as many iterations as the
tutorial made; what still differs is printed (``DIFFERENCES``).

Both sides are timed without their one-time costs (model building, target computation, CUDA /
cuDNN initialisation, Numba compilation: timed separately); both final images are also scored by
one common evaluator (the tutorial's own loss modules), so the losses compare like for like.

On the GPU machine (no network: random seeded weights unless a converted file is given)::

    python plugins/style_transfer/examples/compare_torch_tutorial.py --device cuda \\
        --size 256 --iterations 300 --out /tmp/style_compare [--weights vgg19.safetensors]

On the CPU: ``NUMBA_NUM_THREADS=2 python .../compare_torch_tutorial.py --size 128
--iterations 50``. ``--weights`` takes torchvision's VGG-19 state dict as safetensors (the
plugin README's conversion: keys ``features.N.weight`` / ``features.N.bias``) or as a ``.pth``
file (torchvision's ``vgg19-dcbb9e9d.pth``).
"""

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.insert(0, str(PLUGIN_ROOT))

import minicnn  # noqa: E402

from minicnn_style_transfer import (  # noqa: E402
    FeatureNetwork,
    StyleTransfer,
    calibration_image,
    save_rgb,
    vgg19_features,
)
from minicnn_style_transfer.networks import (  # noqa: E402
    VGG19_BLOCKS,
    find_shared_data,
)

#: torchvision's ``cfg["E"]`` (VGG-19): output channels of each 3x3 convolution, "M" a max pooling.
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
             512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]

#: The tutorial's k-th convolution (its ``conv_k``, read before the ReLU) and the node of the
#: plugin's VGG-19 that holds the same convolution's output (also before its ReLU; the plugin's
#: own standard names ``conv1_1`` ... are the *rectified* outputs, read from ``relu1_1`` ...).
TUTORIAL_TO_PLUGIN = {}
_k = 0
for _block, _count in enumerate(VGG19_BLOCKS, 1):
    for _j in range(1, _count + 1):
        _k += 1
        TUTORIAL_TO_PLUGIN[f"conv_{_k}"] = f"conv{_block}_{_j}"
del _k, _block, _count, _j

DEFAULT_CONTENT = "amber.jpg"
DEFAULT_STYLE = "mosaic.jpg"

DIFFERENCES = [
    "L-BFGS driver: the tutorial calls torch.optim.LBFGS.step(closure) (max_iter=20, max_eval=25, "
    "tolerance_grad=1e-7, tolerance_change=1e-9) while its closure counter is <= num_steps; "
    "StyleTransfer.optimize runs minicnn.optim.LBFGS (PyTorch's algorithm) one iteration per "
    "step() with both tolerances 0. With the same lr 1, history 100 and no line search both give "
    "the same sequence of iterates unless a tolerance ends torch's run early; minicnn runs as many "
    "iterations as torch made updates.",
    "clamp: the tutorial clamps the image to [0, 1] in place at the start of every closure; the "
    "plugin optimises the unclamped image and clips it at the end. Here the clamp is applied "
    "through StyleTransfer.optimize's callback after every iteration (before the next "
    "evaluation), which gives the tutorial's sequence (--no-clamp: the plugin as it is).",
    "evaluations: StyleTransfer.optimize evaluates the final image once more (for its end "
    "losses), so minicnn makes N + 1 evaluations for N updates; the tutorial never evaluates "
    "its last update (N evaluations). Times per evaluation are given as well.",
    "content loss: the plugin's ContentLoss is 1/2 sum((a - t)^2) (StyleTransfer uses reduction "
    "'sum'), so content_weight = 2 / numel(conv_4) reproduces the tutorial's MSE x 1; style "
    "loss: norm='mean' (mean over the Gram entries of ((G - T) / (C M))^2) with style_weight "
    "1e6 and layer weights 1 is the tutorial's mse_loss(G / (a b c d), T / (a b c d)) x 1e6 for "
    "a batch of one. Equal up to float32 rounding (the plugin adds its losses in float64).",
    "normalisation: tutorial (img - mean) / std; plugin a frozen depthwise 1x1 convolution "
    "img * (1 / std) + (-mean / std): the same up to rounding.",
    "images: both sides get the same arrays (centre square crop, Pillow bilinear resize to "
    "--size); the tutorial's torchvision transforms (Resize, ToTensor) are not used.",
    "torch details: Normalization copies mean/std with clone().detach() instead of "
    "torch.tensor(tensor) (same values, no copy-construct warning); the losses' print every 50 "
    "evaluations is kept; on cuda TF32 is off for cuDNN and matmul (fair float32); on the CPU "
    "torch gets as many threads as Numba.",
]


# ------------------------------------------------------------------------------------------------
# images


def _square(path, size):
    """A file as (3, size, size) float32 RGB in [0, 1]: centre square crop, bilinear resize."""
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        im = im.crop(box).resize((size, size), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0)


def generated_images(size, seed=0):
    """Content and style when no files are given and ``../shared/data/images`` is absent: a "dead
    leaves" picture (the plugin's calibration image) and a painting-like pattern of coloured
    sinusoidal stripes and blobs."""
    content = calibration_image(seed + 1, size=size, discs=max(200, size * 8))[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.default_rng(seed + 2)
    planes = []
    for _ in range(3):
        f = rng.uniform(3, 9, 2)
        p = rng.uniform(0, 2 * np.pi, 2)
        planes.append(0.5 + 0.25 * np.sin(2 * np.pi * f[0] * (xx + 0.3 * yy) + p[0])
                      + 0.25 * np.sin(2 * np.pi * f[1] * (yy - 0.2 * xx * xx) + p[1]))
    style = np.clip(np.stack(planes), 0, 1).astype(np.float32)
    return np.ascontiguousarray(content, np.float32), np.ascontiguousarray(style)


def load_images(args):
    """(content, style, description) from --content / --style, else the shared photo and
    painting, else generated images."""
    content_path, style_path = args.content, args.style
    if content_path is None or style_path is None:
        shared = find_shared_data("images")
        if shared is not None and (shared / DEFAULT_CONTENT).is_file() \
                and (shared / DEFAULT_STYLE).is_file():
            content_path = content_path or str(shared / DEFAULT_CONTENT)
            style_path = style_path or str(shared / DEFAULT_STYLE)
    if content_path is None or style_path is None or "generated" in (content_path, style_path):
        content, style = generated_images(args.size, args.seed)
        return content, style, "generated (dead leaves / stripes)"
    return (_square(content_path, args.size), _square(style_path, args.size),
            f"{content_path} / {style_path}")


# ------------------------------------------------------------------------------------------------
# VGG-19 in plain torch.nn (torchvision's ``vgg19().features``, indices 0 ... 36)


def torch_vgg19_features(weights=None, seed=0):
    """``torchvision.models.vgg19().features`` rebuilt with ``torch.nn``: random weights as
    torchvision initialises them (Kaiming normal, fan_out, biases 0) from
    ``torch.manual_seed(seed)``, or ``weights``: torchvision's state dict as safetensors or
    ``.pth`` (``features.N.*`` keys; a classifier is ignored)."""
    import torch
    from torch import nn
    layers, channels = [], 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    features = nn.Sequential(*layers)
    if weights is None:
        torch.manual_seed(seed)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
        return features.eval()
    path = Path(weights)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = {k: v for k, v in own.items() if k.split(".")[0].isdigit()}
    features.load_state_dict(own, strict=True)
    return features.eval()


# ------------------------------------------------------------------------------------------------
# The tutorial, transcribed (device passed in instead of a global; lines marked [compare] are
# this script's instrumentation).

def make_tutorial(torch, nn, F, optim, device):
    """The tutorial's definitions, bound to ``device``; a namespace of them."""

    class ContentLoss(nn.Module):

        def __init__(self, target,):
            super().__init__()
            # we 'detach' the target content from the tree used
            # to dynamically compute the gradient: this is a stated value,
            # not a variable. Otherwise the forward method of the criterion
            # will throw an error.
            self.target = target.detach()

        def forward(self, input):
            self.loss = F.mse_loss(input, self.target)
            return input

    def gram_matrix(input):
        a, b, c, d = input.size()  # a=batch size(=1)
        # b=number of feature maps
        # (c,d)=dimensions of a f. map (N=c*d)

        features = input.view(a * b, c * d)  # resize F_XL into \hat F_XL

        G = torch.mm(features, features.t())  # compute the gram product

        # we 'normalize' the values of the gram matrix
        # by dividing by the number of element in each feature maps.
        return G.div(a * b * c * d)

    class StyleLoss(nn.Module):

        def __init__(self, target_feature):
            super().__init__()
            self.target = gram_matrix(target_feature).detach()

        def forward(self, input):
            G = gram_matrix(input)
            self.loss = F.mse_loss(G, self.target)
            return input

    class Normalization(nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            # .view the mean and std to make them [C x 1 x 1] so that they can
            # directly work with image Tensor of shape [B x C x H x W].
            # B is batch size. C is number of channels. H is height and W is width.
            self.mean = mean.clone().detach().view(-1, 1, 1)   # [compare] torch.tensor(mean)
            self.std = std.clone().detach().view(-1, 1, 1)

        def forward(self, img):
            # normalize img
            return (img - self.mean) / self.std

    # desired depth layers to compute style/content losses :
    content_layers_default = ['conv_4']
    style_layers_default = ['conv_1', 'conv_2', 'conv_3', 'conv_4', 'conv_5']

    def get_style_model_and_losses(cnn, normalization_mean, normalization_std,
                                   style_img, content_img,
                                   content_layers=content_layers_default,
                                   style_layers=style_layers_default):
        cnn = copy.deepcopy(cnn)

        # normalization module
        normalization = Normalization(normalization_mean, normalization_std).to(device)

        # just in order to have an iterable access to or list of content/style
        # losses
        content_losses = []
        style_losses = []

        # assuming that ``cnn`` is a ``nn.Sequential``, so we make a new ``nn.Sequential``
        # to put in modules that are supposed to be activated sequentially
        model = nn.Sequential(normalization)

        i = 0  # increment every time we see a conv
        for layer in cnn.children():
            if isinstance(layer, nn.Conv2d):
                i += 1
                name = f'conv_{i}'
            elif isinstance(layer, nn.ReLU):
                name = f'relu_{i}'
                # The in-place version doesn't play very nicely with the ``ContentLoss``
                # and ``StyleLoss`` we insert below. So we replace with out-of-place
                # ones here.
                layer = nn.ReLU(inplace=False)
            elif isinstance(layer, nn.MaxPool2d):
                name = f'pool_{i}'
            elif isinstance(layer, nn.BatchNorm2d):
                name = f'bn_{i}'
            else:
                raise RuntimeError(f'Unrecognized layer: {layer.__class__.__name__}')

            model.add_module(name, layer)

            if name in content_layers:
                # add content loss:
                target = model(content_img).detach()
                content_loss = ContentLoss(target)
                model.add_module(f"content_loss_{i}", content_loss)
                content_losses.append(content_loss)

            if name in style_layers:
                # add style loss:
                target_feature = model(style_img).detach()
                style_loss = StyleLoss(target_feature)
                model.add_module(f"style_loss_{i}", style_loss)
                style_losses.append(style_loss)

        # now we trim off the layers after the last content and style losses
        for i in range(len(model) - 1, -1, -1):
            if isinstance(model[i], ContentLoss) or isinstance(model[i], StyleLoss):
                break

        model = model[:(i + 1)]

        return model, style_losses, content_losses

    def get_input_optimizer(input_img):
        # this line to show that input is a parameter that requires a gradient
        optimizer = optim.LBFGS([input_img])
        return optimizer

    def run_style_transfer(cnn, normalization_mean, normalization_std,
                           content_img, style_img, input_img, num_steps=300,
                           style_weight=1000000, content_weight=1, clock=None):
        """Run the style transfer."""
        clock = clock if clock is not None else Clock(torch, device)      # [compare]
        clock.start("setup")                                              # [compare]
        print('Building the style transfer model..')
        model, style_losses, content_losses = get_style_model_and_losses(cnn,
            normalization_mean, normalization_std, style_img, content_img)

        # We want to optimize the input and not the model parameters so we
        # update all the requires_grad fields accordingly
        input_img.requires_grad_(True)
        # We also put the model in evaluation mode, so that specific layers
        # such as dropout or batch normalization layers behave correctly.
        model.eval()
        model.requires_grad_(False)

        optimizer = get_input_optimizer(input_img)
        clock.stop("setup")                                               # [compare]

        print('Optimizing..')
        clock.start("optimise")                                           # [compare]
        run = [0]
        while run[0] <= num_steps:

            def closure():
                # correct the values of updated input image
                with torch.no_grad():
                    input_img.clamp_(0, 1)

                optimizer.zero_grad()
                model(input_img)
                style_score = 0
                content_score = 0

                for sl in style_losses:
                    style_score += sl.loss
                for cl in content_losses:
                    content_score += cl.loss

                style_score *= style_weight
                content_score *= content_weight

                loss = style_score + content_score
                loss.backward()

                run[0] += 1
                clock.trace.append((style_score.detach(), content_score.detach()))  # [compare]
                if run[0] % 50 == 0:
                    print(f"run {run}:")
                    print(f'Style Loss : {style_score.item():4f} '
                          f'Content Loss: {content_score.item():4f}')
                    print()

                return style_score + content_score

            optimizer.step(closure)

        # a last correction...
        with torch.no_grad():
            input_img.clamp_(0, 1)
        clock.stop("optimise")                                            # [compare]
        clock.evaluations = run[0]                                        # [compare]
        clock.updates = int(optimizer.state[input_img].get("n_iter", 0))  # [compare]
        return input_img

    return argparse.Namespace(ContentLoss=ContentLoss, StyleLoss=StyleLoss,
                              gram_matrix=gram_matrix, Normalization=Normalization,
                              get_style_model_and_losses=get_style_model_and_losses,
                              get_input_optimizer=get_input_optimizer,
                              run_style_transfer=run_style_transfer)


class Clock:
    """Named wall-clock intervals; on cuda the device is synchronised before each reading."""

    def __init__(self, torch=None, device="cpu"):
        self.torch, self.device = torch, str(device)
        self.seconds, self._began = {}, {}
        self.trace = []         # (style, content) per evaluation, as tensors (no sync)
        self.evaluations = self.updates = 0

    def _sync(self):
        if self.device.startswith("cuda"):
            if self.torch is not None:
                self.torch.cuda.synchronize()
            else:
                from numba import cuda
                cuda.synchronize()

    def start(self, name):
        self._sync()
        self._began[name] = time.perf_counter()

    def stop(self, name):
        self._sync()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self._began[name]


def tutorial_updates(num_steps, max_iter=20):
    """The tutorial's number of L-BFGS updates (and closure evaluations) for ``num_steps`` when no
    tolerance stops it early: whole ``step()`` calls of ``max_iter`` until the counter passes
    ``num_steps``."""
    return math.ceil((num_steps + 1) / max_iter) * max_iter


# ------------------------------------------------------------------------------------------------
# the two sides


def run_torch(args, torch, tut, cnn, content, style, device):
    """The tutorial's run; returns (result dict, final image (3, H, W))."""
    mean = torch.tensor([0.485, 0.456, 0.406]).to(device)
    std = torch.tensor([0.229, 0.224, 0.225]).to(device)
    content_img = torch.from_numpy(content[None]).to(device, torch.float)
    style_img = torch.from_numpy(style[None]).to(device, torch.float)

    # one-time costs outside the tutorial: CUDA context, cuDNN handles, allocator warm-up
    warm = Clock(torch, device)
    warm.start("warm-up")
    model, style_losses, content_losses = tut.get_style_model_and_losses(
        cnn, mean, std, style_img, content_img)
    model.requires_grad_(False)
    for _ in range(args.warmup):
        x = content_img.clone().requires_grad_(True)
        model(x)
        (sum(sl.loss for sl in style_losses) + sum(cl.loss for cl in content_losses)).backward()
    warm.stop("warm-up")
    del model, style_losses, content_losses

    input_img = content_img.clone()
    clock = Clock(torch, device)
    output = tut.run_style_transfer(cnn, mean, std, content_img, style_img, input_img,
                                    num_steps=args.iterations, clock=clock)
    image = output.detach().cpu().numpy()[0]
    trace = [(float(s), float(c)) for s, c in clock.trace]
    style0, content0 = trace[0]
    own_end = torch_evaluator(torch, tut, cnn, mean, std, content_img, style_img, device)(image)
    return {"framework": "torch (tutorial)", "device": args.device,
            "warmup_s": warm.seconds["warm-up"], "setup_s": clock.seconds["setup"],
            "optimise_s": clock.seconds["optimise"], "evaluations": clock.evaluations,
            "updates": clock.updates, "style_start": style0, "content_start": content0,
            "style_end": own_end[0], "content_end": own_end[1],
            "threads": torch.get_num_threads(), "trace": trace}, image


def torch_evaluator(torch, tut, cnn, mean, std, content_img, style_img, device,
                    style_weight=1e6, content_weight=1.0):
    """``f(image (3, H, W)) -> (style score, content score)``: the tutorial's weighted losses."""
    model, style_losses, content_losses = tut.get_style_model_and_losses(
        cnn, mean, std, style_img, content_img)
    model.eval().requires_grad_(False)

    def evaluate(image):
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(image[None], np.float32)).to(device))
            return (float(sum(sl.loss for sl in style_losses)) * style_weight,
                    float(sum(cl.loss for cl in content_losses)) * content_weight)

    return evaluate


def minicnn_network(cnn):
    """The plugin's VGG-19 (max pooling, as the tutorial's) with ``cnn``'s weights copied in, as a
    :class:`FeatureNetwork` whose layer names are the tutorial's (``conv_k`` = the k-th
    convolution's output before its ReLU)."""
    from torch import nn
    net = vgg19_features(None, pooling="max")
    convs = [m for m in cnn.children() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(TUTORIAL_TO_PLUGIN):
        raise SystemExit(f"compare: expected 16 convolutions, found {len(convs)}")
    for conv, node in zip(convs, TUTORIAL_TO_PLUGIN.values(), strict=True):
        layer = net.model[node]
        w = conv.weight.detach().cpu().numpy()
        b = conv.bias.detach().cpu().numpy()
        if layer.weight.data.shape != w.shape:
            raise SystemExit(f"compare: {node} has shape {layer.weight.data.shape}, torch "
                             f"{w.shape}")
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    return FeatureNetwork("vgg19", net.model, TUTORIAL_TO_PLUGIN,
                          "VGG-19 (torch weights copied, max pooling, tutorial layer names)")


def run_minicnn(args, network, content, style, iterations, clamp=True):
    """The plugin's run; returns (result dict, final image, transfer, targets)."""
    setup = Clock(None, args.device)
    setup.start("setup")
    if args.device != "cpu":
        network.to(args.device)
    positions = network.extractor(["conv_4"]).infer_shapes([(1, 3) + content.shape[1:]])[0]
    numel = int(np.prod(positions))
    transfer = StyleTransfer(network, content_layer="conv_4",
                             style_layers=["conv_1", "conv_2", "conv_3", "conv_4", "conv_5"],
                             style_weights=[1.0] * 5, content_weight=2.0 / numel,
                             style_weight=1e6, tv_weight=0.0, norm="mean")
    targets = transfer.targets(content, style, content.shape[1:])
    setup.stop("setup")
    print(f"minicnn: network on {args.device}, objective built, targets computed in "
          f"{setup.seconds['setup']:.2f} s; warming up ({args.warmup} iterations)...", flush=True)

    def project(iteration, image, evaluation):
        np.clip(image, 0.0, 1.0, out=image)     # the tutorial's clamp, before the next closure

    callback = project if clamp else None
    options = dict(optimizer="lbfgs", lr=1.0, line_search=None, history_size=100,
                   callback=callback)
    # one-time costs: Numba compilation (or its cache), device buffers, the optimiser's kernels
    setup.start("warm-up")
    if args.warmup:
        transfer.optimize(content.copy(), targets, args.warmup, **options)
    setup.stop("warm-up")
    print(f"minicnn: warm-up {setup.seconds['warm-up']:.2f} s; optimising ({iterations} "
          f"iterations)...", flush=True)

    clock = Clock(None, args.device)
    clock.start("optimise")
    image, history, done, evaluations = transfer.optimize(content.copy(), targets, iterations,
                                                          **options)
    clock.stop("optimise")
    alpha, beta = transfer.content_weight, transfer.style_weight
    import numba
    return {"framework": "minicnn", "device": args.device, "warmup_s": setup.seconds["warm-up"],
            "setup_s": setup.seconds["setup"], "optimise_s": clock.seconds["optimise"],
            "evaluations": evaluations, "updates": done,
            "style_start": beta * history[0].style, "content_start": alpha * history[0].content,
            "style_end": beta * history[-1].style, "content_end": alpha * history[-1].content,
            "threads": numba.get_num_threads(),
            "trace": [(beta * e.style, alpha * e.content) for e in history]}, \
        image, transfer, targets


# ------------------------------------------------------------------------------------------------
# report


def _table(rows):
    head = ["framework", "device", "threads", "warm-up s", "setup s", "optimise s",
            "evals", "updates", "ms/eval", "style start -> end", "content start -> end",
            "common: style", "common: content"]
    lines = [head]
    for r in rows:
        lines.append([r["framework"], r["device"], str(r["threads"]), f"{r['warmup_s']:.2f}",
                      f"{r['setup_s']:.2f}", f"{r['optimise_s']:.2f}", str(r["evaluations"]),
                      str(r["updates"]), f"{1e3 * r['optimise_s'] / max(r['evaluations'], 1):.1f}",
                      f"{r['style_start']:.4g} -> {r['style_end']:.4g}",
                      f"{r['content_start']:.4g} -> {r['content_end']:.4g}",
                      f"{r['common_style']:.4g}", f"{r['common_content']:.4g}"])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = []
    for n, row in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def _relative(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", help="content image (default ../shared/data/images/"
                        f"{DEFAULT_CONTENT} if present, else generated; 'generated' forces it)")
    parser.add_argument("--style", help=f"style image (default {DEFAULT_STYLE}, as --content)")
    parser.add_argument("--size", type=int, default=256, help="square side in pixels (256)")
    parser.add_argument("--iterations", type=int, default=300,
                        help="the tutorial's num_steps (300; it makes 320 evaluations)")
    parser.add_argument("--minicnn-iterations", type=int, default=None,
                        help="minicnn's L-BFGS iterations (default: as many as torch's updates)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--weights", help="torchvision's VGG-19 as .safetensors or .pth "
                        "(default: random, seeded)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (0)")
    parser.add_argument("--threads", type=int, default=None,
                        help="Numba and torch CPU threads (default: Numba's, torch the same)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed warm-up: torch forward+backward passes, minicnn L-BFGS "
                        "iterations (2; 0: none, then compilation lands in the timed run)")
    parser.add_argument("--no-clamp", action="store_true",
                        help="minicnn without the tutorial's per-evaluation clamp")
    parser.add_argument("--skip-torch", action="store_true", help="time minicnn only")
    parser.add_argument("--skip-minicnn", action="store_true", help="time torch only")
    parser.add_argument("--out", help="directory for torch.png, minicnn.png and compare.json")
    args = parser.parse_args(argv)
    if args.size < 16:
        raise SystemExit("compare: --size must be at least 16 (four poolings)")

    try:
        import torch
        import torch.nn.functional as F
        from torch import nn, optim
    except ImportError:
        raise SystemExit("compare: needs torch (the weights and the common evaluator come from "
                         "it, even with --skip-torch)") from None
    import numba
    if args.threads:
        numba.set_num_threads(args.threads)
    torch.set_num_threads(numba.get_num_threads())
    if args.device == "cuda" and torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = False        # fair float32 on both sides
        torch.backends.cuda.matmul.allow_tf32 = False
        torch_device = torch.device("cuda")
    elif args.device == "cuda" and not args.skip_torch:
        raise SystemExit("compare: --device cuda but torch sees no GPU (--skip-torch times "
                         "minicnn alone; torch then only scores the result, on the CPU)")
    else:
        torch_device = torch.device("cpu")

    if args.device == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        # numba's CUDA simulator runs every GPU thread as a Python thread: few and small blocks
        # (grid-stride loops do the rest), as minicnn's own simulator tests do
        from minicnn import cuda_device
        cuda_device.set_launch(threads_per_block=8, max_blocks=4)
        sys.setswitchinterval(5e-5)
        print("numba CUDA simulator: launches of at most 4 blocks of 8 threads")
    content, style, where = load_images(args)
    cnn = torch_vgg19_features(args.weights, args.seed).to(torch_device)
    tut = make_tutorial(torch, nn, F, optim, torch_device)
    print(f"images: {where}, {args.size}x{args.size}; VGG-19 weights: "
          f"{args.weights or f'random (torchvision init, seed {args.seed})'}; device "
          f"{args.device}; threads numba {numba.get_num_threads()}, torch "
          f"{torch.get_num_threads()}")
    print("layers (tutorial -> plugin node, both before the ReLU): content conv_4 -> "
          f"{TUTORIAL_TO_PLUGIN['conv_4']}; style " + ", ".join(
              f"conv_{k} -> {TUTORIAL_TO_PLUGIN[f'conv_{k}']}" for k in range(1, 6)))
    print("pooling: max (VGG-19's own, as the tutorial); style weight 1e6, content weight 1")

    rows, images = [], {}
    if not args.skip_torch:
        row, images["torch"] = run_torch(args, torch, tut, cnn, content, style, torch_device)
        rows.append(row)
    if not args.skip_minicnn:
        iterations = args.minicnn_iterations
        if iterations is None:
            iterations = rows[0]["updates"] if rows else tutorial_updates(args.iterations)
        network = minicnn_network(cnn)
        # the copied weights: minicnn's conv_5 on the content image against torch's
        mean = torch.tensor([0.485, 0.456, 0.406]).to(torch_device)
        std = torch.tensor([0.229, 0.224, 0.225]).to(torch_device)
        with torch.no_grad():
            ref = cnn[:11](tut.Normalization(mean, std)(
                torch.from_numpy(content[None]).to(torch_device))).cpu().numpy()
        mine = minicnn.to_numpy(network.features(content[None], ["conv_5"])["conv_5"])
        weight_check = float(np.abs(mine - ref).max() / max(np.abs(ref).max(), 1e-30))
        print(f"weights check: conv_5 (conv3_1, before ReLU) on the content image, max |minicnn - "
              f"torch| / max |torch| = {weight_check:.2e}")
        row, images["minicnn"], _, _ = run_minicnn(args, network, content, style, iterations,
                                                   clamp=not args.no_clamp)
        row["weight_check"] = weight_check
        rows.append(row)

    # one common evaluator: the tutorial's loss modules on every final image (and the start)
    content_img = torch.from_numpy(content[None]).to(torch_device)
    style_img = torch.from_numpy(style[None]).to(torch_device)
    mean = torch.tensor([0.485, 0.456, 0.406]).to(torch_device)
    std = torch.tensor([0.229, 0.224, 0.225]).to(torch_device)
    evaluate = torch_evaluator(torch, tut, cnn, mean, std, content_img, style_img, torch_device)
    start = evaluate(content)
    for row in rows:
        row["common_style"], row["common_content"] = evaluate(images[row["framework"].split()[0]])

    print()
    print("differences from the tutorial:")
    for text in DIFFERENCES:
        print(f"  * {text}")
    print()
    print(f"common evaluator (the tutorial's losses, {torch_device}): start image (the content) "
          f"style {start[0]:.4g}, content {start[1]:.4g}")
    for row in rows:
        print(f"  {row['framework']}: own start objective vs common: style rel. diff "
              f"{_relative(row['style_start'], start[0]):.1e}")
    print()
    print(_table(rows))
    summary = {}
    if len(rows) == 2:
        t, m = rows
        summary = {"ratio_time": m["optimise_s"] / t["optimise_s"],
                   "ratio_time_per_eval": (m["optimise_s"] / m["evaluations"])
                   / (t["optimise_s"] / t["evaluations"]),
                   "ratio_common_style": m["common_style"] / max(t["common_style"], 1e-300)}
        print(f"\nminicnn / torch: optimisation time {summary['ratio_time']:.3f}x, per evaluation "
              f"{summary['ratio_time_per_eval']:.3f}x; final style loss (common evaluator) "
              f"{summary['ratio_common_style']:.3f}x")
        summary["agree"] = {}
        n = min(len(t["trace"]), len(m["trace"]))
        for tol in (1e-4, 1e-3, 1e-2):
            k = next((i for i in range(n)
                      if _relative(t["trace"][i][0], m["trace"][i][0]) > tol), n)
            summary["agree"][str(tol)] = k
        print("trajectories (style loss per evaluation, torch vs minicnn): within "
              + ", ".join(f"{tol} for the first {k}" for tol, k in summary["agree"].items())
              + f" of {n} evaluations (float32 rounding differs, so L-BFGS paths part slowly)")

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            save_rgb(image, out / f"{name}.png")
        record = {"args": vars(args), "images": where, "layers": TUTORIAL_TO_PLUGIN,
                  "common_start": {"style": start[0], "content": start[1]},
                  "rows": rows, "summary": summary, "differences": DIFFERENCES,
                  "versions": {"torch": torch.__version__, "numba": numba.__version__,
                               "numpy": np.__version__},
                  "env": {k: os.environ[k] for k in ("NUMBA_NUM_THREADS", "NUMBA_ENABLE_CUDASIM")
                          if k in os.environ}}
        (out / "compare.json").write_text(json.dumps(record, indent=1, default=str))
        print(f"wrote {', '.join(f'{n}.png' for n in images)} and compare.json in {out}")
    return {"rows": rows, "summary": summary, "common_start": start}


if __name__ == "__main__":
    main()
