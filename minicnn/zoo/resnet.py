"""Residual networks (He, Zhang, Ren, Sun 2015, "Deep residual learning for image recognition").

ImageNet models in torchvision's layout (``resnet18``, ``resnet34``, ``resnet50``) and the
paper's CIFAR-10 models (``cifar_resnet(depth)``: ``resnet20``, ``resnet56``...) with their plain
twins (``plain20``, ``plain56``), which have the same layers without the skip connections: the
degradation-problem experiment of the paper's Figure 6.

A block is a small functional :class:`minicnn.Model`; its node names are torchvision's module names,
so the state dict keys match torchvision's (``layer2.0.downsample.0.weight``)::

    basic_block:  conv1 - bn1 - relu - conv2 - bn2 ---+--- add - relu_out
                  x ------------------ [downsample] --+

The skip is added before the last ReLU (``a2 = g(W2 a1 + b2 + a0)``); when the block changes the
shape (stride 2 or more channels) the shortcut is a projection, a 1x1 convolution with the block's
stride followed by batch norm (the paper's option B; torchvision does the same).
"""

from .. import nn
from ..errors import ConfigError
from ..graph import Model, Sequential
from ..random import no_init
from ..symbolic import Input
from . import _init
from ._util import check_positive, image_model


def _conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _projection(cin, cout, stride):
    """Option B shortcut: 1x1 convolution (stride ``stride``) and batch norm."""
    return Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


def basic_block(in_planes, planes, stride=1, shortcut="auto"):
    """ResNet's basic block (two 3x3 convolutions) as a functional Model taking any image size.

    (N, in_planes, H, W) -> (N, planes, ceil(H / stride), ceil(W / stride)). ``shortcut``: "auto"
    (identity when the shape is kept, else a projection), "projection" (always), "identity" (never;
    the shapes must then agree) or "none" (no skip at all: a plain block). Nodes: conv1, bn1, relu,
    conv2, bn2, [downsample,] add, relu_out (plain blocks: conv1, bn1, relu, conv2, bn2, relu_out).
    """
    check_positive("basic_block", in_planes=in_planes, planes=planes, stride=stride)
    x = Input((in_planes, None, None))
    h = _conv3x3(in_planes, planes, stride)(x, name="conv1")
    h = nn.BatchNorm2d(planes)(h, name="bn1")
    h = nn.ReLU()(h, name="relu")
    h = _conv3x3(planes, planes)(h, name="conv2")
    h = nn.BatchNorm2d(planes)(h, name="bn2")
    h = _merge(x, h, in_planes, planes, stride, shortcut)
    return Model(x, nn.ReLU()(h, name="relu_out"))


def bottleneck(in_planes, planes, stride=1, shortcut="auto", expansion=4):
    """ResNet's bottleneck block (1x1 reduce, 3x3, 1x1 expand to ``planes * expansion``), with the
    stride on the 3x3 convolution as torchvision (ResNet v1.5). Nodes: conv1, bn1, relu1, conv2,
    bn2, relu2, conv3, bn3, [downsample,] add, relu_out. ``shortcut`` as in :func:`basic_block`.
    """
    check_positive("bottleneck", in_planes=in_planes, planes=planes, stride=stride,
                   expansion=expansion)
    out_planes = planes * expansion
    x = Input((in_planes, None, None))
    h = nn.Conv2d(in_planes, planes, 1, bias=False)(x, name="conv1")
    h = nn.ReLU()(nn.BatchNorm2d(planes)(h, name="bn1"), name="relu1")
    h = _conv3x3(planes, planes, stride)(h, name="conv2")
    h = nn.ReLU()(nn.BatchNorm2d(planes)(h, name="bn2"), name="relu2")
    h = nn.Conv2d(planes, out_planes, 1, bias=False)(h, name="conv3")
    h = nn.BatchNorm2d(out_planes)(h, name="bn3")
    h = _merge(x, h, in_planes, out_planes, stride, shortcut)
    return Model(x, nn.ReLU()(h, name="relu_out"))


