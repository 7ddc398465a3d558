"""FCN-8s and U-Net: output sizes, float64 gradient checks, the bilinear initialisation."""

import numpy as np
import pytest
from minicnn import ConfigError, functional, nn, testing

from minicnn_segmentation import (
    bilinear_kernel,
    bilinear_upsampling,
    fcn8s,
    predict_masks,
    size_multiple,
    unet,
)


@pytest.mark.parametrize("hw", [(32, 32), (64, 96), (96, 32)])
def test_fcn8s_output_is_input_size(hw):
    model = fcn8s(num_classes=5, in_channels=3, width=2)
    x = np.random.default_rng(0).random((2, 3) + hw, dtype=np.float32)
    assert model(x).shape == (2, 5) + hw
    assert size_multiple(model) == 32


@pytest.mark.parametrize("depth, hw", [(1, (6, 10)), (2, (8, 12)), (3, (16, 40))])
def test_unet_output_is_input_size(depth, hw):
    model = unet(num_classes=3, in_channels=1, base=2, depth=depth)
    x = np.random.default_rng(0).random((2, 1) + hw, dtype=np.float32)
    assert model(x).shape == (2, 3) + hw
    assert size_multiple(model) == 2 ** depth


def test_architecture_pieces():
    model = fcn8s(num_classes=4, width=2)
    names = [n.name for n in model.nodes]
    for name in ("score_fr", "upscore2", "score_pool4", "fuse_pool4", "upscore_pool4",
                 "score_pool3", "fuse_pool3", "upscore8"):
        assert name in names
    assert isinstance(model["fuse_pool4"], nn.Add) and isinstance(model["upscore8"],
                                                                  nn.ConvTranspose2d)
    assert model["score_fr"].kernel_size == (1, 1)
    u = unet(num_classes=2, base=4, depth=2)
    assert sum(isinstance(m, nn.Concat) for _, m in u.named_modules()) == 2
    assert sum(isinstance(m, nn.ConvTranspose2d) for _, m in u.named_modules()) == 2
    assert u["down1.2.conv"].out_channels == 8 and u["bottom.1.conv"].out_channels == 16


def test_bad_configuration():
    with pytest.raises(ConfigError, match="fcn8s: width"):
        fcn8s(num_classes=3, width=0)
    with pytest.raises(ConfigError, match="unet: depth"):
        unet(num_classes=3, depth=0)
    with pytest.raises(ConfigError, match="factor"):
        bilinear_kernel(3, 1)


def test_fcn8s_starts_as_bilinear_upsampling_of_score_fr():
    # score_pool4/3 start at zero, so at initialisation the output is score_fr upsampled by
    # 2, 2 and 8 with bilinear kernels; recompute that with the functional transposed conv.
    model = fcn8s(num_classes=3, width=2).eval()
    x = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
    out = model(x)
    score = model.activation("score_fr")
    for factor in (2, 2, 8):
        score = functional.conv_transpose2d(score, bilinear_kernel(factor, 3), stride=factor,
                                            padding=factor // 2)
    np.testing.assert_allclose(out, score, rtol=1e-5, atol=1e-5)


def _interior(length, factor):
    """Output positions whose bilinear sample point lies between two input pixel centres."""
    pos = (np.arange(length * factor) + 0.5) / factor - 0.5
    return (pos >= 0) & (pos <= length - 1), pos


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_init_on_constant_and_ramp(factor):
    layer = bilinear_upsampling(2, factor)
    h, w = 5, 7
    ii, jj = np.mgrid[0:h, 0:w].astype(np.float64)
    x = np.stack([np.full((h, w), 0.75), 0.3 * jj - 0.2 * ii + 1.0])[None].astype(np.float32)
    y = layer(x)[0]
    assert y.shape == (2, h * factor, w * factor)
    in_r, pos_r = _interior(h, factor)
    in_c, pos_c = _interior(w, factor)
    inside = np.ix_(in_r, in_c)
    # a constant stays constant; a linear ramp is sampled at the half-pixel positions
    np.testing.assert_allclose(y[0][inside], 0.75, rtol=1e-6)
    expected = 0.3 * pos_c[None, :] - 0.2 * pos_r[:, None] + 1.0
    np.testing.assert_allclose(y[1][inside], expected[inside], rtol=1e-5, atol=1e-6)
    # channels do not mix: zero in one channel gives zero out
    y0 = layer(np.concatenate([np.zeros_like(x[:, :1]), x[:, 1:]], axis=1))[0]
    assert np.all(y0[0] == 0)


def test_bilinear_kernel_is_separable_and_normalised():
    k = bilinear_kernel(2, 1)[0, 0]
    np.testing.assert_allclose(k, np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))
    for f in (2, 4, 8):   # each output pixel gets weights summing to 1 (stride-f phases)
        k = bilinear_kernel(f, 1)[0, 0]
        for phase in range(f):
            assert k[phase::f, phase::f].sum() == pytest.approx(1.0)


def test_gradcheck_tiny_unet():
    model = unet(num_classes=2, in_channels=1, base=2, depth=1)
    x = testing.tie_free((2, 1, 8, 8), seed=0)
    testing.gradcheck(model, [x], max_elements=40)


def test_gradcheck_tiny_fcn8s():
    # 32x32 is the smallest input (five pools); no batch norm, so pool5's 1x1 map is no problem
    model = fcn8s(num_classes=2, in_channels=1, width=1, batch_norm=False)
    x = testing.tie_free((1, 1, 32, 32), seed=1)
    testing.gradcheck(model, [x], max_elements=30)


def test_predict_masks_pads_and_crops():
    model = unet(num_classes=3, in_channels=3, base=2, depth=2)
    x = np.random.default_rng(0).random((3, 3, 10, 13), dtype=np.float32)
    masks = predict_masks(model, x, batch_size=2)
    assert masks.shape == (3, 10, 13) and masks.dtype.kind == "i"
    assert model.training                                 # mode restored
    single = predict_masks(model, x[0])
    np.testing.assert_array_equal(single[0], masks[0])
