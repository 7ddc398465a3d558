"""Block reductions for CUDA kernels: a fixed-order tree sum in shared memory, and how to cut long
sums into (row, chunk) blocks. No atomics anywhere: the bits depend on the shapes and the launch
settings only, run after run.

A kernel that reduces calls ``block_sum(tree, value, t, threads)`` with ``tree =
cuda.shared.array(TREE, float64)`` (its own shared array: a compile-time size), ``t`` its thread
index and ``threads`` the block size (a power of two from :func:`block_shape`); every thread of
the block must call it, and every thread gets the sum back.

Importing this module also makes numba's CUDA simulator safe for shared arrays and for device
functions of another module than their kernel's, such as ``block_sum`` (the two
``_simulator_..._thread_safe`` functions at the end).
"""

import contextlib
import functools
import sys
import threading

import numpy as np

from . import cuda_device
from .cuda_device import cuda

TREE = 256            # the most threads a tree reduction block may have
MAX_SPLITS = 64       # chunks per row
TARGET_BLOCKS = 512   # enough blocks to fill a large GPU several times over
MIN_PER_THREAD = 16   # a chunk gives each thread at least this many values


def block_shape(rows, length):
    """(threads per block, chunks per row) for ``rows`` sums of ``length`` values each: a
    power-of-two block no larger than the launch settings' (tests shrink them) and enough chunks
    to give the GPU about TARGET_BLOCKS blocks, each thread at least MIN_PER_THREAD values."""
    return _block_shape(rows, length, min(TREE, cuda_device.THREADS_PER_BLOCK), MAX_SPLITS,
                        TARGET_BLOCKS, MIN_PER_THREAD)


@functools.lru_cache(maxsize=4096)   # every batch-norm launch asks, with the same few shapes
def _block_shape(rows, length, limit, max_splits, target_blocks, min_per_thread):
    threads = 1
    while threads * 2 <= limit:
        threads *= 2
    by_size = max(1, length // (threads * min_per_thread))
    splits = min(max_splits, by_size, max(1, -(-target_blocks // max(1, rows))))
    return threads, splits


@cuda.jit(device=True)
def block_sum(tree, value, t, threads):
    """The sum of every thread's ``value`` in a fixed tree order, returned to every thread."""
    tree[t] = value
    cuda.syncthreads()
    width = threads // 2
    while width > 0:
        if t < width:
            tree[t] += tree[t + width]
        cuda.syncthreads()
        width //= 2
    total = tree[0]
    cuda.syncthreads()     # everyone has read it before the tree is reused
    return total


@cuda.jit(device=True)
def chunk_of(block, splits, length):
    """(row, first, stop) of the values a (row, chunk) block sums: block = row * splits + chunk."""
    size = (length + splits - 1) // splits
    first = (block % splits) * size
    stop = first + size
    if stop > length:
        stop = length
    return block // splits, first, stop


def _simulator_shared_arrays_thread_safe():
    """numba's CUDA simulator creates a launch's shared array when the first thread reaches it,
    with no lock: two threads racing there each make one and no longer share (rare wrong sums,
    seen in gradchecks). Serialise that creation; simulator only, installed once."""
    from numba import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support
    cls = kernelapi.FakeCUDAShared
    if getattr(cls, "minicnn_lock", None) is not None:
        return
    lock = threading.Lock()
    dynamic = cls.array

    def array(self, shape, dtype):
        if shape == 0:
            return dynamic(self, shape, dtype)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)   # one array per source line
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = self._allocations[caller] = np.empty(shape, dtype)
        return res

    cls.array = array
    cls.minicnn_lock = lock


def _simulator_device_calls_thread_safe():
    """The simulator runs a device function with its module's ``cuda`` swapped for the fake one,
    thread by thread, and swaps it back as each thread leaves: with a block's threads inside the
    same function at once, the first to leave restores the real module under the others (seen as
    "module 'numba.cuda' has no attribute 'syncthreads'"). Count who is inside: the first in
    swaps, the last out restores. Simulator only, installed once."""
    from numba.cuda.simulator import kernel
    if getattr(kernel.swapped_cuda_module, "minicnn_counted", False):
        return
    lock = threading.Lock()
    inside = {}     # id(module globals) -> [threads inside, the real entries]

    @contextlib.contextmanager
    def swapped_cuda_module(fn, fake_cuda_module):
        from numba import cuda
        names = fn.__globals__
        with lock:
            entry = inside.get(id(names))
            if entry is None:
                real = {k: v for k, v in names.items() if v is cuda}
                names.update((k, fake_cuda_module) for k in real)
                entry = inside[id(names)] = [0, real]
            entry[0] += 1
        try:
            yield
        finally:
            with lock:
                entry[0] -= 1
                if entry[0] == 0:
                    names.update(entry[1])
                    del inside[id(names)]

    swapped_cuda_module.minicnn_counted = True
    kernel.swapped_cuda_module = swapped_cuda_module


if cuda_device.SIMULATOR:
    _simulator_shared_arrays_thread_safe()
    _simulator_device_calls_thread_safe()
