"""Devices: where arrays live and how to make, move and combine them.

``"cpu"`` arrays are numpy arrays. The ``"cuda"`` device is provided by ``minicnn.cuda_device`` and
imported only when asked for, so a machine without a GPU never touches CUDA.
"""

import numpy as np


class CPUDevice:
    name = "cpu"

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def asarray(self, array):
        """A contiguous array on this device (a copy only when needed)."""
        if hasattr(array, "copy_to_host"):
            return array.copy_to_host()
        return np.asarray(array, order="C")

    def add_into(self, dst, src):
        np.add(dst, src, out=dst)

    def add(self, dst, a, b):
        np.add(a, b, out=dst)

    def assign(self, dst, src):
        dst[...] = src

    def copy(self, array):
        return array.copy()

    def fill(self, array, value):
        array[...] = value

    def all_finite(self, array):
        return bool(np.isfinite(array).all())


_devices = {"cpu": CPUDevice()}


def get_device(name):
    """The device object for ``"cpu"`` or ``"cuda"``; a clear error if CUDA is unavailable."""
    name = getattr(name, "name", name)
    if name not in _devices:
        if name != "cuda":
            raise ValueError(f"unknown device {name!r}; minicnn knows 'cpu' and 'cuda'")
        try:
            from .cuda_device import CUDADevice
            device = CUDADevice()
        except (ImportError, RuntimeError) as exc:
            raise RuntimeError(f"the 'cuda' device is not available: {exc}") from exc
        _devices[name] = device
    return _devices[name]


def device_of(array):
    """The name of the device an array lives on: "cuda" for device arrays, else "cpu"."""
    if hasattr(array, "copy_to_host") or hasattr(array, "__cuda_array_interface__"):
        return "cuda"
    return "cpu"


def to_numpy(array):
    """A numpy array for anything minicnn returns (identity on numpy; copies device arrays back).

    Lists and tuples (several outputs) are converted element by element."""
    if hasattr(array, "copy_to_host"):
        return array.copy_to_host()
    if isinstance(array, (list, tuple)):
        return type(array)(to_numpy(a) for a in array)
    return np.asarray(array)


def copy_into(dst, src):
    """Copy host array ``src`` into ``dst`` (host or device) in place."""
    if hasattr(dst, "copy_to_device"):
        dst.copy_to_device(np.ascontiguousarray(src))
    else:
        dst[...] = src
