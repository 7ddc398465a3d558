"""VGG (Simonyan and Zisserman 2014, "Very deep convolutional networks for large-scale image
recognition"), configurations A, B, D, E = VGG-11, 13, 16, 19, in torchvision's layout."""

from .. import nn
from ..errors import ConfigError
from ..graph import Sequential
from ..random import no_init
from . import _init
from ._util import check_positive, image_model

# Output channels of each 3x3 convolution; "M" is a 2x2 max pool with stride 2.
CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def _linear_init(layer):
    _init.normal(layer.weight, 0.01)
    _init.constant(layer.bias, 0.0)


def build_vgg(depth, num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-``depth`` (11, 13, 16 or 19) for 224x224 ImageNet images; see :func:`vgg16`."""
    name = f"vgg{depth}"
    if depth not in CONFIGS:
        raise ConfigError(f"build_vgg: depth must be one of {sorted(CONFIGS)}, got {depth!r}")
    check_positive(name, num_classes=num_classes, in_channels=in_channels)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
    with no_init():     # every weight is drawn below, as torchvision's _initialize_weights does
        layers, channels = [], in_channels
        for v in CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(channels, v, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            channels = v
        features = Sequential(*layers)
        classifier = Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        model = image_model([("features", features), ("avgpool", nn.AdaptiveAvgPool2d((7, 7))),
                             ("flatten", nn.Flatten()), ("classifier", classifier)], in_channels)
    return _init.init_modules(model, conv=_init.conv_kaiming_fan_out, linear=_linear_init)


def vgg11(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-11 (configuration A). 132,863,336 parameters for 1000 classes (132,868,840 with
    ``batch_norm=True``, torchvision's ``vgg11_bn``); see :func:`vgg16` for the layout."""
    return build_vgg(11, num_classes, in_channels, batch_norm, dropout)


def vgg13(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-13 (configuration B). 133,047,848 parameters for 1000 classes; see :func:`vgg16`."""
    return build_vgg(13, num_classes, in_channels, batch_norm, dropout)


def vgg16(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-16 (configuration D) as torchvision builds it, for 224x224 ImageNet images.

    ``features``: 3x3 convolutions (padding 1) with ReLU (and BatchNorm2d between them when
    ``batch_norm``), five 2x2 max pools; ``avgpool``: AdaptiveAvgPool2d((7, 7)), so any input of at
    least 32x32 works; ``classifier``: Linear 25088-4096, ReLU, Dropout, Linear 4096-4096, ReLU,
    Dropout, Linear 4096-num_classes. (N, in_channels, H, W) -> (N, num_classes) logits. Parameter
    names are torchvision's (``features.0.weight``, ``classifier.6.bias``). Initialisation as
    torchvision: convolutions kaiming normal (fan_out, ReLU), biases 0, linear weights N(0, 0.01).
    138,357,544 parameters for 1000 classes (138,365,992 with ``batch_norm=True``).
    """
    return build_vgg(16, num_classes, in_channels, batch_norm, dropout)


def vgg19(num_classes=1000, in_channels=3, batch_norm=False, dropout=0.5):
    """VGG-19 (configuration E; the network of Gatys et al.'s style transfer). 143,667,240
    parameters for 1000 classes; see :func:`vgg16`."""
    return build_vgg(19, num_classes, in_channels, batch_norm, dropout)
