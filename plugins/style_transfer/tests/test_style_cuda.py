"""The CUDA kernels of the style-transfer layers (``layers_cuda.py``) against the CPU kernels, on
numba's CUDA simulator: tiny shapes, 8 threads a block and at most 4 blocks (so grid-stride loops
run). Parity in float32 and float64, float64 finite-difference gradchecks through the layers on
the device, identical bits across runs and launch shapes, a PTX compile of every kernel in both
dtypes (a fresh process without the simulator, started early so that it compiles on the second
core; skipped when numba finds no NVVM), and a whole tiny style transfer on the device matching
the CPU run. ``MINICNN_TEST_REAL_GPU=1`` runs the same tests on a real GPU.

The simulator must be chosen before numba.cuda is first imported: this module chooses it at
import unless numba.cuda is already loaded.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from minicnn import testing, to_numpy
from minicnn.registry import Registry, set_registry

from minicnn_style_transfer import (
    ContentLoss,
    GramMatrix,
    StyleLoss,
    StyleTransfer,
    TotalVariationLoss,
    plugin,
    random_features,
)

if "numba.cuda" not in sys.modules and os.environ.get("MINICNN_TEST_REAL_GPU") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    from numba.core import config
    config.reload_config()
try:
    from minicnn.device import get_device
    get_device("cuda")
except (ImportError, RuntimeError) as exc:
    pytest.skip(f"no CUDA device or simulator: {exc}", allow_module_level=True)

PLUGIN_ROOT = Path(__file__).resolve().parents[1]


def _registry():
    registry = Registry(load_entry_points=False)
    plugin.ensure_registered(registry)
    return registry


_ptx = {}


def _ptx_process():
    """The PTX compile (below) in a fresh process without the simulator, started once, early."""
    if "process" not in _ptx:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_ROOT), env.get("PYTHONPATH", "")])
        _ptx["process"] = subprocess.Popen([sys.executable, "-c", PTX], env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return _ptx["process"]


@pytest.fixture(scope="module", autouse=True)
def simulated_launches(request, _style_plugin_registered):
    """A registry of this module's own, small launches (minicnn's settings, which these
    kernels' launches follow), a short thread switch interval (the simulator runs a block's
    threads as Python threads)."""
    import minicnn.cuda_device as cuda_device

    previous = set_registry(_registry())
    old_core = cuda_device.set_launch(threads_per_block=8, max_blocks=4)
    interval = sys.getswitchinterval()
    if cuda_device.SIMULATOR:
        sys.setswitchinterval(5e-5)
    if any(item.name == "test_every_kernel_compiles_to_ptx" for item in request.session.items):
        _ptx_process()
    yield
    sys.setswitchinterval(interval)
    process = _ptx.pop("process", None)
    if process is not None and process.poll() is None:
        process.kill()
        process.communicate()
    cuda_device.set_launch(*old_core)
    set_registry(previous)


def test_the_device_hook_registers_the_cuda_kernels():
    from minicnn_style_transfer import layers_cuda
    registry = _registry()
    assert registry.kernel("GramMatrix", "cuda") is None        # not before the device is used
    assert plugin.minicnn_device_kernels("mps") == []
    registry.enable_device("cuda")
    for kernel in layers_cuda.KERNELS:
        assert isinstance(registry.kernel(kernel.layer, "cuda"), kernel)
        assert registry.devices_for(kernel.layer) == ["cpu", "cuda"]


def test_every_layer_passes_every_conformance_check_on_the_device():
    """``NUMBA_ENABLE_CUDASIM=1 minicnn check-plugin style_transfer``: every column, the cuda
    parity included, passes in full (strict) with the small launches of this module."""
    from minicnn import conformance
    from minicnn.registry import get_registry
    report = conformance.check_plugin("style_transfer", get_registry())
    assert len(report.layers) == 4
    report.assert_ok(strict=True)
    assert all(layer.devices == ("cpu", "cuda") for layer in report.layers), report.format()


def _cases(dtype):
    x = testing.tie_free((2, 3, 3, 4), seed=1, dtype=dtype)
    t = (10 * testing.tie_free((2, 3, 3), seed=2, dtype=dtype)).astype(dtype)
    c = testing.tie_free((2, 3, 3, 4), seed=3, dtype=dtype)
    return [(GramMatrix(), [x]), (GramMatrix(True), [x]),
            (StyleLoss(), [x, t]), (StyleLoss("mean", "mean"), [x, t]),
            (StyleLoss("none"), [x, t]),
            (ContentLoss(), [x, c]), (ContentLoss("mean"), [x, c]),
            (TotalVariationLoss(), [x]), (TotalVariationLoss(1, "mean"), [x])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parity_with_the_cpu_kernels(dtype):
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for layer, inputs in _cases(dtype):
        testing.check_parity(layer, inputs, device="cuda", atol=tol, rtol=tol)


def test_parity_over_several_content_chunks():
    """More elements than one content-loss chunk (several partial sums)."""
    from minicnn_style_transfer import layers_cuda
    x = testing.tie_free((1, 2, 3, 5), seed=4, dtype=np.float64)
    c = testing.tie_free((1, 2, 3, 5), seed=5, dtype=np.float64)
    old = layers_cuda.CHUNK
    layers_cuda.CHUNK = 4
    try:
        testing.check_parity(ContentLoss(), [x, c], device="cuda", atol=1e-12, rtol=1e-12)
    finally:
        layers_cuda.CHUNK = old


@pytest.mark.parametrize("threads", [1, 12, 1 << 12])
def test_total_variation_in_row_chunks(monkeypatch, threads):
    """One chunk per plane, two uneven ones (rows 0-1 and 2), a row each: the CPU's values."""
    from minicnn_style_transfer import layers_cuda
    monkeypatch.setattr(layers_cuda, "TV_THREADS", threads)
    assert layers_cuda.tv_chunks(6, 3) == {1: 1, 12: 2}.get(threads, 3)
    x = testing.tie_free((2, 3, 3, 4), seed=12, dtype=np.float64)
    for power in (1, 2):
        testing.check_parity(TotalVariationLoss(power), [x], device="cuda", atol=1e-12,
                             rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: GramMatrix(True), lambda: StyleLoss()],
                         ids=["gram", "style"])
