"""A plain multi-layer perceptron (a fully connected ReLU network): the baseline before CNNs."""

from collections import OrderedDict

from .. import nn
from ..errors import ConfigError
from ..graph import Sequential
from ._util import check_positive


def mlp(num_classes=10, in_features=784, hidden=(512, 512), dropout=0.0):
    """Flatten - (Linear - ReLU [- Dropout]) per hidden width - Linear num_classes.

    Takes any input whose per-sample size is ``in_features`` (an (N, 1, 28, 28) MNIST batch or an
    (N, 784) matrix) and returns (N, num_classes) logits. With the defaults: 669,706 parameters.
    Children: flatten, fc1, relu1[, drop1], fc2, relu2[, drop2], ..., fc<len(hidden) + 1>.
    """
    check_positive("mlp", num_classes=num_classes, in_features=in_features)
    hidden = tuple(hidden)
    for width in hidden:
        check_positive("mlp", hidden=width)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"mlp: dropout must be in [0, 1), got {dropout!r}")
    layers = [("flatten", nn.Flatten())]
    width = in_features
    for i, out in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(width, out)), (f"relu{i}", nn.ReLU())]
        if dropout > 0:
            layers.append((f"drop{i}", nn.Dropout(dropout)))
        width = out
    layers.append((f"fc{len(hidden) + 1}", nn.Linear(width, num_classes)))
    return Sequential(OrderedDict(layers))
