"""The GPU kernels of Swish (numba.cuda) and ``SwishCUDA``, minicnn's kernel contract on "cuda".

This module imports numba.cuda, so nothing imports it until a model runs on the GPU: the plugin's
``minicnn_device_kernels("cuda")`` hook (``plugin.py``) imports it when minicnn first uses the
``"cuda"`` device, after minicnn has set numba.cuda up (or its simulator, with
``NUMBA_ENABLE_CUDASIM=1``). A CPU-only process never loads it.

Layout as on the CPU: ``R = N * C`` rows of ``L`` elements, row ``r`` in channel ``r % C``; the
executor hands over numba device arrays (C-contiguous) and the kernels take flat views.

* forward and the input gradient: a grid-stride loop, one thread per element;
* the beta gradient: one block per channel; each thread sums a fixed subset of that channel's
  elements, then the block adds the partial sums in a fixed tree order in shared memory. No atomics,
  so the result is the same in every run.

``THREADS`` (threads per block, a power of two up to ``MAX_THREADS``) is a module setting; tests set
it small to force several blocks.
"""

import math

from minicnn.kernel import Kernel
from numba import cuda, float64

THREADS = 128
MAX_THREADS = 256


@cuda.jit(device=True)
def _sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@cuda.jit
def swish_forward_kernel(x, beta, y, channels, length):
    """x, y: flat arrays of R * L elements."""
    start = cuda.grid(1)
    step = cuda.gridsize(1)
    for i in range(start, x.shape[0], step):
        v = x[i]
        y[i] = v * _sigmoid(beta[(i // length) % channels] * v)


@cuda.jit
def swish_backward_input_kernel(x, beta, gy, gx, channels, length):
    start = cuda.grid(1)
    step = cuda.gridsize(1)
    for i in range(start, x.shape[0], step):
        v = x[i]
        z = beta[(i // length) % channels] * v
        s = _sigmoid(z)
        gx[i] = gy[i] * s * (1.0 + z * (1.0 - s))


@cuda.jit
def swish_backward_beta_kernel(x, beta, gy, gbeta, channels, length):
    """One block per channel (gridDim.x == C)."""
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    partial = cuda.shared.array(MAX_THREADS, float64)
    b = beta[c]
    batch = x.shape[0] // (channels * length)
    acc = 0.0
    for k in range(t, batch * length, threads):       # (n, i) pairs of this channel
        n = k // length
        i = (n * channels + c) * length + k % length
        v = x[i]
        s = _sigmoid(b * v)
        acc += gy[i] * v * v * s * (1.0 - s)
    partial[t] = acc
    cuda.syncthreads()
    width = threads // 2
    while width > 0:                                    # fixed-order tree: reproducible sums
        if t < width:
            partial[t] += partial[t + width]
        cuda.syncthreads()
        width //= 2
    if t == 0:
        gbeta[c] = partial[0]


def _blocks(size, threads):
    return max(1, min((size + threads - 1) // threads, 1024))


def _threads():
    if THREADS > MAX_THREADS or THREADS & (THREADS - 1):
        raise ValueError(f"THREADS must be a power of two up to {MAX_THREADS}, got {THREADS}")
    return THREADS


def forward(x, beta, y, channels, length):
    """Forward on device (or simulator) arrays: x, y flat views of (N, C, *) inputs."""
    threads = _threads()
    swish_forward_kernel[_blocks(x.shape[0], threads), threads](x, beta, y, channels, length)


def backward(x, beta, gy, gx, gbeta, channels, length):
    """Input gradient (when ``gx`` is not None) and beta gradient (when ``gbeta`` is not None)."""
    threads = _threads()
    if gx is not None:
        swish_backward_input_kernel[_blocks(x.shape[0], threads), threads](
            x, beta, gy, gx, channels, length)
    if gbeta is not None:
        swish_backward_beta_kernel[channels, threads](x, beta, gy, gbeta, channels, length)


def _flat(array):
    return array.reshape(array.size)


class SwishCUDA(Kernel):
    layer, device = "Swish", "cuda"

    def forward(self, layer, xs, ys, ws):
        x, c = xs[0], layer.num_features
        forward(_flat(x), layer.beta.data, _flat(ys[0]), c, x.size // (x.shape[0] * c))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        x, gx, c = xs[0], gxs[0], layer.num_features
        backward(_flat(x), layer.beta.data, _flat(gys[0]), None if gx is None else _flat(gx),
                 grads.get("beta"), c, x.size // (x.shape[0] * c))
