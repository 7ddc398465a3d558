"""The model zoo: classic CNNs as minicnn models, registered through the ``minicnn_models`` hook.

Every constructor is ``f(num_classes=..., in_channels=..., **options)`` and returns a fresh model
with newly drawn weights (``minicnn.manual_seed`` first for reproducible ones). Image models are
functional :class:`minicnn.Model` objects taking (N, C, H, W) batches; the ImageNet models use
torchvision's parameter names, so torchvision state dicts load by name.

==================  ==========================  ============  ===================
name                paper                       input         parameters
==================  ==========================  ============  ===================
``mlp``             (baseline)                  784 features  669,706
``lenet5``          LeCun et al. 1998           1x28x28       61,706
``lenet_caffe``     Caffe MNIST tutorial        1x28x28       431,080
``alexnet``         Krizhevsky et al. 2012      3x224x224     61,100,840
``vgg11/13/16/19``  Simonyan, Zisserman 2014    3x224x224     132.9M ... 143.7M
``resnet18/34/50``  He et al. 2015              3x224x224     11.7M, 21.8M, 25.6M
``resnet20/56``     He et al. 2015 (CIFAR, B)   3x32x32       272,474 / 855,770
``plain20/56``      He et al. 2015 (no skips)   3x32x32       269,722 / 853,018
``densenet121``     Huang et al. 2017           3x224x224     7,978,856
``densenet_cifar``  Huang et al. 2017 (BC)      3x32x32       769,162 (L=100)
``nin``             Lin et al. 2013             3x32x32       966,986
``allconv``         Springenberg et al. 2014    3x32x32       1,369,738
==================  ==========================  ============  ===================

(Parameter counts for 1000 ImageNet / 10 CIFAR or MNIST classes.)
"""

from ..registry import hookimpl
from .alexnet import alexnet
from .allconv import allconv
from .densenet import (
    build_densenet,
    dense_block,
    dense_layer,
    densenet121,
    densenet_cifar,
    transition,
)
from .lenet import lenet5, lenet_caffe
from .mlp import mlp
from .nin import nin
from .resnet import (
    basic_block,
    bottleneck,
    cifar_resnet,
    plain20,
    plain56,
    resnet18,
    resnet20,
    resnet34,
    resnet50,
    resnet56,
)
from .vgg import build_vgg, vgg11, vgg13, vgg16, vgg19

MODELS = {
    "mlp": mlp,
    "lenet5": lenet5,
    "lenet_caffe": lenet_caffe,
    "alexnet": alexnet,
    "vgg11": vgg11,
    "vgg13": vgg13,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "plain20": plain20,
    "plain56": plain56,
    "densenet121": densenet121,
    "densenet_cifar": densenet_cifar,
    "nin": nin,
    "allconv": allconv,
}


@hookimpl
def minicnn_models():
    return dict(MODELS)


__all__ = sorted(MODELS) + ["basic_block", "bottleneck", "build_densenet", "build_vgg",
                            "cifar_resnet", "dense_block", "dense_layer", "transition"]
