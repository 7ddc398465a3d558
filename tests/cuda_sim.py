"""Shared set-up of the ``test_cuda_*`` modules: numba's CUDA simulator, small launches.

numba reads ``NUMBA_ENABLE_CUDASIM`` when numba.cuda is first imported. minicnn imports numba.cuda
only when the cuda device is first asked for, and the CPU tests never ask, so the first CUDA test
module to load can still choose: it selects the simulator unless ``MINICNN_TEST_REAL_GPU=1`` (then
the same tests run on the real GPU). Without either, the module is skipped with the reason.
"""

import os
import sys

import pytest


def cuda_or_skip():
    """The ``minicnn.cuda_device`` module, on the simulator unless a real GPU run is asked for;
    skips the calling test module when no CUDA (simulated or real) is usable."""
    if "numba.cuda" not in sys.modules and os.environ.get("MINICNN_TEST_REAL_GPU") != "1":
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        from numba.core import config
        config.reload_config()
    try:
        from minicnn.device import get_device
        get_device("cuda")
        from minicnn import cuda_device
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"no CUDA device or simulator: {exc}", allow_module_level=True)
    return cuda_device


@pytest.fixture(scope="module", autouse=True)
def small_launches():
    """8 threads per block and at most 4 blocks, so that tiny shapes still span several blocks
    and grid-stride loops; a short switch interval speeds up the simulator's threads."""
    from minicnn import cuda_device
    from minicnn.registry import Registry, set_registry
    previous = set_registry(Registry())   # CUDA kernel modules stay out of other tests' registry
    old = cuda_device.set_launch(threads_per_block=8, max_blocks=4)
    interval = sys.getswitchinterval()
    if cuda_device.SIMULATOR:
        sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(interval)
    cuda_device.set_launch(*old)
    set_registry(previous)


def launched_kernel_names(monkeypatch):
    """A list that fills with the name of every kernel launched from now on (the test's end
    stops it): for tests that count what a pass launches."""
    from minicnn import cuda_device
    names = []
    real = cuda_device._run

    def counting(kernel, key, args, record=True):
        names.append(kernel.py_func.__name__)
        return real(kernel, key, args, record)

    monkeypatch.setattr(cuda_device, "_run", counting)
    return names