def test_gram_rows_summed_in_chunks(monkeypatch, make):
    """Long rows and few entries: the Gram is summed per (entry, chunk), then per entry in
    chunk order (uneven last chunk included); the same values as the CPU, the same bits in every
    run and launch shape."""
    import minicnn.cuda_device as cuda_device

    from minicnn_style_transfer import layers_cuda
    monkeypatch.setattr(layers_cuda, "MIN_GRAM_CHUNK", 4)
    monkeypatch.setattr(layers_cuda, "GRAM_THREADS", 1 << 10)
    x = testing.tie_free((2, 3, 2, 7), seed=10, dtype=np.float64)     # rows of 14: 5, 5, 4
    assert layers_cuda.gram_chunks(2, 3, 14) == 3
    target = testing.tie_free((2, 3, 3), seed=11, dtype=np.float64)
    inputs = [x] if isinstance(make(), GramMatrix) else [x, target]
    launched = set()
    cuda_device.RECORD = set()
    try:
        testing.check_parity(make(), inputs, device="cuda", atol=1e-12, rtol=1e-12)
        launched = {name for _, name, _ in cuda_device.RECORD}
    finally:
        cuda_device.RECORD = None
    assert {"gram_partials", "gram_combine"} <= launched and "gram_forward" not in launched
    layer = make().to("cuda")
    first = _forward_backward(layer, inputs)
    old = cuda_device.set_launch(threads_per_block=8, max_blocks=3)
    try:
        again = _forward_backward(make().to("cuda"), inputs)
    finally:
        cuda_device.set_launch(*old)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [lambda: GramMatrix(True), lambda: StyleLoss(),
                                  lambda: ContentLoss(), lambda: TotalVariationLoss(1)],
                         ids=["gram", "style", "content", "tv1"])
def test_gradcheck_on_the_device(make):
    layer = make()
    x = testing.tie_free((1, 2, 3, 3), seed=6)
    if isinstance(layer, StyleLoss):
        inputs = [x, testing.tie_free((1, 2, 2), seed=7)]
    elif isinstance(layer, ContentLoss):
        inputs = [x, testing.tie_free(x.shape, seed=7)]
    else:
        inputs = [x]
    testing.gradcheck(layer.to("cuda"), inputs, atol=1e-7, max_elements=12)


def _forward_backward(layer, inputs):
    y = to_numpy(layer(*inputs)).copy()
    gy = testing.tie_free(y.shape, seed=1, dtype=y.dtype) if y.ndim else 0.7
    grads = layer.backward(gy)
    grads = grads if isinstance(grads, list) else [grads]
    return y, to_numpy(grads[0]).copy()


