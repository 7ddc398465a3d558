"""The receptive field ("RF") and jump columns of ``model.summary()``, against hand-computed values.

Per axis: ``rf_out = rf_in + (d (k - 1)) jump_in`` and ``jump_out = jump_in * stride``; the expected
numbers below are worked out by hand in the comments, not read from the code under test.
"""

from fractions import Fraction

import pytest

import minicnn
from minicnn import nn, zoo


def _fields(model, shape):
    summary = model.summary(shape)
    return summary, {r["name"]: (r["rf"], r["jump"]) for r in summary.rows}


def _chain(shape, *layers):
    x = minicnn.Input(shape)
    h = x
    for i, layer in enumerate(layers):
        h = layer(h, name=f"n{i}")
    return minicnn.Model(x, h)


def test_lenet5_by_hand():
    # conv1 5x5 pad 2: 5 (jump 1); pool1 2x2/2: 5 + 1 = 6 (jump 2); conv2 5x5: 6 + 4 * 2 = 14;
    # pool2 2x2/2: 14 + 1 * 2 = 16 (jump 4); flatten keeps 16; fc1 mixes everything: all.
    summary, f = _fields(zoo.lenet5(), (1, 28, 28))
    assert f["conv1"] == ((5, 5), (1, 1))
    assert f["act1"] == ((5, 5), (1, 1))
    assert f["pool1"] == ((6, 6), (2, 2))
    assert f["conv2"] == ((14, 14), (2, 2))
    assert f["pool2"] == ((16, 16), (4, 4))
    assert f["flatten"] == ((16, 16), (4, 4))
    assert f["fc1"][0] == ("all", "all") and f["fc3"][0] == ("all", "all")
    text = str(summary)
    header = next(line for line in text.splitlines() if line.startswith("node"))
    assert header.split() == ["node", "type", "output", "shape", "RF", "jump", "params", "frozen",
                              "FLOPs"]
    conv2 = next(line for line in text.splitlines() if line.startswith("conv2"))
    assert conv2.split()[6:8] == ["14", "2"]
    fc1 = next(line for line in text.splitlines() if line.startswith("fc1"))
    assert fc1.split()[4] == "all"          # "fc1 Linear (1, 120) all 48,120 ..."


def test_dilated_convolutions():
    # 3x3 dilation 2 spans 5 pixels; then 3x3 dilation 4 adds 2 * 4 = 8: 13. Padding is irrelevant.
    model = _chain((1, 32, 32), nn.Conv2d(1, 2, 3, dilation=2, padding=2),
                   nn.Conv2d(2, 2, 3, dilation=4))
    _, f = _fields(model, (1, 32, 32))
    assert f["n0"] == ((5, 5), (1, 1))
    assert f["n1"] == ((13, 13), (1, 1))


def test_stride_two_chain():
    # three 3x3 stride-2 convs: 3 (jump 2), 3 + 2 * 2 = 7 (jump 4), 7 + 2 * 4 = 15 (jump 8);
    # then a 2x2 max pool stride 1: 15 + 1 * 8 = 23 (jump 8)
    model = _chain((1, 64, 64), nn.Conv2d(1, 2, 3, stride=2), nn.ReLU(),
                   nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, stride=2),
                   nn.MaxPool2d(2, stride=1))
    _, f = _fields(model, (1, 64, 64))
    assert f["n0"] == ((3, 3), (2, 2)) and f["n1"] == ((3, 3), (2, 2))
    assert f["n2"] == ((7, 7), (4, 4))
    assert f["n3"] == ((15, 15), (8, 8))
    assert f["n4"] == ((23, 23), (8, 8))


def test_rectangular_kernel_shows_h_x_w():
    # kernel (3, 7) stride (1, 2): 3 x 7 (jump 1 x 2); then 3x3: 5 x (7 + 2 * 2 = 11)
    model = _chain((1, 20, 40), nn.Conv2d(1, 1, (3, 7), stride=(1, 2)), nn.Conv2d(1, 1, 3))
    summary, f = _fields(model, (1, 20, 40))
    assert f["n0"] == ((3, 7), (1, 2))
    assert f["n1"] == ((5, 11), (1, 2))
    line = next(line for line in str(summary).splitlines() if line.startswith("n1"))
    assert "5 x 11" in line and "1 x 2" in line


def test_residual_block_takes_the_largest_field():
    # main path: 3x3 -> 3x3 = 5 (jump 1); the skip carries the input (1): the add shows 5.
    x = minicnn.Input((4, 16, 16))
    h = nn.Conv2d(4, 4, 3, padding=1)(x, name="c1")
    h = nn.ReLU()(h, name="r1")
    h = nn.Conv2d(4, 4, 3, padding=1)(h, name="c2")
    out = nn.ReLU()(nn.Add()([h, x], name="add"), name="out")
    _, f = _fields(minicnn.Model(x, out), (4, 16, 16))
    assert f["c2"] == ((5, 5), (1, 1))
    assert f["add"] == ((5, 5), (1, 1)) and f["out"] == ((5, 5), (1, 1))


