"""Tests run from a checkout without installing the plugin: put ``plugins/segmentation`` on the
path, and keep third-party entry points out of the process-wide registry (as minicnn's own tests
do); the plugin tests register the plugin explicitly.

Each test runs with one numba thread (restored after): the tests make many small kernel calls,
and on a shared two-core machine each parallel call can wait milliseconds for its second thread
(a gradient check took 60 s instead of 2 s at a load of 10). One thread also makes the training
tests' results independent of the machine's core count (a different thread count changes the
rounding of the reductions, hence the training trajectory). minicnn's own tests cover the
parallel kernels."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.insert(0, str(PLUGIN_ROOT))


@pytest.fixture(autouse=True)
def _one_numba_thread():
    import numba
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(previous)
