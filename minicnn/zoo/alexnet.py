"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), in torchvision's single-tower layout."""

from .. import nn
from ..errors import ConfigError
from ..graph import Sequential
from ..random import no_init
from . import _init
from ._util import check_positive, image_model


def alexnet(num_classes=1000, in_channels=3, dropout=0.5):
    """AlexNet as torchvision builds it (the "one weird trick" variant: 64-192-384-256-256 filters,
    no local response normalisation, no grouped convolutions), for 224x224 ImageNet images.

    (N, in_channels, H, W) -> (N, num_classes) logits; any H, W >= 63 works, because
    ``AdaptiveAvgPool2d((6, 6))`` fixes the classifier's input at 256x6x6. Parameter names match
    torchvision's state dict: ``features.{0,3,6,8,10}``, ``classifier.{1,4,6}``. Weights use
    PyTorch's default initialisation, as torchvision does. 61,100,840 parameters for 1000 classes.
    """
    check_positive("alexnet", num_classes=num_classes, in_channels=in_channels)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"alexnet: dropout must be in [0, 1), got {dropout!r}")
    with no_init():     # drawn below in float32: the same distribution, a third of the time
        features, classifier = _layers(in_channels, num_classes, dropout)
    model = image_model([("features", features), ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),
                         ("flatten", nn.Flatten()), ("classifier", classifier)], in_channels)
    return _init.init_modules(model, conv=_init.conv_default, linear=_init.linear_default)


def _layers(in_channels, num_classes, dropout):
    features = Sequential(
        nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(3, 2),
    )
    classifier = Sequential(
        nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )
    return features, classifier
