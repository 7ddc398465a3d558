"""Handing arrays to MPI: host arrays directly, device arrays directly or through the host.

A CUDA-aware MPI build reads and writes GPU memory itself (mpi4py accepts any object with
``__cuda_array_interface__``, such as numba's device arrays), so a GPU rank passes its device
buffers as they are, after the kernels that wrote them have finished. Any other build needs host
memory: the buffer is copied to the host, reduced there, and copied back when the operation
completes. Nothing here imports CUDA: device arrays are recognised by their interface.

Whether the build is CUDA-aware is asked of the MPI library (Open MPI's
``MPIX_Query_cuda_support``, MPICH's ``MPIX_GPU_query_support``) unless
``MINICNN_MPI_CUDA_AWARE=0|1`` or the ``cuda_aware`` argument says otherwise; when neither is
available the answer is "no", the safe choice.

Each staged buffer records the path it took (:attr:`Staged.path`): ``"host"`` (a numpy array),
``"device"`` (a device array handed to a CUDA-aware MPI as it is) or ``"staged"`` (a device array
copied through host memory); :class:`~.comm.Communicator` counts them (``transfer_paths``), so a
run can say which path its GPU buffers took. Device arrays without ``__cuda_array_interface__``
(numba's CUDA simulator) are always staged: MPI could not read them.
"""

import ctypes
import os

import numpy as np

_MPIX_GPU_SUPPORT_CUDA = 0   # MPICH's enum value for CUDA in MPIX_GPU_query_support


def query_cuda_aware(MPI):
    """True when the MPI library says it can work on CUDA device memory."""
    forced = os.environ.get("MINICNN_MPI_CUDA_AWARE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        lib = ctypes.CDLL(MPI.__file__)
    except OSError:
        return False
    if hasattr(lib, "MPIX_Query_cuda_support"):                   # Open MPI
        lib.MPIX_Query_cuda_support.restype = ctypes.c_int
        return bool(lib.MPIX_Query_cuda_support())
    if hasattr(lib, "MPIX_GPU_query_support"):                    # MPICH 4 and later
        flag = ctypes.c_int(0)
        if lib.MPIX_GPU_query_support(_MPIX_GPU_SUPPORT_CUDA, ctypes.byref(flag)) == 0:
            return bool(flag.value)
    return False


def is_device_array(array):
    """A GPU array: anything with ``__cuda_array_interface__`` or numba's ``copy_to_host``
    (numba's simulated device arrays have only the latter)."""
    return not isinstance(array, np.ndarray) and (hasattr(array, "__cuda_array_interface__")
                                                  or hasattr(array, "copy_to_host"))


class Staged:
    """A buffer as MPI will see it, and what to do once the operation has completed."""

    __slots__ = ("buffer", "array", "host", "path")

    def __init__(self, array, cuda_aware, synchronize=None):
        self.array = array
        self.host = None
        if isinstance(array, np.ndarray):
            if not array.flags.c_contiguous:
                raise ValueError("MPI buffers must be C-contiguous arrays")
            self.buffer, self.path = array, "host"
        elif is_device_array(array):
            if synchronize is not None:      # the kernels that wrote it must have finished
                synchronize()
            if cuda_aware and hasattr(array, "__cuda_array_interface__"):
                self.buffer, self.path = array, "device"
            else:
                self.host = np.ascontiguousarray(array.copy_to_host())
                self.buffer, self.path = self.host, "staged"
        else:
            raise TypeError(f"cannot hand an array of type {type(array).__name__} to MPI")

    def complete(self):
        """Copy a host-staged result back to the device array (nothing to do otherwise)."""
        if self.host is not None:
            self.array.copy_to_device(self.host)
