"""The ``"cuda"`` device: numba.cuda device arrays, the launch helpers, and the CUDA kernel modules.

This module is imported only when the cuda device is asked for (``get_device("cuda")``,
``model.to("cuda")``): ``import minicnn`` never touches CUDA. Set ``NUMBA_ENABLE_CUDASIM=1`` before
the first import of numba.cuda to run every kernel on numba's CUDA simulator (CI does; it is slow:
keep shapes tiny and ``set_launch(threads_per_block=8)``).

Launches. Most kernels are grid-stride loops over ``n`` work items: ``launch(kernel, n, *args)``
runs ``kernel[blocks, THREADS_PER_BLOCK](*args)`` with ``blocks = min(MAX_BLOCKS, ceil(n /
THREADS_PER_BLOCK))``. A kernel that needs a fixed grid (one block per channel with a
shared-memory reduction, say) uses ``launch_blocks(kernel, blocks, threads, *args)``. Both keep
the configured launcher in one cache, per (kernel, n) and per (kernel, blocks, threads), so a
training step's launches do no configuration work; geometry (sizes, strides, padding) travels as
one small device int64 array uploaded once per layer and shape (``const_array``), not as many
scalar arguments (numba's per-argument marshalling is most of a launch's 20-90 us host cost; on a
real GPU ``minicnn/cuda_launch.py`` does it once per array instead of once per launch).

For plugin authors. A plugin's CUDA kernels use these public names instead of launchers of their
own (``plugins/template/minicnn_swish/swish_cuda.py`` shows them all):

* ``launch(kernel, n, *args)``: a grid-stride kernel over ``n`` work items (nothing when n is 0);
* ``launch_blocks(kernel, blocks, threads, *args)``: exactly ``blocks`` blocks of ``threads``;
* ``flat(a)``: the 1-D view of a C-contiguous device array that kernels take (cached);
* ``const_array(values, dtype=np.int64)``: a small device table of numbers, cached by value;
* ``zero_of(dtype)``: a typed zero scalar to start sums from (float32 sums stay float32);
* ``set_launch(threads_per_block=None, max_blocks=None)``: the launch settings (tests shrink
  them to force several blocks); read ``THREADS_PER_BLOCK`` and ``MAX_BLOCKS`` through this
  module (``cuda_device.THREADS_PER_BLOCK``) at launch time, never copy them at import;
* ``SIMULATOR``: whether numba's CUDA simulator runs the kernels; ``cuda``: numba.cuda itself.

A plugin's CUDA module imports numba.cuda and this module, so it must be imported only from the
plugin's ``minicnn_device_kernels("cuda")`` hook, never when the plugin is imported: minicnn calls
that hook when the device is first used, after numba.cuda (or its simulator) is set up. Every
launch is recorded in ``RECORD`` when it is a set (``tests/test_cuda_ptx.py`` compiles what it
recorded to PTX).

numpy 2.5 removed ``np.row_stack``, which numba-cuda 0.30.4 still registers an overload for when
it first compiles a kernel; a stand-in (forwarding to ``np.vstack``) is installed before numba.cuda
is imported, only when numpy lacks the name.
"""

import functools
import logging
import math
import os

import numpy as np

log = logging.getLogger("minicnn.device")

THREADS_PER_BLOCK = 128   # tests shrink this (8) to force several blocks on tiny shapes
MAX_BLOCKS = 2048         # grid-stride loops cover the rest; the simulator wants few threads


def _install_row_stack_shim():
    """Give numpy 2.5 back the ``row_stack`` name numba-cuda 0.30.4 overloads (an alias of
    vstack); a no-op where numpy still has it."""
    if hasattr(np, "row_stack"):
        return False

    def row_stack(tup, *, dtype=None, casting="same_kind"):
        return np.vstack(tup, dtype=dtype, casting=casting)

    np.row_stack = row_stack
    return True


