"""JIT compile time, measured in fresh processes (``timeraw_``).

minicnn's CPU kernels are ``numba.njit(cache=True)``: the first call in a process either compiles
them (cold: nothing cached) or loads machine code from numba's on-disk cache (warm). Each sample
runs in a new interpreter with ``NUMBA_CACHE_DIR`` pointing at

* a new empty directory (``timeraw_first_step_cold``): every kernel the workload needs compiles;
* a directory ``setup_cache`` filled once by running the same workload
  (``timeraw_first_step_warm``): the kernels load from the cache.

The timed statement is the workload's first call (model built and inputs made in the untimed
set-up): LeNet-5's forward, cross-entropy and backward in float32 (``lenet5_step``), or one ReLU
forward and backward (``relu``, the smallest kernel pair). ``timeraw_import`` is ``import
minicnn`` (no kernel compiles at import).
"""

import os
import subprocess
import sys
import textwrap

# workload -> (untimed set-up, timed statement); both run after NUMBA_CACHE_DIR is set
WORKLOADS = {
    "lenet5_step": (
        """
        import numpy as np
        import minicnn
        from minicnn import nn, zoo
        minicnn.manual_seed(0)
        model = zoo.lenet5(num_classes=10)
        loss = nn.CrossEntropyLoss()
        x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
        y = np.arange(8) % 10
        """,
        """
        loss(model(x), y)
        model.backward(loss.backward())
        """),
    "relu": (
        """
        import numpy as np
        from minicnn import nn
        layer = nn.ReLU()
        x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(4, 16)
        """,
        """
        layer(x)
        layer.backward(np.ones_like(x))
        """),
}

_CACHE_DIR = """
import os
os.environ["NUMBA_CACHE_DIR"] = {path}
"""
_FRESH_DIR = """
import atexit, os, shutil, tempfile
_cache = tempfile.mkdtemp(prefix="minicnn-asv-cold-")
atexit.register(shutil.rmtree, _cache, True)
os.environ["NUMBA_CACHE_DIR"] = _cache
"""


def _setup_code(prefix, workload):
    return textwrap.dedent(prefix) + textwrap.dedent(WORKLOADS[workload][0])


def _statement(workload):
    return textwrap.dedent(WORKLOADS[workload][1])


class JitCompile:
    params = (list(WORKLOADS),)
    param_names = ["workload"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)
    rounds = 1
    warmup_time = 0
    min_run_count = 1

    def setup_cache(self):
        """A numba cache directory warmed by running every workload once (in asv's set-up
        directory, which asv removes when these benchmarks are done)."""
        path = os.path.abspath("numba-cache-warm")
        os.makedirs(path, exist_ok=True)
        for workload in WORKLOADS:
            code = _setup_code(_CACHE_DIR.format(path=repr(path)), workload) + \
                _statement(workload)
            subprocess.run([sys.executable, "-c", code], check=True, timeout=900)
        return path

    def timeraw_first_step_cold(self, warm_dir, workload):
        return _statement(workload), _setup_code(_FRESH_DIR, workload)

    def timeraw_first_step_warm(self, warm_dir, workload):
        return _statement(workload), _setup_code(_CACHE_DIR.format(path=repr(warm_dir)),
                                                 workload)


class Import:
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0

    def timeraw_import(self):
        return "import minicnn"
