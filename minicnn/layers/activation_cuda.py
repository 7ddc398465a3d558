"""CUDA kernels of the element-wise activations (ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Identity).

One grid-stride kernel per direction over the flat arrays, the activation chosen by the op code
of ``activation_cpu`` (memory-bound: the branch is free, and two compiled kernels per dtype serve
every activation). Each element is written by one thread: results do not depend on the launch
shape. The arithmetic is the CPU kernel's, line for line.
"""

import math

from ..cuda_device import cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl
from .activation_cpu import ELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH


@cuda.jit
def activation_forward(x, y, op, alpha):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        if op == RELU:
            y[i] = 0.0 if v <= 0 else v    # NaN stays NaN, as in PyTorch
        elif op == LEAKY_RELU:
            y[i] = v if v > 0 else alpha * v
        elif op == SIGMOID:
            if v >= 0:   # two forms so exp never overflows
                y[i] = 1.0 / (1.0 + math.exp(-v))
            else:
                e = math.exp(v)
                y[i] = e / (1.0 + e)
        elif op == TANH:
            y[i] = math.tanh(v)
        elif op == ELU:
            y[i] = v if v > 0 else alpha * (math.exp(v) - 1.0)
        else:
            y[i] = v


@cuda.jit
def activation_backward(x, y, gy, gx, op, alpha):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        g = gy[i]
        if op == RELU:
            gx[i] = g if x[i] > 0 else 0.0
        elif op == LEAKY_RELU:
            gx[i] = g if x[i] > 0 else alpha * g
        elif op == SIGMOID:
            gx[i] = g * y[i] * (1.0 - y[i])
        elif op == TANH:
            gx[i] = g * (1.0 - y[i] * y[i])
        elif op == ELU:
            gx[i] = g if x[i] > 0 else g * (y[i] + alpha)
        else:
            gx[i] = g


class ActivationCUDA(Kernel):
    device = "cuda"
    op = IDENTITY

    def alpha(self, layer):
        return 0.0

    def forward(self, layer, xs, ys, ws):
        launch(activation_forward, xs[0].size, flat(xs[0]), flat(ys[0]), self.op,
               float(self.alpha(layer)))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            launch(activation_backward, xs[0].size, flat(xs[0]), flat(ys[0]), flat(gys[0]),
                   flat(gxs[0]), self.op, float(self.alpha(layer)))


class IdentityCUDA(ActivationCUDA):
    layer = "Identity"


class ReLUCUDA(ActivationCUDA):
    layer, op = "ReLU", RELU


class LeakyReLUCUDA(ActivationCUDA):
    layer, op = "LeakyReLU", LEAKY_RELU

    def alpha(self, layer):
        return layer.negative_slope


class SigmoidCUDA(ActivationCUDA):
    layer, op = "Sigmoid", SIGMOID


class TanhCUDA(ActivationCUDA):
    layer, op = "Tanh", TANH


class ELUCUDA(ActivationCUDA):
    layer, op = "ELU", ELU

    def alpha(self, layer):
        return layer.alpha


@hookimpl
def minicnn_kernels():
    return [IdentityCUDA, ReLUCUDA, LeakyReLUCUDA, SigmoidCUDA, TanhCUDA, ELUCUDA]