ROW_STACK_SHIM = _install_row_stack_shim()
from numba import config as _numba_config  # noqa: E402 - after the shim, on purpose
from numba import cuda  # noqa: E402

# Reductions launch one or a few blocks on purpose; numba would warn at each such launch (a user
# who sets NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS keeps their choice).
if "NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS" not in os.environ:
    _numba_config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

SIMULATOR = "simulator" in getattr(cuda.device_array, "__module__", "")


_launchers = {}   # configured launchers: (kernel, n) grid-stride, (kernel, blocks, threads) fixed
RECORD = None   # a set: (module, kernel name, argument types) of every launch (PTX checks)


def set_launch(threads_per_block=None, max_blocks=None):
    """Change the launch settings (tests: small blocks to force several); returns the old pair.
    Every configured launcher is dropped: the grid-stride ones were sized with the old settings,
    and fixed grids computed from them (``launch_blocks(k, c, THREADS_PER_BLOCK)``) go with them."""
    global THREADS_PER_BLOCK, MAX_BLOCKS
    old = (THREADS_PER_BLOCK, MAX_BLOCKS)
    for name, value in (("threads_per_block", threads_per_block), ("max_blocks", max_blocks)):
        if value is not None and int(value) < 1:
            raise ValueError(f"set_launch: {name} must be at least 1, got {value!r}")
    if threads_per_block is not None:
        THREADS_PER_BLOCK = int(threads_per_block)
    if max_blocks is not None:
        MAX_BLOCKS = int(max_blocks)
    _launchers.clear()
    return old


def launch(kernel, n, *args):
    """Run a grid-stride ``kernel`` over ``n`` work items (nothing when ``n`` is 0):
    ``min(MAX_BLOCKS, ceil(n / THREADS_PER_BLOCK))`` blocks of ``THREADS_PER_BLOCK`` threads."""
    if n > 0:
        _run(kernel, (kernel, n), args)


def launch_blocks(kernel, blocks, threads, *args):
    """Run ``kernel`` on exactly ``blocks`` blocks of ``threads`` threads (nothing when
    ``blocks`` is 0), for kernels whose grid means something: one block per channel, a block
    size that a shared-memory reduction is written for. ``set_launch`` does not change it."""
    if blocks > 0:
        _run(kernel, (kernel, blocks, threads), args)


def _run(kernel, key, args, record=True):
    """The one launch path: the configured launcher from the cache (configured on a miss),
    the signature into ``RECORD`` when recording (``record=False``: the caller records under a
    name of its own), then the launch."""
    run = _launchers.get(key)
    if run is None:
        run = _configure(kernel, key)
    if record and RECORD is not None:
        RECORD.add(_signature(kernel, args))
    run(*args)


