"""Feature networks for style transfer, with layer names that mean the same on every backbone.

``convB_K`` is the *rectified* output of the K-th convolution of block B, where a block is the run
of convolutions between two poolings (block 1 at full resolution, block 5 at 1/16). That is Caffe's
naming, where the ReLU works in place so ``conv4_2`` is read after its ReLU, as Gatys et al. did.

* :func:`vgg19_features`: VGG-19 (Simonyan and Zisserman) from a user-supplied weights file in
  torchvision's layout (``features.0.weight`` ...; see the README for the conversion), ImageNet
  normalisation built in; blocks of 2, 2, 4, 4, 4 convolutions (``conv1_1`` ... ``conv5_4``).
* :func:`darknet_features`: Tiny Darknet through minicnn's Keras / TensorFlow.js importer
  (``model.json``); conv + batch norm + leaky ReLU, blocks of 1, 1, 4, 4, 5 convolutions; the
  classifier (the last 1x1 convolution to 1000 classes, which has no activation) is left out.
* :func:`random_features`: no weights file at all: a five-scale network with random (He-normal,
  seeded) 3x3 filters; see its docstring.

Every network takes RGB images in [0, 1] of any size (``Input((3, None, None))``), runs in eval
mode with every parameter frozen (only the image gets a gradient), and swaps its max pooling for
average pooling when ``pooling="avg"`` (Gatys et al.'s choice, the default).
"""

import os
from collections import OrderedDict
from pathlib import Path

import minicnn
import numpy as np
from minicnn import ConfigError, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Gatys et al.'s choices: content at conv4_2, style at conv1_1 ... conv5_1 with equal weights,
#: average pooling instead of max pooling.
GATYS = {"content_layer": "conv4_2",
         "style_layers": ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
         "style_weights": (0.2, 0.2, 0.2, 0.2, 0.2),
         "pooling": "avg"}

#: Per network name: the style weight beta (with alpha = 1) and the total-variation weight used
#: when none is given. Tiny Darknet's and the random network's were tuned by eye on the shared
#: photo and paintings at 256 pixels (the content loss is a sum over positions: at other sizes
#: beta scales with the pixel count). VGG-19's follows Gatys et al.'s alpha / beta = 1e-3 on
#: Caffe's 0-255 inputs, rescaled to torchvision's normalised inputs (activations about 58x
#: smaller: beta x 58^2); it could not be tried here (no VGG-19 weights on this machine).
DEFAULT_WEIGHTS = {
    "darknet": {"style_weight": 1e7, "tv_weight": 1.0},
    "random": {"style_weight": 1e6, "tv_weight": 30.0},
    "vgg19": {"style_weight": 3e6, "tv_weight": 0.0},
    "other": {"style_weight": 1e6, "tv_weight": 0.0},
}

VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG19_WIDTHS = (64, 128, 256, 512, 512)
RANDOM_WIDTHS = (32, 64, 128, 128, 128)
DARKNET_DIR = "weights/darknet-tiny-tfjs"


class FeatureNetwork:
    """A frozen feature network: ``model`` (one image input, RGB in [0, 1]) and ``taps``, the
    standard layer names (``"conv4_2"``) mapped to node names of ``model``.

    ``extractor(layers)`` is a :class:`minicnn.Model` sharing the layers whose outputs are the
    named taps, in order; ``node(layer)`` the tap's symbol, to build bigger graphs (the style
    transfer objective) on top.
    """

    def __init__(self, name, model, taps, description=""):
        self.name = name
        self.model = model.eval().freeze()
        self.taps = OrderedDict(taps)
        self.description = description

    @property
    def input(self):
        return self.model.inputs[0]

    @property
    def layer_names(self):
        return list(self.taps)

    @property
    def min_side(self):
        """The smallest image side the deepest layer takes: 2 ** (number of poolings)."""
        pools = sum(node.module.type_name.endswith("Pool2d") for node in self.model.nodes)
        return 2 ** pools

    def node(self, layer):
        if layer not in self.taps:
            raise ConfigError(f"{self.name}: no layer named {layer!r}; layers: "
                              f"{', '.join(self.taps)}")
        return self.model.node(self.taps[layer])

    def extractor(self, layers):
        return minicnn.Model(self.input, [self.node(layer) for layer in layers])

    def features(self, image, layers):
        """``{layer: activations}`` of a batch of images (N, 3, H, W) in [0, 1]."""
        outputs = self.extractor(layers)(np.asarray(image, dtype=self.dtype))
        if len(layers) == 1:
            outputs = [outputs]
        return dict(zip(layers, outputs, strict=True))

    @property
    def dtype(self):
        return self.model.dtype

    def to(self, device):
        self.model.to(device)
        return self

    def __repr__(self):
        return f"FeatureNetwork({self.name!r}, layers={self.layer_names})"


