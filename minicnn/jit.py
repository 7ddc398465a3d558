"""How minicnn compiles CPU kernels, and the BLAS threading rule they rely on.

* ``cpu_kernel`` is ``numba.njit`` with an on-disk cache (a second process loads compiled kernels
  in a fraction of a second) and ``fastmath={"reassoc", "contract"}``: vectorised reductions, but
  NaN and Inf still behave (full ``fastmath=True`` would break NaN checks); and
  ``error_model="numpy"``: a float division by zero gives inf or NaN as in numpy instead of raising,
  and without that per-element check LLVM vectorises the loops (an Adam step got 7x faster).
* numba's cache key ignores compile options: if you change ``parallel`` or ``fastmath`` for a
  kernel, also touch its source (or clear ``__pycache__``), or the old machine code is silently
  reused. For the same reason never wrap one Python function twice with different options.
* Kernels split the batch over numba's threads and call ``np.dot`` (SciPy's BLAS) inside. That BLAS
  must run single-threaded there, or the two thread pools fight (5 to 300x slow-downs were
  measured). ``limit_blas_threads`` pins SciPy's BLAS to one thread; numpy's own BLAS is left alone
  when it is a separate library, as it is in the PyPI wheels.
* ``cpu_threads(n)`` runs a block with numba's kernels on ``n`` threads, then restores the setting.
"""

import contextlib
import os
import threading

import numba

FASTMATH = frozenset({"reassoc", "contract"})


def cpu_kernel(fn=None, *, parallel=True):
    """Compile a CPU kernel: ``@cpu_kernel`` (parallel, for prange) or
    ``@cpu_kernel(parallel=False)``."""
    def wrap(f):
        return numba.njit(cache=True, parallel=parallel, fastmath=set(FASTMATH), nogil=True,
                          error_model="numpy")(f)
    return wrap(fn) if fn is not None else wrap


@contextlib.contextmanager
def cpu_threads(num_threads):
    """Run the block with numba's parallel kernels limited to ``num_threads`` threads (None:
    leave the setting alone); the previous setting comes back after, on an error too.

    On a shared or virtualised two-core machine one thread is often much faster: each parallel
    kernel call waits for the second thread to wake up, which there can take milliseconds.
    """
    if num_threads is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


_blas_lock = threading.Lock()
_blas_limited = False


def limit_blas_threads():
    """Pin the BLAS that numba's ``np.dot`` uses (SciPy's) to one thread; idempotent and cheap."""
    global _blas_limited
    if _blas_limited:
        return
    with _blas_lock:
        if _blas_limited:
            return
        try:
            import scipy.linalg.cython_blas  # noqa: F401 - loads the library numba binds
            from threadpoolctl import ThreadpoolController
        except ImportError:       # without SciPy numba has no BLAS at all; kernels say so
            _blas_limited = True
            return
        blas = ThreadpoolController().select(user_api="blas")
        own = [lib for lib in blas.lib_controllers
               if os.path.basename(os.path.dirname(lib.filepath or "")).startswith("scipy")]
        if own:
            for lib in own:
                lib.set_num_threads(1)
        else:   # one BLAS shared by numpy and SciPy: it must be limited for everyone
            blas.limit(limits=1)
        _blas_limited = True
