"""Fully convolutional segmentation networks: FCN-8s (Long, Shelhamer, Darrell 2015) and a small
U-Net (Ronneberger, Fischer, Brox 2015), as functional :class:`minicnn.Model` objects.

Both take ``(N, in_channels, H, W)`` images of any size divisible by their *multiple* (32 for
:func:`fcn8s`, ``2 ** depth`` for :func:`unet`) and return ``(N, num_classes, H, W)`` per-pixel
class scores (logits) of exactly the input's size, for
``nn.CrossEntropyLoss(ignore_index=255)``. :func:`minicnn_segmentation.predict_masks` pads other
sizes up to the multiple and crops the result.
"""

import minicnn
import numpy as np
from minicnn import ConfigError, nn


def bilinear_kernel(factor, channels):
    """``(channels, channels, 2 factor, 2 factor)`` weights making ``ConvTranspose2d(channels,
    channels, 2 factor, stride=factor, padding=factor // 2)`` a bilinear upsampling by ``factor``
    (each channel alone, half-pixel centres as ``align_corners=False``), as FCN initialises its
    deconvolutions. ``factor`` must be even (or 1)."""
    if not isinstance(factor, int) or factor < 1 or (factor > 1 and factor % 2):
        raise ConfigError(f"bilinear_kernel: factor must be 1 or an even positive int, got "
                          f"{factor!r}")
    size = 2 * factor
    centre = factor - 0.5
    ramp = 1.0 - np.abs(np.arange(size) - centre) / factor
    weight = np.zeros((channels, channels, size, size), dtype=np.float32)
    weight[np.arange(channels), np.arange(channels)] = np.outer(ramp, ramp)
    return weight


def bilinear_upsampling(channels, factor, name=None):
    """A ``ConvTranspose2d`` (no bias) initialised to bilinear upsampling by ``factor``: output
    size exactly ``factor`` times the input's. Its weights stay trainable."""
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor,
                               padding=factor // 2, bias=False)
    layer.weight.data = bilinear_kernel(factor, channels)
    return layer


def _check(model, **values):
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{model}: {key} must be a positive int, got {value!r}")


def _conv_bn_relu(x, cin, cout, name, batch_norm=True):
    x = nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)(x, name=f"{name}.conv")
    if batch_norm:
        x = nn.BatchNorm2d(cout)(x, name=f"{name}.bn")
    return nn.ReLU()(x, name=f"{name}.relu")


def _zero_conv1x1(cin, cout):
    """A 1x1 score layer starting at zero (FCN's init for the skip scores: training starts from
    the coarser prediction and learns how much the finer one adds)."""
    layer = nn.Conv2d(cin, cout, 1)
    layer.weight.data = np.zeros_like(layer.weight.data)
    layer.bias.data = np.zeros_like(layer.bias.data)
    return layer