def _check_pooling(pooling):
    if pooling not in ("avg", "max"):
        raise ConfigError(f"feature network: pooling must be 'avg' or 'max', got {pooling!r}")


def _pool(pooling, kernel=2, stride=2):
    return nn.AvgPool2d(kernel, stride) if pooling == "avg" else nn.MaxPool2d(kernel, stride)


def _normalization(mean, std):
    """A frozen depthwise 1x1 convolution computing ``(x - mean) / std`` per channel."""
    layer = nn.Conv2d(3, 3, 1, groups=3)
    layer.weight.data[...] = (1.0 / np.asarray(std, np.float32)).reshape(3, 1, 1, 1)
    layer.bias.data[...] = -np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    return layer


# -- VGG-19 ---------------------------------------------------------------------------------------

def _vgg19_layers(pooling):
    """(torchvision index, node name, module) for VGG-19's ``features`` up to conv5_4's ReLU."""
    rows, index, channels = [], 0, 3
    for block, (count, width) in enumerate(zip(VGG19_BLOCKS, VGG19_WIDTHS, strict=True), 1):
        for k in range(1, count + 1):
            rows.append((index, f"conv{block}_{k}", nn.Conv2d(channels, width, 3, padding=1)))
            rows.append((index + 1, f"relu{block}_{k}", nn.ReLU()))
            index, channels = index + 2, width
        if block < len(VGG19_BLOCKS):
            rows.append((index, f"pool{block}", _pool(pooling)))
            index += 1
    return rows


def vgg19_features(weights=None, pooling="avg"):
    """VGG-19's convolutional part with torchvision's parameter names (``features.0.weight`` ...).

    :param weights: a safetensors (or minicnn model / weights) file holding at least the 16
        convolutions of torchvision's ``vgg19`` ``features``; None leaves torchvision's random
        initialisation (useful for tests only). Other keys (the classifier) are ignored.
    :param pooling: ``"avg"`` (Gatys et al.) or ``"max"`` (the trained network's own).
    """
    _check_pooling(pooling)
    rows = _vgg19_layers(pooling)
    holder = minicnn.Sequential(OrderedDict(features=minicnn.Sequential(
        OrderedDict((str(i), module) for i, _, module in rows))))
    if weights is not None:
        report = minicnn.io.load_weights(holder, weights, strict=False)
        if report.missing:
            raise ConfigError(f"vgg19_features: {weights} lacks {len(report.missing)} VGG-19 "
                              f"convolution weight(s), e.g. {report.missing[:4]} (expected "
                              f"torchvision's names; see the plugin README for the conversion)")
    x = minicnn.Input((3, None, None))
    h = _normalization(IMAGENET_MEAN, IMAGENET_STD)(x, name="normalize")
    taps = OrderedDict()
    for _, name, module in rows:
        h = module(h, name=name)
        if name.startswith("relu"):
            taps["conv" + name[4:]] = name
    return FeatureNetwork("vgg19", minicnn.Model(x, h), taps,
                          f"VGG-19 ({'weights ' + str(weights) if weights else 'random init'}, "
                          f"{pooling} pooling)")


# -- Tiny Darknet (or another chain of conv / batch norm / activation / pooling) -------------------

