"""Bare kernel launches: numba-cuda's launch without its per-call argument marshalling.

numba's ordinary call ``kernel[grid, block](*args)`` types every argument, picks the compiled
overload and turns each device array into its launch parameters (size, item size, pointer, shape,
strides) anew on every call: 21 to 30 microseconds for one array and 63 to 94 for eight on the
H100 machine, where a bare launch costs 7 and 16. A training step of a small network launches a few
hundred kernels, so that marshalling was most of the step (LeNet-5: 10 ms against PyTorch's 2.4).

A :class:`BareLauncher` does the first call of each argument-type combination through numba
(which compiles and checks), then keeps that overload's CUDA function and numba's own
argument-preparation method; later calls prepare only the scalars, take each device array's
parameters from a cache on the array itself (its shape and pointer never change), and call
``cuda.core.launch`` as numba does. The arithmetic, the overload and the parameters are numba's;
only the repetition is skipped.

Only for numba-cuda with ``cuda.core`` on a real GPU (the simulator runs kernels as Python);
``MINICNN_BARE_LAUNCH=0`` turns it off. Anything unexpected (an argument type numba converted, a
launch-config-specialised dispatcher, a debug kernel, an array without a ``__dict__``) takes
numba's ordinary path for that call.
"""

import os

_ARGS = "_minicnn_launch_args"    # array.__dict__: (numba type, launch parameters)

try:   # numba-cuda's internals as of 0.30; any difference leaves the ordinary path in place
    from cuda.core import LaunchConfig
    from cuda.core import launch as _core_launch
    from numba.cuda._compat import CUDA_CORE_GE_1_0
    from numba.cuda.dispatcher import _Kernel
    from numba.cuda.typing.typeof import Purpose, typeof
    _AVAILABLE = hasattr(_Kernel, "_prepare_args") and hasattr(_Kernel, "argument_types")
except Exception:      # older numba.cuda, or no cuda.core: nothing to speed up
    _AVAILABLE = False

launches = {"bare": 0, "ordinary": 0}    # counts, for tests and scripts


def available():
    """Whether bare launches are on: numba-cuda with cuda.core, not turned off by the user."""
    return _AVAILABLE and os.environ.get("MINICNN_BARE_LAUNCH", "1") != "0"


def _config(configured):
    grid, block = tuple(configured.griddim), tuple(configured.blockdim)
    if CUDA_CORE_GE_1_0:
        return LaunchConfig(grid=grid, block=block, shmem_size=configured.sharedmem,
                            is_cooperative=False)
    return LaunchConfig(grid=grid, block=block, shmem_size=configured.sharedmem,
                        cooperative_launch=False)


def _type_key(value):
    """What selects the overload: the numba type of a device array (cached on it), the Python
    class of a scalar (numpy scalar classes name their dtype; bool is not int)."""
    cached = getattr(value, "__dict__", {}).get(_ARGS)
    if cached is not None:
        return cached[0]
    if hasattr(value, "__cuda_array_interface__"):
        return None        # an array seen for the first time: typed on the ordinary path
    return type(value)


class BareLauncher:
    """``launcher(*args)`` launches ``dispatcher`` with ``configured``'s grid (``configured`` is
    ``dispatcher[blocks, threads]``, which also runs the first call of every type combination)."""

    def __init__(self, dispatcher, configured):
        self.dispatcher = dispatcher
        self.configured = configured
        self.stream = configured.stream
        self.config = _config(configured)
        self.overloads = {}     # type keys -> (CUDA function, argument types, prepare method)

    def __call__(self, *args):
        key = tuple(_type_key(a) for a in args)
        entry = self.overloads.get(key) if None not in key else None
        if entry is None:
            self._ordinary(args)
            return
        function, argument_types, prepare = entry
        params = []
        for ty, value in zip(argument_types, args, strict=True):
            cached = getattr(value, "__dict__", {}).get(_ARGS)
            if cached is not None:
                params.extend(cached[1])
            else:
                prepare(ty, value, self.stream, [], params)
        _core_launch(self.stream, self.config, function, *params)
        launches["bare"] += 1

    def _ordinary(self, args):
        """numba's call (compiling if need be); then remember what it used, when it can be
        reproduced exactly."""
        self.configured(*args)
        launches["ordinary"] += 1
        types = tuple(typeof(a, Purpose.argument) for a in args)
        kernel = self.dispatcher.overloads.get(types)
        if (not isinstance(kernel, _Kernel) or kernel.debug or kernel.cooperative
                or tuple(kernel.argument_types) != types):
            return
        keys = []
        for ty, value in zip(types, args, strict=True):
            if hasattr(value, "__cuda_array_interface__"):
                if not hasattr(value, "__dict__") or not hasattr(value, "gpu_data"):
                    return        # not a numba device array: nowhere to keep its parameters
                params = []
                kernel._prepare_args(ty, value, self.stream, [], params)
                value.__dict__[_ARGS] = (ty, tuple(params))
                keys.append(ty)
            else:
                keys.append(type(value))
        function = kernel._codelibrary.get_cufunc().kernel
        self.overloads[tuple(keys)] = (function, tuple(types), kernel._prepare_args)