def test_same_bits_in_every_run_and_launch_shape():
    import minicnn.cuda_device as cuda_device
    for make, inputs in ((lambda: GramMatrix(), 1), (lambda: StyleLoss(), 2),
                         (lambda: ContentLoss(), 2), (lambda: TotalVariationLoss(), 1)):
        arrays = [testing.tie_free((1, 3, 4, 4), seed=8, dtype=np.float32)]
        if inputs == 2:
            other = (1, 3, 3) if isinstance(make(), StyleLoss) else (1, 3, 4, 4)
            arrays.append(testing.tie_free(other, seed=9, dtype=np.float32))
        args = arrays
        layer = make().to("cuda")
        runs = [_forward_backward(layer, args), _forward_backward(layer, args)]
        old = cuda_device.set_launch(threads_per_block=16, max_blocks=2)
        try:
            runs.append(_forward_backward(make().to("cuda"), args))
        finally:
            cuda_device.set_launch(*old)
        for y, gx in runs[1:]:
            np.testing.assert_array_equal(y, runs[0][0])
            np.testing.assert_array_equal(gx, runs[0][1])
        assert np.abs(runs[0][1]).max() > 0


def test_a_whole_style_transfer_runs_on_the_device():
    """A random network (16x16 images, the smallest it takes) moved with ``to("cuda")``, float64,
    three L-BFGS iterations: the same evaluations and image as on the CPU."""
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 1, (3, 16, 16)).astype(np.float32)
    style = rng.uniform(0, 1, (3, 16, 16)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        net = random_features(seed=1, widths=(2, 2, 2, 2, 2))
        net.model.double()
        if device == "cuda":
            net.to("cuda")
        st = StyleTransfer(net, style_weight=1e3, tv_weight=0.1)
        assert st.objective.device == device
        results.append(st.run(content, style, 3))
    cpu, gpu = results
    assert len(cpu.history) == len(gpu.history) >= 4
    for a, b in zip(cpu.history, gpu.history, strict=True):
        assert b.total == pytest.approx(a.total, rel=1e-9)
        assert b.style == pytest.approx(a.style, rel=1e-9)
        assert b.content == pytest.approx(a.content, rel=1e-9)
    assert cpu.history[-1].total < 0.5 * cpu.history[0].total
    np.testing.assert_allclose(gpu.image, cpu.image, atol=1e-6)


PTX = textwrap.dedent("""
    import re
    import minicnn.cuda_device  # noqa: F401 - numpy 2.5 needs its row_stack shim first
    from numba import cuda, types
    try:
        import numba.cuda.dispatcher as dispatcher
        class FakeDevice:                 # no GPU here: compile for compute capability 8.0
            compute_capability = (8, 0)
        if hasattr(dispatcher, "get_current_device"):
            dispatcher.get_current_device = lambda: FakeDevice()
        def _trivial(a):
            a[0] = 1.0
        cuda.compile_ptx(_trivial, (types.float32[::1],), cc=(8, 0))
    except Exception as exc:
        print("NO NVVM:", type(exc).__name__, exc)
        raise SystemExit(2)
    from minicnn_style_transfer import layers_cuda
    i, d, p = types.int64, types.float64, types.float64[::1]
    for dt in (types.float32, types.float64):
        f = types.Array(dt, 1, "C")
        for name, sig in (("gram_forward", (f, f, i, i, i, d)),
                          ("gram_partials", (f, p, i, i, i, i)),
                          ("gram_combine", (p, f, i, i, i, d)),
                          ("sym_times_features", (f, f, f, i, i, i, d, f)),
                          ("gram_difference_rows", (f, f, f, p, i, i)),
                          ("ordered_sum", (p, f, d)),
                          ("squared_distance_chunks", (f, f, p, i)),
                          ("scaled_difference", (f, f, f, d, f)),
                          ("tv_planes", (f, p, i, i, i, i)),
                          ("tv_backward", (f, f, i, i, i, d, f))):
            ptx, _ = cuda.compile_ptx(getattr(layers_cuda, name).py_func, sig, cc=(8, 0))
            local = sum(int(n) for n in re.findall(r"__local_depot\\d+\\[(\\d+)\\]", ptx))
            print(f"ok {name} {dt} local={local}")
""")


def test_every_kernel_compiles_to_ptx():
    """The simulator runs kernels as Python and misses typing errors: compile both dtypes'
    signatures (as launched) to PTX."""
    process = _ptx_process()
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if process.returncode == 2:
        pytest.skip(stdout.strip())
    assert process.returncode == 0, stdout + stderr
    lines = [line for line in stdout.splitlines() if line.startswith("ok ")]
    assert len(lines) == 20, stdout
    assert all(line.endswith("local=0") for line in lines), stdout
