"""``minicnn.cpu_threads``: numba's thread count for a block, restored after (errors included)."""

import numba
import pytest

from minicnn import cpu_threads


def test_cpu_threads_is_scoped():
    before = numba.get_num_threads()
    with cpu_threads(None):
        assert numba.get_num_threads() == before
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here (NUMBA_NUM_THREADS=1)")
    other = 2 if before == 1 else 1
    with cpu_threads(other):
        assert numba.get_num_threads() == other
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), cpu_threads(other):
        assert numba.get_num_threads() == other
        raise RuntimeError("inside")
    assert numba.get_num_threads() == before           # restored after an error too
