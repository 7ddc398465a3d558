"""CPU kernels of the element-wise activations.

One loop per direction over a span of a flat array, with the activation chosen by an op code: the
layers are memory-bound, so the branch costs nothing measurable and the number of compiled kernels
(and JIT time) stays small. A serial driver runs small tensors in one call; a parallel one splits
large tensors into spans over Numba's threads. Arrays are flat views of the executor's contiguous
buffers.
"""

import math

from numba import prange

from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl

IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH, ELU = range(6)
SPAN = 1 << 14   # elements per parallel chunk; smaller tensors run serially (a parallel call
                 # costs microseconds of thread wake-up, more than the work itself)


@cpu_kernel(parallel=False)
def _forward_span(xf, yf, op, alpha, lo, hi):
    for i in range(lo, hi):
        v = xf[i]
        if op == RELU:
            yf[i] = 0.0 if v <= 0 else v    # NaN stays NaN, as in PyTorch
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


@cpu_kernel(parallel=False)
def _backward_span(xf, yf, gyf, gxf, op, alpha, lo, hi):
    for i in range(lo, hi):
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


@cpu_kernel(parallel=False)
def forward_serial(x, y, op, alpha):
    _forward_span(x.reshape(-1), y.reshape(-1), op, alpha, 0, x.size)


@cpu_kernel
def forward_parallel(x, y, op, alpha):
    xf, yf = x.reshape(-1), y.reshape(-1)
    chunks = (x.size + SPAN - 1) // SPAN
    for c in prange(chunks):
        _forward_span(xf, yf, op, alpha, c * SPAN, min((c + 1) * SPAN, x.size))


@cpu_kernel(parallel=False)
def backward_serial(x, y, gy, gx, op, alpha):
    _backward_span(x.reshape(-1), y.reshape(-1), gy.reshape(-1), gx.reshape(-1), op, alpha, 0,
                   x.size)


@cpu_kernel
def backward_parallel(x, y, gy, gx, op, alpha):
    xf, yf, gyf, gxf = x.reshape(-1), y.reshape(-1), gy.reshape(-1), gx.reshape(-1)
    chunks = (x.size + SPAN - 1) // SPAN
    for c in prange(chunks):
        _backward_span(xf, yf, gyf, gxf, op, alpha, c * SPAN, min((c + 1) * SPAN, x.size))


class ActivationCPU(Kernel):
    device = "cpu"
    op = IDENTITY

    def alpha(self, layer):
        return 0.0

    def forward(self, layer, xs, ys, ws):
        run = forward_parallel if xs[0].size > 4 * SPAN else forward_serial
        run(xs[0], ys[0], self.op, self.alpha(layer))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            run = backward_parallel if xs[0].size > 4 * SPAN else backward_serial
            run(xs[0], ys[0], gys[0], gxs[0], self.op, self.alpha(layer))


class IdentityCPU(ActivationCPU):
    layer = "Identity"
    passes_gradient = True   # the executor hands gy on: backward runs only when called directly


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
