"""The all-convolutional net (Springenberg, Dosovitskiy, Brox, Riedmiller 2014, "Striving for
simplicity: the all convolutional net"), model All-CNN-C for CIFAR-10."""

from .. import nn
from ..errors import ConfigError
from ._util import check_positive, image_model


def allconv(num_classes=10, in_channels=3, dropout=True, final_relu=True):
    """All-CNN-C for 32x32 CIFAR images: no pooling layers (3x3 convolutions with stride 2 take
    their place), 1x1 convolutions at the end and global average pooling instead of a fully
    connected classifier. ReLU after every convolution, the last one included as in the paper's
    Table 2 (``final_relu=False`` leaves the scores unclipped).

    [dropout 0.2] conv1 96@3x3 - conv2 96@3x3 - conv3 96@3x3 stride 2 - [dropout 0.5]
    conv4 192@3x3 - conv5 192@3x3 - conv6 192@3x3 stride 2 - [dropout 0.5]
    conv7 192@3x3 (no padding) - conv8 192@1x1 - conv9 num_classes@1x1 - global average pool -
    flatten.

    3x3 convolutions are padded by 1 except conv7 (32 -> 16 -> 8 -> 6). ``dropout=False`` removes
    the dropout layers (the paper uses them). (N, in_channels, H, W) -> (N, num_classes) logits;
    H, W >= 9. 1,369,738 parameters for 10 classes.
    """
    check_positive("allconv", num_classes=num_classes, in_channels=in_channels)
    if not isinstance(dropout, bool):
        raise ConfigError(f"allconv: dropout must be True or False, got {dropout!r}")
    layers = [("drop0", nn.Dropout(0.2))] if dropout else []
    plan = [  # name, in, out, kernel, stride, padding, dropout after
        ("conv1", in_channels, 96, 3, 1, 1, False), ("conv2", 96, 96, 3, 1, 1, False),
        ("conv3", 96, 96, 3, 2, 1, True), ("conv4", 96, 192, 3, 1, 1, False),
        ("conv5", 192, 192, 3, 1, 1, False), ("conv6", 192, 192, 3, 2, 1, True),
        ("conv7", 192, 192, 3, 1, 0, False), ("conv8", 192, 192, 1, 1, 0, False),
        ("conv9", 192, num_classes, 1, 1, 0, False),
    ]
    for i, (name, cin, cout, k, stride, pad, drop) in enumerate(plan, start=1):
        layers.append((name, nn.Conv2d(cin, cout, k, stride=stride, padding=pad)))
        if i < len(plan) or final_relu:
            layers.append((f"relu{i}", nn.ReLU()))
        if drop and dropout:
            layers.append((f"drop{i // 3}", nn.Dropout(0.5)))
    layers += [("pool", nn.GlobalAvgPool2d()), ("flatten", nn.Flatten())]
    return image_model(layers, in_channels)
