"""Conformance cases for minicnn's own layers, so that ``minicnn check-plugin minicnn.layers.conv``
checks the built-ins too. Their loop references live in ``tests/reference``, outside the package,
so the ``forward`` check is not run on them; every other check is."""

import numpy as np

from .. import testing


def _probabilities(shape, seed):
    return 0.1 + 0.8 * np.abs(testing.tie_free(shape, seed=seed))


BUILTIN_CASES = {
    "AdaptiveAvgPool2d": [dict(args=(2,), shapes=[(2, 3, 5, 5)])],
    "Add": [dict(shapes=[(2, 3, 4, 4), (2, 3, 4, 4)])],
    "AvgPool2d": [dict(args=(2,), shapes=[(2, 3, 4, 4)]),
                  dict(args=(3,), kwargs=dict(stride=2, padding=1, ceil_mode=True),
                       shapes=[(2, 2, 6, 6)])],
    "BCELoss": [dict(inputs=lambda s: [_probabilities((3, 4), s), _probabilities((3, 4), s + 1)])],
    "BCEWithLogitsLoss": [dict(inputs=lambda s: [testing.tie_free((3, 4), s),
                                                 _probabilities((3, 4), s + 1)])],
    "BatchNorm1d": [dict(args=(3,), shapes=[(4, 3)]), dict(args=(3,), shapes=[(2, 3, 5)],
                                                           train=False)],
    "BatchNorm2d": [dict(args=(3,), shapes=[(2, 3, 3, 3)]),
                    dict(args=(0,), raises="ConfigError")],
    "BatchNorm3d": [dict(args=(2,), shapes=[(2, 2, 2, 3, 3)])],
    "Concat": [dict(shapes=[(2, 3, 4, 4), (2, 2, 4, 4)])],
    "ConstantPad2d": [dict(args=((1, 0, 2, 1), 0.5), shapes=[(2, 2, 3, 3)])],
    "Conv1d": [dict(args=(2, 4, 3), shapes=[(2, 2, 7)])],
    "Conv2d": [dict(args=(3, 4, 3), kwargs=dict(padding=1), shapes=[(2, 3, 5, 5)]),
               dict(args=(4, 4, 3), kwargs=dict(stride=2, dilation=2, groups=2),
                    shapes=[(2, 4, 7, 7)]),
               dict(args=(3, 4, 3), kwargs=dict(stride=0), raises="ConfigError"),
               dict(args=(3, 4, 5), shapes=[(2, 3, 4, 4)], raises="ShapeError")],
    "Conv3d": [dict(args=(2, 3, 2), shapes=[(2, 2, 3, 4, 4)])],
    "ConvTranspose2d": [dict(args=(3, 2, 3), kwargs=dict(stride=2, padding=1),
                             shapes=[(2, 3, 3, 3)])],
    "CrossEntropyLoss": [dict(shapes=[(4, 5), (4,)], index_high=5),
                         dict(kwargs=dict(label_smoothing=0.1), shapes=[(2, 3, 2, 2), (2, 2, 2)],
                              index_high=3)],
    "Dropout": [dict(shapes=[(2, 3, 4, 4)])],
    "Dropout1d": [dict(shapes=[(2, 3, 5)])],
    "Dropout2d": [dict(shapes=[(2, 3, 4, 4)])],
    "Flatten": [dict(shapes=[(2, 3, 2, 2)])],
    "GlobalAvgPool2d": [dict(shapes=[(2, 3, 4, 4)])],
    "L1Loss": [dict(shapes=[(3, 4), (3, 4)])],
    "LPPool2d": [dict(args=(2, 2), shapes=[(2, 2, 4, 4)])],
    "Linear": [dict(args=(5, 3), shapes=[(4, 5)]), dict(args=(0, 3), raises="ConfigError")],
    "LogSoftmax": [dict(kwargs=dict(dim=1), shapes=[(3, 5)])],
    "MSELoss": [dict(shapes=[(3, 4), (3, 4)])],
    "MaxPool2d": [dict(args=(2,), shapes=[(2, 3, 4, 4)]),
                  dict(args=(3,), kwargs=dict(stride=2, padding=1), shapes=[(2, 2, 5, 5)])],
    "NLLLoss": [dict(shapes=[(4, 5), (4,)], index_high=5)],
    "SmoothL1Loss": [dict(shapes=[(3, 4), (3, 4)])],
    "Softmax": [dict(kwargs=dict(dim=1), shapes=[(3, 5)])],
    "ZeroPad2d": [dict(args=((1, 0, 2, 1),), shapes=[(2, 2, 3, 3)])],
}
