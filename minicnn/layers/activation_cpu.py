"""CPU kernels of the element-wise activations.

One parallel loop per direction, with the activation chosen by an op code: the layers are
memory-bound, so the branch costs nothing measurable, and it keeps the number of compiled kernels
(and JIT time) small. Arrays are treated as flat (the executor hands over contiguous buffers).
"""

import math

from numba import prange

from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl

IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH, ELU = range(6)


@cpu_kernel
def activation_forward(x, y, op, alpha):
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    for i in prange(xf.size):
        v = xf[i]
        if op == RELU:
            yf[i] = v if v > 0 else 0.0
        elif op == LEAKY_RELU:
            yf[i] = v if v > 0 else alpha * v
        elif op == SIGMOID:
            if v >= 0:   # two forms so exp never overflows
                yf[i] = 1.0 / (1.0 + math.exp(-v))
            else:
                e = math.exp(v)
                yf[i] = e / (1.0 + e)
        elif op == TANH:
            yf[i] = math.tanh(v)
        elif op == ELU:
            yf[i] = v if v > 0 else alpha * (math.exp(v) - 1.0)
        else:
            yf[i] = v


@cpu_kernel
def activation_backward(x, y, gy, gx, op, alpha):
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    gyf = gy.reshape(-1)
    gxf = gx.reshape(-1)
    for i in prange(xf.size):
        g = gyf[i]
        if op == RELU:
            gxf[i] = g if xf[i] > 0 else 0.0
        elif op == LEAKY_RELU:
            gxf[i] = g if xf[i] > 0 else alpha * g
        elif op == SIGMOID:
            gxf[i] = g * yf[i] * (1.0 - yf[i])
        elif op == TANH:
            gxf[i] = g * (1.0 - yf[i] * yf[i])
        elif op == ELU:
            gxf[i] = g if xf[i] > 0 else g * (yf[i] + alpha)
        else:
            gxf[i] = g


class ActivationCPU(Kernel):
    device = "cpu"
    op = IDENTITY

    def alpha(self, layer):
        return 0.0

    def forward(self, layer, xs, ys, ws):
        activation_forward(xs[0], ys[0], self.op, self.alpha(layer))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            activation_backward(xs[0], ys[0], gys[0], gxs[0], self.op, self.alpha(layer))


class IdentityCPU(ActivationCPU):
    layer = "Identity"


class ReLUCPU(ActivationCPU):
    layer, op = "ReLU", RELU


class LeakyReLUCPU(ActivationCPU):
    layer, op = "LeakyReLU", LEAKY_RELU

    def alpha(self, layer):
        return layer.negative_slope


class SigmoidCPU(ActivationCPU):
    layer, op = "Sigmoid", SIGMOID


class TanhCPU(ActivationCPU):
    layer, op = "Tanh", TANH


class ELUCPU(ActivationCPU):
    layer, op = "ELU", ELU

    def alpha(self, layer):
        return layer.alpha


@hookimpl
def minicnn_kernels():
    return [IdentityCPU, ReLUCPU, LeakyReLUCPU, SigmoidCPU, TanhCPU, ELUCPU]
