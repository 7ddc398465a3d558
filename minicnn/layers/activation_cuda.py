"""CUDA kernels of the element-wise activations (ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Identity).

One grid-stride kernel per direction over the flat arrays, the activation chosen by the op code
of ``activation_cpu`` (memory-bound: the branch is free, and two compiled kernels per dtype serve
every activation). Each element is written by one thread: results do not depend on the launch
shape. The arithmetic is the CPU kernel's, line for line.

The executor fuses an activation into the kernel that produces its input (convolution, Linear,
batch norm: their ``forward_fused``) when nothing else reads that input: those kernels call
:func:`activate` on each value they write, which saves this kernel's launch and its pass over
memory (see ``minicnn/fusion.py``).
"""

import math

from ..cuda_device import cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl
from .activation_cpu import ELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

#: the op code that means "no activation" to the kernels that take an epilogue
NO_EPILOGUE = -1


def epilogue_args(act):
    """``(op, alpha)`` for a kernel with an activation epilogue: ``act`` (an activation kernel's
    ``epilogue``), or no activation when it is None."""
    return act if act is not None else (NO_EPILOGUE, 0.0)


@cuda.jit(device=True, inline=True)
def activate(v, op, alpha):
    """The activation ``op`` of one value: the element-wise kernel and the fused epilogues of
    convolution, Linear and batch norm (``epilogue`` below) share it, so fused and separate runs
    give the same bits."""
    if op == RELU:
        return 0.0 if v <= 0 else v    # NaN stays NaN, as in PyTorch
    if op == LEAKY_RELU:
        return v if v > 0 else alpha * v
    if op == SIGMOID:
        if v >= 0:   # two forms so exp never overflows
            return 1.0 / (1.0 + math.exp(-v))
        e = math.exp(v)
        return e / (1.0 + e)
    if op == TANH:
        return math.tanh(v)
    if op == ELU:
        return v if v > 0 else alpha * (math.exp(v) - 1.0)
    return v


@cuda.jit
def activation_forward(x, y, op, alpha):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = activate(x[i], op, alpha)


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

    def epilogue(self, layer):
        """What a producer's kernel needs to apply this activation as it writes its output
        (``Kernel.forward_fused``): the op code and its parameter."""
        return self.op, float(self.alpha(layer))

    def forward(self, layer, xs, ys, ws):
        launch(activation_forward, xs[0].size, flat(xs[0]), flat(ys[0]), self.op,
               float(self.alpha(layer)))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            launch(activation_backward, xs[0].size, flat(xs[0]), flat(ys[0]), flat(gys[0]),
                   flat(gxs[0]), self.op, float(self.alpha(layer)))


class IdentityCUDA(ActivationCUDA):
    layer = "Identity"
    passes_gradient = True   # the executor hands gy on: backward runs only when called directly


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