def find_shared_data(*parts):
    """``../shared/data/<parts>`` next to the current directory or a parent of this package, or
    the directory in ``$MINICNN_SHARED_DATA``; None if absent."""
    candidates = []
    if os.environ.get("MINICNN_SHARED_DATA"):
        candidates.append(Path(os.environ["MINICNN_SHARED_DATA"]))
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        candidates.append(base / "shared" / "data")
    for root in candidates:
        path = root.joinpath(*parts)
        if path.exists():
            return path
    return None


def default_darknet_path():
    """Tiny Darknet's ``model.json`` in the shared data directory, or None."""
    directory = find_shared_data(*DARKNET_DIR.split("/"))
    if directory is None or not (directory / "model.json").is_file():
        return None
    return directory / "model.json"


_ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU")


def chain_features(source, name, pooling="avg"):
    """A :class:`FeatureNetwork` from an imported chain-shaped model (conv, batch norm,
    activation, max pooling...): blocks are split at the poolings, ``convB_K`` is the activation
    that follows the K-th convolution of block B; the chain stops at the first global pooling,
    flatten or linear layer (a convolution without an activation, the classifier, gets no name)."""
    _check_pooling(pooling)
    source.eval()
    x = minicnn.Input((3, None, None))
    h, taps, block, k, pending = x, OrderedDict(), 1, 0, False
    for node in source.nodes:
        module = node.module
        kind = module.type_name
        if kind in ("GlobalAvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Linear"):
            break
        if len(node.inputs) != 1:
            raise ConfigError(f"{name}: node {node.name!r} has {len(node.inputs)} inputs; only "
                              f"chains are supported")
        if kind in ("MaxPool2d", "AvgPool2d"):
            if pooling == "avg" and kind == "MaxPool2d":
                module = nn.AvgPool2d(module.kernel_size, module.stride, module.padding,
                                      ceil_mode=module.ceil_mode, count_include_pad=False)
            block, k, pending = block + 1, 0, False
        elif kind == "Conv2d":
            k, pending = k + 1, True
        h = module(h, name=node.name)
        if kind in _ACTIVATIONS and pending:
            taps[f"conv{block}_{k}"] = node.name
            pending = False
    return FeatureNetwork(name, minicnn.Model(x, h), taps)


def darknet_features(model_json=None, pooling="avg"):
    """Tiny Darknet (an ImageNet classifier, RGB in [0, 1]) from its TF.js ``model.json``
    (default: ``../shared/data/weights/darknet-tiny-tfjs/model.json``)."""
    path = model_json or default_darknet_path()
    if path is None:
        raise FileNotFoundError("darknet_features: no model.json given and none found in "
                                f"../shared/data/{DARKNET_DIR} (set MINICNN_SHARED_DATA)")
    net = chain_features(minicnn.io.import_keras_tfjs(path), "darknet", pooling)
    net.description = f"Tiny Darknet ({path}, {pooling} pooling)"
    return net


# -- the random multi-scale network ---------------------------------------------------------------

