"""Densely connected networks (Huang, Liu, van der Maaten, Weinberger 2017, "Densely connected
convolutional networks"): DenseNet-121 in torchvision's layout and DenseNet-BC for CIFAR.

Inside a dense block every layer sees the concatenation of the block's input and all earlier
layers' outputs (``growth_rate`` new channels each). A dense layer is BN-ReLU-Conv1x1 (``bn_size *
growth_rate`` channels, the "B" bottleneck) then BN-ReLU-Conv3x3 (``growth_rate`` channels); a
transition is BN-ReLU-Conv1x1 (compression) and a 2x2 average pool.
"""

from collections import OrderedDict

from .. import nn
from ..errors import ConfigError
from ..graph import Model, Sequential
from ..random import no_init
from ..symbolic import Input
from . import _init
from ._util import check_positive, image_model


def dense_layer(in_channels, growth_rate, bn_size=4, drop_rate=0.0):
    """torchvision's ``_DenseLayer``: norm1, relu1, conv1 (1x1, bn_size * growth_rate), norm2,
    relu2, conv2 (3x3, growth_rate)[, dropout]; (N, in_channels, H, W) -> (N, growth_rate, H, W).
    ``bn_size=None`` drops the bottleneck (plain DenseNet: norm, relu, conv 3x3 only)."""
    if bn_size is None:
        layers = [("norm", nn.BatchNorm2d(in_channels)), ("relu", nn.ReLU()),
                  ("conv", nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=False))]
    else:
        inner = bn_size * growth_rate
        layers = [("norm1", nn.BatchNorm2d(in_channels)), ("relu1", nn.ReLU()),
                  ("conv1", nn.Conv2d(in_channels, inner, 1, bias=False)),
                  ("norm2", nn.BatchNorm2d(inner)), ("relu2", nn.ReLU()),
                  ("conv2", nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False))]
    if drop_rate > 0:
        layers.append(("dropout", nn.Dropout(drop_rate)))
    return Sequential(OrderedDict(layers))


def dense_block(num_layers, in_channels, growth_rate, bn_size=4, drop_rate=0.0):
    """A functional Model: (N, in_channels, H, W) -> (N, in_channels + num_layers * growth_rate,
    H, W). Layer i (node ``denselayer<i>``) reads ``concat<i-1>``, the concatenation of the input
    and the outputs of layers 1..i-1; ``concat<num_layers>`` is the block's output."""
    x = Input((in_channels, None, None))
    features = x
    channels = in_channels
    for i in range(1, num_layers + 1):
        new = dense_layer(channels, growth_rate, bn_size, drop_rate)(features,
                                                                     name=f"denselayer{i}")
        features = nn.Concat(dim=1)([features, new], name=f"concat{i}")
        channels += growth_rate
    return Model(x, features)


