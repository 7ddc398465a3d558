"""LeNet-5 (LeCun et al. 1998) and the Caffe tutorial's LeNet, for 28x28 digits (MNIST)."""

from .. import nn
from ._util import check_positive, image_model


def lenet5(num_classes=10, in_channels=1, classic=False):
    """LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied to document
    recognition"), for 28x28 inputs: (N, in_channels, 28, 28) -> (N, num_classes) logits.

    conv1 6@5x5 (padding 2, so 28x28 plays the paper's 32x32) - pool 2x2 - conv2 16@5x5 - pool
    2x2 - fc1 120 - fc2 84 - fc3 num_classes. The modern default uses ReLU and max pooling;
    ``classic=True`` uses tanh and average pooling (the paper's subsampling layers without their
    trainable scale, a full C3 connection table instead of the paper's partial one, and a plain
    linear output instead of the RBF units). 61,706 parameters for 10 classes.

    Node names: conv1, act1, pool1, conv2, act2, pool2, flatten, fc1, act3, fc2, act4, fc3.
    """
    act = nn.Tanh if classic else nn.ReLU

    def pool():
        return nn.AvgPool2d(2, 2) if classic else nn.MaxPool2d(2, 2)

    check_positive("lenet5", num_classes=num_classes, in_channels=in_channels)
    layers = [
        ("conv1", nn.Conv2d(in_channels, 6, 5, padding=2)), ("act1", act()), ("pool1", pool()),
        ("conv2", nn.Conv2d(6, 16, 5)), ("act2", act()), ("pool2", pool()),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * 5 * 5, 120)), ("act3", act()),
        ("fc2", nn.Linear(120, 84)), ("act4", act()),
        ("fc3", nn.Linear(84, num_classes)),
    ]
    return image_model(layers, in_channels, 28)


def lenet_caffe(num_classes=10, in_channels=1):
    """The LeNet of Caffe's MNIST tutorial (``examples/mnist/lenet_train_test.prototxt``), for 28x28
    inputs: conv1 20@5x5 - maxpool 2x2 - conv2 50@5x5 - maxpool 2x2 - ip1 500 - ReLU - ip2
    num_classes. (N, in_channels, 28, 28) -> (N, num_classes) logits; 431,080 parameters for 10
    classes. No nonlinearity after the convolutions, exactly as the tutorial.
    """
    check_positive("lenet_caffe", num_classes=num_classes, in_channels=in_channels)
    layers = [
        ("conv1", nn.Conv2d(in_channels, 20, 5)), ("pool1", nn.MaxPool2d(2, 2)),
        ("conv2", nn.Conv2d(20, 50, 5)), ("pool2", nn.MaxPool2d(2, 2)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(50 * 4 * 4, 500)), ("relu1", nn.ReLU()),
        ("ip2", nn.Linear(500, num_classes)),
    ]
    return image_model(layers, in_channels, 28)