def fcn8s(num_classes=21, in_channels=3, width=16, batch_norm=True, convs_per_stage=2):
    """FCN-8s on a small VGG-like backbone (five stages of 3x3 convolutions and a 2x2 max pool).

    Channels ``width, 2w, 4w, 8w, 8w`` for the stages (pool1 /2 ... pool5 /32), then ``fc6`` (3x3,
    16w) and ``fc7`` (1x1, 16w) as convolutions, and the head of the paper:

    * ``score_fr``: the 1x1 classifier on fc7 (num_classes scores at /32);
    * ``upscore2``: ConvTranspose2d x2 to /16, added (``nn.Add``) to ``score_pool4``, a 1x1 score
      of pool4 (zero-initialised);
    * ``upscore_pool4``: x2 to /8, added to ``score_pool3`` (pool3's zero-initialised 1x1 score);
    * ``upscore8``: x8 to the input size.

    The transposed convolutions (kernel 2f, stride f, padding f/2) start as bilinear upsampling
    and are learned. Convolutions pad by 1 and the deconvolutions give exactly f times their input,
    so no crop layers are needed: any input whose height and width are multiples of 32 gives
    scores of exactly its size. ``batch_norm`` (default on: the backbone trains from scratch)
    puts a BatchNorm2d after every backbone convolution.
    """
    _check("fcn8s", num_classes=num_classes, in_channels=in_channels, width=width,
           convs_per_stage=convs_per_stage)
    x = minicnn.Input((in_channels, None, None))
    h, channels, pools = x, in_channels, {}
    for stage, mult in enumerate((1, 2, 4, 8, 8), start=1):
        for k in range(1, convs_per_stage + 1):
            h = _conv_bn_relu(h, channels, width * mult, f"conv{stage}_{k}", batch_norm)
            channels = width * mult
        h = nn.MaxPool2d(2, 2)(h, name=f"pool{stage}")
        pools[stage] = (h, channels)
    h = _conv_bn_relu(h, channels, 16 * width, "fc6", batch_norm)
    h = nn.ReLU()(nn.Conv2d(16 * width, 16 * width, 1)(h, name="fc7.conv"), name="fc7.relu")
    score = nn.Conv2d(16 * width, num_classes, 1)(h, name="score_fr")
    up = bilinear_upsampling(num_classes, 2)(score, name="upscore2")
    pool4, c4 = pools[4]
    score = nn.Add()([up, _zero_conv1x1(c4, num_classes)(pool4, name="score_pool4")],
                     name="fuse_pool4")
    up = bilinear_upsampling(num_classes, 2)(score, name="upscore_pool4")
    pool3, c3 = pools[3]
    score = nn.Add()([up, _zero_conv1x1(c3, num_classes)(pool3, name="score_pool3")],
                     name="fuse_pool3")
    out = bilinear_upsampling(num_classes, 8)(score, name="upscore8")
    return minicnn.Model(x, out)


def _double_conv(x, cin, cout, name):
    x = _conv_bn_relu(x, cin, cout, f"{name}.1")
    return _conv_bn_relu(x, cout, cout, f"{name}.2")


def unet(num_classes=2, in_channels=3, base=16, depth=3):
    """A small U-Net: ``depth`` down steps and as many up steps.

    Encoder level ``d`` (0 .. depth-1): two conv3x3-BN-ReLU blocks with ``base * 2**d`` channels,
    then a 2x2 max pool; the bottom has ``base * 2**depth`` channels. Each decoder level upsamples
    with ``ConvTranspose2d(c, c / 2, 2, stride=2)``, concatenates (``nn.Concat``) the encoder's
    features of that level, and applies two conv-BN-ReLU blocks; a 1x1 convolution ``classifier``
    gives the class scores. Inputs of any size divisible by ``2 ** depth`` give scores of exactly
    their size (convolutions pad by 1, unlike the paper's valid convolutions and crops).
    """
    _check("unet", num_classes=num_classes, in_channels=in_channels, base=base, depth=depth)
    x = minicnn.Input((in_channels, None, None))
    h, channels, skips = x, in_channels, []
    for d in range(depth):
        h = _double_conv(h, channels, base * 2 ** d, f"down{d}")
        channels = base * 2 ** d
        skips.append((h, channels))
        h = nn.MaxPool2d(2, 2)(h, name=f"pool{d}")
    h = _double_conv(h, channels, base * 2 ** depth, "bottom")
    channels = base * 2 ** depth
    for d in reversed(range(depth)):
        skip, skip_channels = skips[d]
        h = nn.ConvTranspose2d(channels, skip_channels, 2, stride=2)(h, name=f"up{d}")
        h = nn.Concat(1)([h, skip], name=f"cat{d}")
        h = _double_conv(h, 2 * skip_channels, skip_channels, f"dec{d}")
        channels = skip_channels
    out = nn.Conv2d(channels, num_classes, 1)(h, name="classifier")
    return minicnn.Model(x, out)


def size_multiple(model):
    """The size multiple a model's inputs need: 2 to the number of stride-2 max pools in it."""
    pools = sum(1 for _, m in model.named_modules() if isinstance(m, nn.MaxPool2d))
    return 2 ** pools


MODELS = {"fcn8s": fcn8s, "unet": unet}
