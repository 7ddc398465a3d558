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

Launches go through minicnn's public helpers in :mod:`minicnn.cuda_device`: ``launch`` for the
grid-stride loops and ``launch_blocks`` for the one-block-per-channel reduction, with ``flat``
views of the arrays. Threads per block (and the grid-stride loops' block cap) are minicnn's
settings, ``cuda_device.set_launch(threads_per_block=..., max_blocks=...)``, read at each launch;
tests shrink them to force several blocks. The reduction's shared array has a compile-time size,
``MAX_THREADS``: the beta gradient refuses a larger block.
"""

import math

from minicnn import cuda_device
from minicnn.cuda_device import flat, launch, launch_blocks
from minicnn.kernel import Kernel
from numba import cuda, float64

MAX_THREADS = 256     # the size of the beta reduction's shared array (a compile-time constant)


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
    live = threads                                      # fixed-order tree: reproducible sums,
    while live > 1:                                     # any block size
        half = (live + 1) // 2
        if t < live - half:
            partial[t] += partial[t + half]
        cuda.syncthreads()
        live = half
    if t == 0:
        gbeta[c] = partial[0]


def _reduction_threads():
    """minicnn's threads per block, refused when the shared array cannot hold them."""
    threads = cuda_device.THREADS_PER_BLOCK
    if threads > MAX_THREADS:
        raise ValueError(f"Swish's beta-gradient kernel runs at most {MAX_THREADS} threads per "
                         f"block (its shared array), but minicnn.cuda_device.set_launch set "
                         f"threads_per_block={threads}")
    return threads


def forward(x, beta, y, channels, length):
    """Forward on device (or simulator) arrays: x, y flat views of (N, C, *) inputs."""
    launch(swish_forward_kernel, x.shape[0], x, beta, y, channels, length)


def backward(x, beta, gy, gx, gbeta, channels, length):
    """Input gradient (when ``gx`` is not None) and beta gradient (when ``gbeta`` is not None)."""
    if gx is not None:
        launch(swish_backward_input_kernel, x.shape[0], x, beta, gy, gx, channels, length)
    if gbeta is not None:
        launch_blocks(swish_backward_beta_kernel, channels, _reduction_threads(), x, beta, gy,
                      gbeta, channels, length)


class SwishCUDA(Kernel):
    layer, device = "Swish", "cuda"

    def forward(self, layer, xs, ys, ws):
        x, c = xs[0], layer.num_features
        forward(flat(x), layer.beta.data, flat(ys[0]), c, x.size // (x.shape[0] * c))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        x, gx, c = xs[0], gxs[0], layer.num_features
        backward(flat(x), layer.beta.data, flat(gys[0]), None if gx is None else flat(gx),
                 grads.get("beta"), c, x.size // (x.shape[0] * c))