def transition(in_channels, out_channels):
    """torchvision's ``_Transition``: norm, relu, conv (1x1), pool (2x2 average, stride 2)."""
    return Sequential(OrderedDict([
        ("norm", nn.BatchNorm2d(in_channels)), ("relu", nn.ReLU()),
        ("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
        ("pool", nn.AvgPool2d(2, stride=2)),
    ]))


def _classifier_init(layer):
    _init.uniform_default(layer.weight, layer.in_features)
    _init.constant(layer.bias, 0.0)


def _conv_init(layer):
    _init.kaiming_normal(layer.weight, mode="fan_in")


def _finish(features, channels, num_classes, in_channels):
    with no_init():
        children = [("features", features), ("relu", nn.ReLU()),
                    ("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten()),
                    ("classifier", nn.Linear(channels, num_classes))]
        model = image_model(children, in_channels)
    return _init.init_modules(model, conv=_conv_init, linear=_classifier_init)


def build_densenet(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64,
                   bn_size=4, drop_rate=0.0, num_classes=1000, in_channels=3):
    """An ImageNet DenseNet in torchvision's layout (see :func:`densenet121`)."""
    check_positive("build_densenet", growth_rate=growth_rate, num_init_features=num_init_features,
                   bn_size=bn_size, num_classes=num_classes, in_channels=in_channels)
    if not 0.0 <= drop_rate < 1.0:
        raise ConfigError(f"build_densenet: drop_rate must be in [0, 1), got {drop_rate!r}")
    with no_init():
        layers = [
            ("conv0", nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3,
                                bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU()),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]
        channels = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            layers.append((f"denseblock{i}", dense_block(num_layers, channels, growth_rate,
                                                         bn_size, drop_rate)))
            channels += num_layers * growth_rate
            if i != len(block_config):
                layers.append((f"transition{i}", transition(channels, channels // 2)))
                channels //= 2
        layers.append(("norm5", nn.BatchNorm2d(channels)))
    return _finish(Sequential(OrderedDict(layers)), channels, num_classes, in_channels)


def densenet121(num_classes=1000, in_channels=3, drop_rate=0.0):
    """DenseNet-121 (growth rate 32, blocks of 6, 12, 24, 16 layers, 64 initial features, bn_size
    4, compression 0.5) as torchvision builds it, for 224x224 ImageNet images.

    ``features``: conv0 7x7/2, norm0, relu0, pool0 (max 3x3/2, padding 1), denseblock1,
    transition1, ..., denseblock4, norm5; then relu, AdaptiveAvgPool2d((1, 1)), flatten,
    ``classifier`` (Linear 1024 -> num_classes). (N, in_channels, H, W) -> (N, num_classes) logits;
    H, W >= 29 (the third transition's 2x2 pool needs a 2x2 map). State dict keys are torchvision's
    (``features.denseblock1.denselayer1.norm1.weight``, ``features.transition1.conv.weight``).
    Initialisation as torchvision: convolutions kaiming normal (fan_in), batch norm 1 and 0,
    classifier bias 0. 7,978,856 parameters for 1000 classes.
    """
    return build_densenet(32, (6, 12, 24, 16), 64, 4, drop_rate, num_classes, in_channels)


def densenet_cifar(num_classes=10, in_channels=3, depth=100, growth_rate=12, bottleneck=True,
                   compression=0.5, drop_rate=0.0):
    """DenseNet(-BC) for 32x32 CIFAR images (section 3 of the paper, "implementation details").

    Three dense blocks of equal size on 32x32, 16x16 and 8x8 maps; a 3x3 convolution first (2 x
    growth_rate channels for DenseNet-BC, 16 otherwise), transitions (BN, ReLU, 1x1 conv,
    2x2 average pool) compress channels by ``compression`` (0.5 for "C", 1 for none); at the end
    BN, ReLU, global average pooling and a linear classifier. With ``bottleneck`` ("B") a layer is
    BN-ReLU-Conv1x1 (4k) - BN-ReLU-Conv3x3 (k) and counts as two, so each block has (depth - 4) / 6
    layers; without, (depth - 4) / 3. The defaults are DenseNet-BC (L = 100, k = 12): 769,162
    parameters for 10 classes (the paper's 0.8M); ``depth=40`` gives a small one (176,122).
    (N, in_channels, H, W) -> (N, num_classes), H, W >= 4.
    """
    name = f"densenet_cifar(depth={depth})"
    check_positive(name, growth_rate=growth_rate, num_classes=num_classes,
                   in_channels=in_channels)
    per_layer = 2 if bottleneck else 1
    if not isinstance(depth, int) or depth < 4 or (depth - 4) % (3 * per_layer):
        raise ConfigError(f"{name}: depth must be 3 * {per_layer} * n + 4 "
                          f"({'40, 100, 190...' if bottleneck else '40, 100...'}), got {depth!r}")
    if not 0.0 < compression <= 1.0:
        raise ConfigError(f"{name}: compression must be in (0, 1], got {compression!r}")
    n = (depth - 4) // (3 * per_layer)
    with no_init():
        channels = 2 * growth_rate if bottleneck else 16
        layers = [("conv0", nn.Conv2d(in_channels, channels, 3, padding=1, bias=False))]
        for i in range(1, 4):
            layers.append((f"denseblock{i}", dense_block(n, channels, growth_rate,
                                                         4 if bottleneck else None, drop_rate)))
            channels += n * growth_rate
            if i != 3:
                out = int(channels * compression)
                layers.append((f"transition{i}", transition(channels, out)))
                channels = out
        layers.append(("norm5", nn.BatchNorm2d(channels)))
    return _finish(Sequential(OrderedDict(layers)), channels, num_classes, in_channels)