def _merge(x, h, cin, cout, stride, shortcut):
    if shortcut not in ("auto", "projection", "identity", "none"):
        raise ConfigError(f"resnet block: shortcut must be 'auto', 'projection', 'identity' or "
                          f"'none', got {shortcut!r}")
    if shortcut == "none":
        return h
    if shortcut == "projection" or (shortcut == "auto" and (stride != 1 or cin != cout)):
        return nn.Add()([h, _projection(cin, cout, stride)(x, name="downsample")], name="add")
    if stride != 1 or cin != cout:
        raise ConfigError(f"resnet block: an identity shortcut needs stride 1 and equal channels, "
                          f"got stride {stride}, {cin} -> {cout} channels")
    return nn.Add()([h, x], name="add")


def _stage(block, in_planes, planes, blocks, stride, shortcut="auto", expansion=1):
    """``blocks`` blocks in a Sequential named "0", "1", ...; the first one has the stride."""
    kwargs = {"expansion": expansion} if block is bottleneck else {}
    layers = [block(in_planes, planes, stride, shortcut, **kwargs)]
    for _ in range(1, blocks):
        layers.append(block(planes * expansion, planes, 1, shortcut, **kwargs))
    return Sequential(*layers)


def _zero_init_last_bn(model, last_bn):
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == last_bn and isinstance(module, nn.BatchNorm2d):
            _init.constant(module.weight, 0.0)