def _configure(kernel, key):
    if len(key) == 2:            # grid-stride over key[1] items
        threads = THREADS_PER_BLOCK
        blocks = max(1, min(MAX_BLOCKS, -(-key[1] // threads)))
    else:
        blocks, threads = int(key[1]), int(key[2])
        if threads < 1:
            raise ValueError(f"launch_blocks: threads must be at least 1, got {threads}")
    run = kernel[blocks, threads]
    if SIMULATOR:
        # the simulator's kernel[...] configures the kernel object itself and returns it: a
        # launcher kept as it is would run with whichever grid that kernel was given last
        run = functools.partial(_configured_on_call, kernel, blocks, threads)
    else:
        from . import cuda_launch
        if cuda_launch.available():   # numba's launch without its per-call marshalling
            run = cuda_launch.BareLauncher(kernel, run)
    if len(_launchers) > 4096:
        _launchers.clear()
    _launchers[key] = run
    return run


def _configured_on_call(kernel, blocks, threads, *args):
    kernel[blocks, threads](*args)


def _signature(kernel, args):
    fn = getattr(kernel, "py_func", None) or getattr(kernel, "fn", None)
    types = []
    for a in args:
        if isinstance(a, np.generic):
            types.append(("scalar", str(a.dtype)))
        elif hasattr(a, "shape") and hasattr(a, "dtype"):
            types.append(("array", str(a.dtype), len(a.shape)))
        elif isinstance(a, (bool, np.bool_)):
            types.append(("bool",))
        elif isinstance(a, (int, np.integer)):
            types.append(("int64",))
        else:
            types.append(("float64",))
    return fn.__module__, fn.__qualname__, tuple(types)


# -- small generic kernels ------------------------------------------------------------------------

@cuda.jit
def _fill_kernel(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


@cuda.jit
def _add_kernel(dst, src):
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[i] += src[i]


@cuda.jit
def _sum_kernel(dst, a, b):
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[i] = a[i] + b[i]


@cuda.jit
def _copy_kernel(dst, src):
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[i] = src[i]


@cuda.jit
def _nonfinite_kernel(a, flag):
    """flag[0] = 1 if any element is NaN or Inf (every writer writes the same value)."""
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        v = a[i]
        if v != v or v - v != 0.0:
            flag[0] = 1


def flat(a):
    """A 1-D view of a C-contiguous device array (0-d arrays included). The view is kept on the
    array: a plan's buffers are flattened at every launch, and building a device-array view costs
    microseconds of host time that a training step pays dozens of times (hundreds for ResNet-20,
    so the cached case is looked up first). A 1-D array is its own view: it is marked as such
    rather than referring to itself, which would keep its memory until a garbage collection."""
    cache = getattr(a, "__dict__", None)
    if cache is not None:
        view = cache.get("_minicnn_flat")
        if view is not None:
            return a if view is _ITSELF else view
    if len(a.shape) == 1:
        view = _ITSELF
    else:
        view = with_c_strides(a).reshape(a.size)
    if cache is not None:
        cache["_minicnn_flat"] = view
    return a if view is _ITSELF else view


_ITSELF = object()   # flat()'s mark for a 1-D array


def matrix(a):
    """A C-contiguous device array (N, *, features) as a (rows, features) view, kept on the array
    as ``flat`` keeps its view (Linear over inputs with more than two axes); 2-D arrays as they
    are."""
    if len(a.shape) == 2:
        return a
    cache = getattr(a, "__dict__", None)
    view = cache.get("_minicnn_matrix") if cache is not None else None
    if view is None:
        cols = a.shape[len(a.shape) - 1]        # the simulator's shapes take no negative index
        view = with_c_strides(a).reshape(a.size // cols, cols)
        if cache is not None:
            cache["_minicnn_matrix"] = view
    return view


def c_strides(shape, itemsize):
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def with_c_strides(a):
    """``a`` re-viewed with C strides when only its size-1 axes' strides differ from them. numpy
    and PyTorch leave those strides arbitrary (``x[None]`` has stride 0 there); numba then calls
    the array non-contiguous and refuses to reshape it. Other arrays come back unchanged."""
    shape, strides = tuple(a.shape), tuple(a.strides)
    want = c_strides(shape, a.dtype.itemsize)
    if strides == want or not hasattr(a, "gpu_data"):   # the simulator reshapes as numpy does
        return a
    if any(n != 1 and s != w for n, s, w in zip(shape, strides, want, strict=True)):
        return a
    return type(a)(shape=shape, strides=want, dtype=a.dtype, gpu_data=a.gpu_data)


def zeroed_once(ws, name):
    """Workspace array ``name``, zeroed the first time it is asked for. Workspaces come
    uninitialised; this is for state a kernel resets itself after each use (a flag, counters)."""
    array = ws[name]
    mark = name + ":zeroed"
    if mark not in ws:
        launch(_fill_kernel, array.size, flat(array), 0)
        ws[mark] = True
    return array


def is_device_array(a):
    """True for numba device arrays (real or simulated) and other CUDA-array-interface objects."""
    return hasattr(a, "copy_to_host") or hasattr(a, "__cuda_array_interface__")


_consts = {}


def const_array(values, dtype=np.int64):
    """A device copy of a small tuple of numbers (geometry tables), cached by value."""
    key = (tuple(values), np.dtype(dtype).str)
    a = _consts.get(key)
    if a is None:
        if len(_consts) > 1024:
            _consts.clear()
        a = _consts[key] = cuda.to_device(np.asarray(values, dtype=dtype).reshape(-1))
    return a


class CUDADevice:
    """Arrays on the GPU (numba device arrays); the same methods as ``CPUDevice``."""

    name = "cuda"

    def __init__(self):
        if not cuda.is_available():
            raise RuntimeError("numba.cuda finds no usable CUDA GPU (driver and toolkit); set "
                               "NUMBA_ENABLE_CUDASIM=1 before importing minicnn to use numba's "
                               "CUDA simulator instead")
        self.simulator = SIMULATOR
        self.array_type = type(cuda.device_array(1, np.float32))
        from .optim.optimizer import register_backend
        register_backend(self.array_type, "minicnn.optim.updates_cuda")

    # -- allocation and transfers -----------------------------------------------------------------

    def empty(self, shape, dtype):
        return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))

    def zeros(self, shape, dtype):
        a = self.empty(shape, dtype)
        self.fill(a, 0)
        return a

    def asarray(self, array):
        """A contiguous device array: device arrays as they are, host arrays copied (once)."""
        if not hasattr(array, "copy_to_host") and hasattr(array, "__cuda_array_interface__"):
            array = cuda.as_cuda_array(array)      # CuPy, PyTorch... arrays: a view, no copy
        if is_device_array(array):
            array = with_c_strides(array)
            if not _contiguous(array):
                raise ValueError("minicnn: device arrays must be C-contiguous")
            return array
        host = np.asarray(array, order="C")    # 0-d arrays stay 0-d
        if host.strides != c_strides(host.shape, host.itemsize):
            host = host.copy()    # a fresh array has C strides on its size-1 axes too
        return cuda.to_device(host)

    def to_host(self, array):
        return array.copy_to_host()

    # -- arithmetic (in place, on the device) -----------------------------------------------------

    def add_into(self, dst, src):
        launch(_add_kernel, dst.size, flat(dst), flat(src))

    def add(self, dst, a, b):
        launch(_sum_kernel, dst.size, flat(dst), flat(a), flat(b))

    def assign(self, dst, src):
        if is_device_array(src):
            launch(_copy_kernel, dst.size, flat(dst), flat(src))
        else:
            dst.copy_to_device(np.ascontiguousarray(src, dtype=dst.dtype).reshape(dst.shape))

    def copy(self, array):
        out = self.empty(array.shape, array.dtype)
        self.assign(out, array)
        return out

    def fill(self, array, value):
        launch(_fill_kernel, array.size, flat(array), float(value) if array.dtype.kind == "f"
               else int(value))

    def all_finite(self, array):
        if array.dtype.kind != "f" or array.size == 0:
            return True
        flag = cuda.to_device(np.zeros(1, np.int32))
        launch(_nonfinite_kernel, array.size, flat(array), flag)
        return not bool(flag.copy_to_host()[0])

    def synchronize(self):
        cuda.synchronize()


def _contiguous(a):
    flags = getattr(a, "flags", None)
    if flags is None:
        return True
    try:
        return bool(flags["C_CONTIGUOUS"])
    except (KeyError, TypeError):
        return bool(getattr(flags, "c_contiguous", True))


def ceil_div(a, b):
    return -(-a // b)


def prod(shape):
    return math.prod(int(d) for d in shape)


def zero_of(dtype):
    """A typed zero scalar: kernels start their sums from it, so float32 sums stay float32."""
    return np.dtype(dtype).type(0)