def test_resnet20_downsampling_block_and_global_pool():
    # stem 3; each of the 3 stage-1 blocks adds 2 + 2: 15. layer2.0.conv1 (stride 2): 15 + 2 = 17,
    # jump 2; its conv2: 17 + 2 * 2 = 21; the 1x1 stride-2 projection keeps 15 (jump 2); add: 21.
    _, f = _fields(zoo.resnet20(), (3, 32, 32))
    assert f["conv1"] == ((3, 3), (1, 1))
    assert f["layer1.2.add"] == ((15, 15), (1, 1))
    assert f["layer2.0.conv1"] == ((17, 17), (2, 2))
    assert f["layer2.0.downsample.0"] == ((15, 15), (2, 2))
    assert f["layer2.0.add"] == ((21, 21), (2, 2))
    # stage 2 ends at 21 + 2 * 2 * 4 * 2 = 37 (jump 2); stage 3: 37 + 2 * 2 + 2 * 4 = 49, then
    # + 4 * 4 * 2 = 81 (jump 4); the field is larger than the 32x32 image (a theoretical field)
    assert f["layer2.2.add"] == ((37, 37), (2, 2))
    assert f["layer3.0.add"] == ((49, 49), (4, 4))
    assert f["layer3.2.relu_out"] == ((81, 81), (4, 4))
    assert f["avgpool"][0] == ("all", "all") and f["fc"][0] == ("all", "all")


def test_adaptive_pool_windows():
    # 10 -> 4: windows [0,3) [2,5) [5,8) [7,10): widest 3 taps at jump 1 -> 3; jump 10/4 = 2.5
    model = _chain((1, 10, 10), nn.AdaptiveAvgPool2d(4))
    _, f = _fields(model, (1, 10, 10))
    assert f["n0"] == ((3, 3), (Fraction(5, 2), Fraction(5, 2)))


def test_transposed_convolution_divides_the_jump():
    # conv 3x3 stride 2 (3, jump 2); ConvTranspose2d 4x4 stride 2: each output gathers 2 inputs,
    # 3 + (2 - 1) * 2 = 5, jump 2 / 2 = 1. Straight on the image: 2 pixels, jump 1/2.
    model = _chain((1, 16, 16), nn.Conv2d(1, 2, 3, stride=2, padding=1),
                   nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1))
    _, f = _fields(model, (1, 16, 16))
    assert f["n0"] == ((3, 3), (2, 2))
    assert f["n1"] == ((5, 5), (1, 1))
    summary, f = _fields(_chain((1, 8, 8), nn.ConvTranspose2d(1, 1, 4, stride=2)), (1, 8, 8))
    assert f["n0"] == ((2, 2), (Fraction(1, 2), Fraction(1, 2)))
    assert "0.5" in str(summary)
    # kernel 3 stride 2: an output gets 1 or 2 taps: the field is 2 at most
    _, f = _fields(_chain((1, 8, 8), nn.ConvTranspose2d(1, 1, 3, stride=2)), (1, 8, 8))
    assert f["n0"][0] == (2, 2)


def test_concat_and_padding_layers():
    # branch a: 5x5 (5); branch b: 3x3 then 3x3 dilation 2 (3 + 4 = 7): the concat shows 7.
    x = minicnn.Input((1, 12, 12))
    a = nn.Conv2d(1, 2, 5, padding=2)(x, name="a")
    b = nn.Conv2d(1, 2, 3, padding=1)(x, name="b1")
    b = nn.Conv2d(2, 2, 3, padding=2, dilation=2)(b, name="b2")
    cat = nn.Concat()([a, b], name="cat")
    out = nn.ZeroPad2d(1)(cat, name="pad")
    _, f = _fields(minicnn.Model(x, out), (1, 12, 12))
    assert f["a"][0] == (5, 5) and f["b2"][0] == (7, 7)
    assert f["cat"] == ((7, 7), (1, 1)) and f["pad"] == ((7, 7), (1, 1))


def test_models_without_spatial_axes_keep_the_old_table():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    summary = model.summary((4,))
    assert all(r["rf"] is None for r in summary.rows)
    header = next(line for line in str(summary).splitlines() if line.startswith("node"))
    assert "RF" not in header and "jump" not in header


def test_row_lookup_and_unknown_node():
    summary = zoo.lenet5().summary()
    assert summary.row("pool1")["rf"] == (6, 6)
    with pytest.raises(KeyError, match="no node named 'nope'"):
        summary.row("nope")
