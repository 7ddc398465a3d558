"""Small models the saliency tests share (a helper module, not a test file)."""

import minicnn
import numpy as np
from minicnn import nn


def gap_linear(in_channels=2, channels=4, classes=3, seed=0, dropout=False, softmax=False):
    """conv 3x3 -> ReLU 'relu' -> GlobalAvgPool2d 'gap' -> Flatten -> [Dropout] -> Linear 'fc'
    [-> Softmax 'prob'], any image size."""
    minicnn.manual_seed(seed)
    x = minicnn.Input((in_channels, None, None))
    h = nn.Conv2d(in_channels, channels, 3, padding=1)(x, name="conv")
    h = nn.ReLU()(h, name="relu")
    h = nn.Flatten()(nn.GlobalAvgPool2d()(h, name="gap"), name="flatten")
    if dropout:
        h = nn.Dropout(0.5)(h, name="drop")
    out = nn.Linear(channels, classes)(h, name="fc")
    if softmax:
        out = nn.Softmax()(out, name="prob")
    return minicnn.Model(x, out)


def pool_linear(seed=0):
    """A tail without global pooling: conv 'c1' -> Tanh -> conv 'A' -> ReLU -> MaxPool 2 ->
    Flatten -> Linear 'fc' (3 classes), on 2 x 8 x 8 images."""
    minicnn.manual_seed(seed)
    x = minicnn.Input((2, 8, 8))
    h = nn.Tanh()(nn.Conv2d(2, 3, 3, padding=1)(x, name="c1"), name="t1")
    h = nn.Conv2d(3, 4, 3, padding=1)(h, name="A")
    h = nn.MaxPool2d(2)(nn.ReLU()(h, name="relu"), name="pool")
    return minicnn.Model(x, nn.Linear(4 * 16, 3)(nn.Flatten()(h, name="flatten"), name="fc"))


def skip_model(seed=0):
    """A skip connection around node 'A': c0 -> A -> ReLU -> c2 -> Add(c2, c0) -> ReLU -> GAP ->
    Flatten -> Linear (2 classes), on 2 x 6 x 6 images."""
    minicnn.manual_seed(seed)
    x = minicnn.Input((2, 6, 6))
    c0 = nn.Conv2d(2, 3, 3, padding=1)(x, name="c0")
    h = nn.ReLU()(nn.Conv2d(3, 3, 3, padding=1)(c0, name="A"), name="r1")
    h = nn.Conv2d(3, 3, 3, padding=1)(h, name="c2")
    h = nn.ReLU()(nn.Add()([h, c0], name="add"), name="r2")
    h = nn.Flatten()(nn.GlobalAvgPool2d()(h, name="gap"), name="flatten")
    return minicnn.Model(x, nn.Linear(3, 2)(h, name="fc"))


def bright_square_model():
    """Fixed weights that respond to bright patches: a 3x3 mean filter with bias -0.5, ReLU,
    global average pooling and Linear [[1], [-1]]: class 0 ("bright") grows with the area above
    0.5, class 1 is its negative."""
    x = minicnn.Input((1, None, None))
    conv = nn.Conv2d(1, 1, 3, padding=1)
    conv.weight.data[...] = 1.0 / 9.0
    conv.bias.data[...] = -0.5
    h = nn.ReLU()(conv(x, name="conv"), name="relu")
    h = nn.Flatten()(nn.GlobalAvgPool2d()(h, name="gap"), name="flatten")
    fc = nn.Linear(1, 2)
    fc.weight.data[...] = np.array([[1.0], [-1.0]], np.float32)
    fc.bias.data[...] = 0.0
    return minicnn.Model(x, fc(h, name="fc"))


SQUARE = (slice(20, 30), slice(10, 22))     # rows, columns of the bright square


def square_image(height=40, width=50, seed=0):
    """A dim noisy (1, H, W) image with a bright square at :data:`SQUARE`."""
    rng = np.random.default_rng(seed)
    image = (0.1 + 0.05 * rng.random((1, height, width))).astype(np.float32)
    image[(0,) + SQUARE] = 0.95
    return image
