"""Network in Network (Lin, Chen, Yan 2013), the CIFAR-10 model of the authors' Caffe definition."""

from .. import nn
from ..errors import ConfigError
from ._util import check_positive, image_model


def nin(num_classes=10, in_channels=3, dropout=0.5, final_relu=True):
    """Network in Network for 32x32 CIFAR images: three "mlpconv" blocks, each a spatial convolution
    followed by two 1x1 convolutions (the per-pixel MLP, "cccp" in Caffe), ReLU after every
    convolution; no fully connected layer: the last 1x1 convolution has ``num_classes`` channels and
    global average pooling turns each map into a class score.

    conv1 192@5x5 - cccp1 160 - cccp2 96 - max pool 3x3/2 - dropout;
    conv2 192@5x5 - cccp3 192 - cccp4 192 - average pool 3x3/2 - dropout;
    conv3 192@3x3 - cccp5 192 - cccp6 num_classes - global average pool - flatten.

    The pools use ``ceil_mode=True`` as Caffe does (32 -> 16 -> 8). As in the original definition a
    ReLU follows cccp6 too, so the scores are non-negative (``final_relu=False`` removes it).
    (N, in_channels, H, W) -> (N, num_classes); H, W >= 4. 966,986 parameters for 10 classes.
    """
    check_positive("nin", num_classes=num_classes, in_channels=in_channels)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"nin: dropout must be in [0, 1), got {dropout!r}")

    def conv(name, cin, cout, k, relu=True):
        layer = [(name, nn.Conv2d(cin, cout, k, padding=k // 2))]
        return layer + [(f"relu_{name}", nn.ReLU())] if relu else layer

    layers = (conv("conv1", in_channels, 192, 5) + conv("cccp1", 192, 160, 1)
              + conv("cccp2", 160, 96, 1)
              + [("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("drop1", nn.Dropout(dropout))]
              + conv("conv2", 96, 192, 5) + conv("cccp3", 192, 192, 1) + conv("cccp4", 192, 192, 1)
              + [("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)), ("drop2", nn.Dropout(dropout))]
              + conv("conv3", 192, 192, 3) + conv("cccp5", 192, 192, 1)
              + conv("cccp6", 192, num_classes, 1, final_relu)
              + [("pool3", nn.GlobalAvgPool2d()), ("flatten", nn.Flatten())])
    return image_model(layers, in_channels)