def calibration_image(seed=0, size=256, discs=4000):
    """The fixed image the random network is normalised on: a "dead leaves" picture (Matheron;
    Lee, Mumford and Huang 2001): ``discs`` opaque discs of random colours dropped one over another
    on mid-grey, radii drawn with density ``1 / r^3`` between 1 and ``size / 4`` pixels, which has
    edges and the scale invariance of natural photographs (noise does not: calibrated on noise, the
    deeper layers responded 3 to 10 times more to the shared photo and paintings than to it).
    (1, 3, size, size) in [0, 1], from ``default_rng(seed)``."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (size, size), (128, 128, 128))
    draw = ImageDraw.Draw(picture)
    r_min, r_max = 1.0, size / 4
    u = rng.uniform(0, 1, discs)      # inverse CDF of p(r) ~ r^-3 on [r_min, r_max]
    radii = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5
    centres = rng.uniform(-r_max, size + r_max, (discs, 2))
    colours = rng.integers(0, 256, (discs, 3))
    for r, (cx, cy), colour in zip(radii, centres, colours, strict=True):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in colour))
    return (np.asarray(picture, np.float32).transpose(2, 0, 1) / 255)[None]


def random_features(seed=0, widths=RANDOM_WIDTHS, pooling="avg"):
    """A feature network that needs no weights file: five scales of random 3x3 filters.

    Block ``B`` (B = 1 ... 5) works at 1/2^(B-1) of the image's resolution: a 3x3 convolution
    (padding 1) with ``widths[B-1]`` filters and a ReLU, then a 2x2 pooling; block 4 has a second
    convolution (``conv4_2``, the content layer of the Gatys preset). The input is first centred
    and scaled with the ImageNet mean and standard deviation. Weights are drawn from a normal
    distribution with standard deviation ``sqrt(2 / fan_in)`` (He et al.), biases 0, from
    ``numpy.random.default_rng(seed)``; then, layer by layer, each filter is scaled so that its mean
    activation on :func:`calibration_image` is 1 (Gatys et al. normalised VGG-19 the same way on
    ImageNet; without it the activations, and so the style losses, shrink with depth and only
    conv1_1 would count). The same seed gives the same network on every machine. Random filters of
    growing receptive field (3, 8, 18, 38 and 94 pixels for conv1_1 ... conv5_1, 54 for conv4_2)
    still capture texture statistics through their Gram matrices (Ustyuzhaninov et al. 2017, "What
    does it take to generate natural textures?"; He, Wang and Hopcroft 2016).
    """
    _check_pooling(pooling)
    widths = tuple(int(w) for w in widths)
    if len(widths) != 5 or min(widths) < 1:
        raise ConfigError(f"random_features: widths must be five positive ints, got {widths}")
    rng = np.random.default_rng(seed)
    x = minicnn.Input((3, None, None))
    normalize = _normalization(IMAGENET_MEAN, IMAGENET_STD)
    h = normalize(x, name="normalize")
    a = normalize(calibration_image(seed))          # the calibration image's activations
    taps, channels = OrderedDict(), 3
    for block, width in enumerate(widths, 1):
        for k in range(1, 3 if block == 4 else 2):
            conv = nn.Conv2d(channels, width, 3, padding=1)
            w = rng.standard_normal((width, channels, 3, 3)) * np.sqrt(2.0 / (channels * 9))
            conv.weight.data[...] = w.astype(np.float32)
            conv.bias.data[...] = 0.0
            relu = nn.ReLU()
            mean = relu(conv(a)).mean(axis=(0, 2, 3))
            # ReLU(s z) = s ReLU(z) for s > 0: rescaling a filter rescales its activations
            scale = np.where(mean > 1e-6, 1.0 / np.maximum(mean, 1e-6), 1.0)
            conv.weight.data *= scale.astype(np.float32)[:, None, None, None]
            a = relu(conv(a))
            h = relu(conv(h, name=f"conv{block}_{k}"), name=f"relu{block}_{k}")
            taps[f"conv{block}_{k}"] = f"relu{block}_{k}"
            channels = width
        if block < 5:
            pool = _pool(pooling)
            a = pool(a)
            h = pool(h, name=f"pool{block}")
    return FeatureNetwork("random", minicnn.Model(x, h), taps,
                          f"random multi-scale network (seed {seed}, widths {widths})")


NETWORKS = ("vgg19", "darknet", "random")


def feature_network(name, weights=None, pooling="avg", seed=0):
    """One of :data:`NETWORKS` by name: ``"vgg19"`` (``weights``: a safetensors file),
    ``"darknet"`` (``weights``: a TF.js ``model.json``, default the shared Tiny Darknet) or
    ``"random"`` (``seed``)."""
    if name == "vgg19":
        if weights is None:
            raise ConfigError("vgg19 needs a weights file (torchvision's VGG-19 converted to "
                              "safetensors; see the README)")
        return vgg19_features(weights, pooling)
    if name == "darknet":
        return darknet_features(weights, pooling)
    if name == "random":
        return random_features(seed, pooling=pooling)
    raise ConfigError(f"unknown feature network {name!r}; known: {', '.join(NETWORKS)}")