def _imagenet_resnet(name, block, layers, num_classes, in_channels, zero_init_residual):
    check_positive(name, num_classes=num_classes, in_channels=in_channels)
    expansion = 4 if block is bottleneck else 1
    with no_init():    # drawn below as torchvision does
        children = [
            ("conv1", nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)),
            ("bn1", nn.BatchNorm2d(64)), ("relu", nn.ReLU()),
            ("maxpool", nn.MaxPool2d(3, stride=2, padding=1)),
        ]
        planes_in = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            children.append((f"layer{i + 1}", _stage(block, planes_in, planes, blocks,
                                                     1 if i == 0 else 2, expansion=expansion)))
            planes_in = planes * expansion
        children += [("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten()),
                     ("fc", nn.Linear(512 * expansion, num_classes))]
        model = image_model(children, in_channels)
    _init.init_modules(model, conv=_init.conv_kaiming_fan_out, linear=_init.linear_default)
    if zero_init_residual:
        _zero_init_last_bn(model, "bn3" if block is bottleneck else "bn2")
    return model


_IMAGENET_DOC = """{title} in torchvision's layout, for 224x224 ImageNet images.

    conv1 7x7/2 (64) - bn1 - relu - maxpool 3x3/2 - layer1..layer4 ({blocks} {kind} blocks of 64,
    128, 256, 512 {unit}; layer2..4 start with stride 2 and a projection shortcut "downsample")
    - avgpool (AdaptiveAvgPool2d((1, 1))) - flatten - fc. (N, in_channels, H, W) -> (N,
    num_classes) logits; any H, W >= 1 works (each stride-2 stage halves the size, rounding up).
    State dict keys are torchvision's (``layer1.0.conv1.weight``,
    ``layer2.0.downsample.1.running_mean``, ``fc.weight``). Initialisation as torchvision:
    convolutions kaiming normal (fan_out, ReLU), batch norm weight 1 and bias 0, fc PyTorch's
    default; ``zero_init_residual=True`` zeroes the last batch norm weight of every block, so each
    residual branch starts at zero. {params} parameters for 1000 classes.
    """


def resnet18(num_classes=1000, in_channels=3, zero_init_residual=False):
    return _imagenet_resnet("resnet18", basic_block, (2, 2, 2, 2), num_classes, in_channels,
                            zero_init_residual)


def resnet34(num_classes=1000, in_channels=3, zero_init_residual=False):
    return _imagenet_resnet("resnet34", basic_block, (3, 4, 6, 3), num_classes, in_channels,
                            zero_init_residual)


def resnet50(num_classes=1000, in_channels=3, zero_init_residual=False):
    return _imagenet_resnet("resnet50", bottleneck, (3, 4, 6, 3), num_classes, in_channels,
                            zero_init_residual)


resnet18.__doc__ = _IMAGENET_DOC.format(title="ResNet-18", blocks="2, 2, 2, 2", kind="basic",
                                        unit="channels", params="11,689,512")
resnet34.__doc__ = _IMAGENET_DOC.format(title="ResNet-34", blocks="3, 4, 6, 3", kind="basic",
                                        unit="channels", params="21,797,672")
resnet50.__doc__ = _IMAGENET_DOC.format(
    title="ResNet-50 (v1.5: the stride on the 3x3 convolution)", blocks="3, 4, 6, 3",
    kind="bottleneck", unit="bottleneck channels, expanded 4 times", params="25,557,032")


def cifar_resnet(depth=20, num_classes=10, in_channels=3, plain=False, zero_init_residual=False):
    """The CIFAR-10 networks of He et al. 2015, section 4.2, for 32x32 images.

    ``depth`` = 6n + 2: conv 3x3 (16) - bn - relu - three stages of n basic blocks with 16, 32,
    64 channels (feature maps 32, 16, 8; the first block of stages 2 and 3 has stride 2) - global
    average pooling - fc. (N, in_channels, H, W) -> (N, num_classes) logits, any H, W >= 1.

    Shortcuts: identity inside a stage and, where the shape changes, **option B** of the paper (a
    1x1 convolution with stride 2 plus batch norm). The paper's CIFAR results use option A
    (subsampling and zero-padded channels, no parameters; minicnn has no channel-padding layer for
    it): option B adds 16*32 + 2*32 + 32*64 + 2*64 = 2,752 parameters at any depth. With
    ``plain=True`` there is no skip at all (the paper's "plain" nets). Initialisation as the
    ImageNet models (kaiming normal fan_out for convolutions, batch norm 1 and 0).

    Names: conv1, bn1, relu, layer1..layer3 (blocks "0".."n-1", each conv1, bn1, conv2, bn2 and
    downsample.0 / downsample.1 where projected), avgpool, flatten, fc.
    """
    name = f"{'plain' if plain else 'resnet'}{depth}"
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ConfigError(f"{name}: depth must be 6n + 2 (20, 32, 44, 56, 110...), got {depth!r}")
    check_positive(name, num_classes=num_classes, in_channels=in_channels)
    n = (depth - 2) // 6
    shortcut = "none" if plain else "auto"
    with no_init():
        children = [("conv1", _conv3x3(in_channels, 16)), ("bn1", nn.BatchNorm2d(16)),
                    ("relu", nn.ReLU())]
        planes_in = 16
        for i, planes in enumerate((16, 32, 64)):
            children.append((f"layer{i + 1}", _stage(basic_block, planes_in, planes, n,
                                                     1 if i == 0 else 2, shortcut)))
            planes_in = planes
        children += [("avgpool", nn.GlobalAvgPool2d()), ("flatten", nn.Flatten()),
                     ("fc", nn.Linear(64, num_classes))]
        model = image_model(children, in_channels)
    _init.init_modules(model, conv=_init.conv_kaiming_fan_out, linear=_init.linear_default)
    if zero_init_residual and not plain:
        _zero_init_last_bn(model, "bn2")
    return model


def resnet20(num_classes=10, in_channels=3, zero_init_residual=False):
    """ResNet-20 for CIFAR-10 (n = 3), option B shortcuts: 272,474 parameters for 10 classes
    (the paper's 0.27M is for option A: 269,722). See :func:`cifar_resnet`."""
    return cifar_resnet(20, num_classes, in_channels, False, zero_init_residual)


def resnet56(num_classes=10, in_channels=3, zero_init_residual=False):
    """ResNet-56 for CIFAR-10 (n = 9), option B shortcuts. See :func:`cifar_resnet`."""
    return cifar_resnet(56, num_classes, in_channels, False, zero_init_residual)


def plain20(num_classes=10, in_channels=3):
    """Plain-20: ResNet-20 without skip connections (269,722 parameters for 10 classes, option A's
    count, since there are no projections). See :func:`cifar_resnet`."""
    return cifar_resnet(20, num_classes, in_channels, plain=True)


def plain56(num_classes=10, in_channels=3):
    """Plain-56: ResNet-56 without skip connections. See :func:`cifar_resnet`."""
    return cifar_resnet(56, num_classes, in_channels, plain=True)


__all__ = ["basic_block", "bottleneck", "cifar_resnet", "plain20", "plain56", "resnet18",
           "resnet20", "resnet34", "resnet50", "resnet56"]
