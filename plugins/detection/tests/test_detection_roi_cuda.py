"""The CUDA kernels of RoIPool and RoIAlign (``roi_cuda.py``) against the CPU kernels, on numba's
CUDA simulator: tiny shapes, 8 threads a block and at most 4 blocks (so grid-stride loops run),
2 channels a backward thread. Parity in float32 and float64 on random boxes with border, outside,
zero-area and inverted ones (ROI pool bit for bit: the same maxima and the same sums in the same
order), float64 finite-difference gradchecks through the layers on the device, a Fast R-CNN head
moved with ``model.to("cuda")``, identical bits across runs and launch shapes, the same input
errors, and a PTX compile of every kernel in both dtypes (a fresh process without the simulator,
started early so that it compiles on the second core; skipped when numba finds no NVVM).
``MINICNN_TEST_REAL_GPU=1`` runs the same tests on a real GPU.

The simulator must be chosen before numba.cuda is first imported: this module chooses it at
import (as minicnn's ``tests/cuda_sim.py`` does) unless numba.cuda is already loaded.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from minicnn import InputError, testing, to_numpy
from minicnn.registry import Registry, set_registry
from test_detection_roi import CASES, random_rois

from minicnn_detection import RoIAlign, RoIPool, fast_rcnn_head, plugin

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
    registry.register(plugin, name="detection")
    return registry


_ptx = {}


def _ptx_process():
    """The PTX compile (below) in a fresh process without the simulator, started once, early:
    it runs on the second core while the simulator tests run."""
    if "process" not in _ptx:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_ROOT), env.get("PYTHONPATH", "")])
        _ptx["process"] = subprocess.Popen([sys.executable, "-c", PTX], env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return _ptx["process"]


@pytest.fixture(scope="module", autouse=True)
def simulated_launches(request):
    """A registry of this module's own (the CUDA kernels stay out of other tests'), small
    launches (minicnn's settings, which the ROI kernels' launches follow) and a small channel
    block, a short thread switch interval (the simulator runs a block's threads as Python
    threads)."""
    import minicnn.cuda_device as cuda_device

    from minicnn_detection import roi_cuda
    previous = set_registry(_registry())
    old_core = cuda_device.set_launch(threads_per_block=8, max_blocks=4)
    old_block = roi_cuda.set_channel_block(2)
    interval = sys.getswitchinterval()
    if cuda_device.SIMULATOR:
        sys.setswitchinterval(5e-5)
    if any(item.name == "test_every_kernel_compiles_to_ptx" for item in request.session.items):
        _ptx_process()
    yield
    sys.setswitchinterval(interval)
    process = _ptx.pop("process", None)
    if process is not None and process.poll() is None:   # the PTX test did not run (deselected)
        process.kill()
        process.communicate()
    roi_cuda.set_channel_block(old_block)
    cuda_device.set_launch(*old_core)
    set_registry(previous)


def _layers(case):
    n, c, h, w, out, scale, sr, aligned = case
    return RoIPool(out, scale), RoIAlign(out, scale, sr, aligned)


def test_the_device_hook_registers_the_cuda_kernels():
    from minicnn_detection.roi_cuda import RoIAlignCUDA, RoIPoolCUDA
    registry = _registry()
    assert registry.kernel("RoIAlign", "cuda") is None        # not before the device is used
    assert plugin.minicnn_device_kernels("mps") == []
    registry.enable_device("cuda")
    assert isinstance(registry.kernel("RoIPool", "cuda"), RoIPoolCUDA)
    assert isinstance(registry.kernel("RoIAlign", "cuda"), RoIAlignCUDA)
    assert registry.devices_for("RoIAlign") == ["cpu", "cuda"]


def test_the_roi_layers_pass_every_conformance_check_on_the_device():
    """``NUMBA_ENABLE_CUDASIM=1 minicnn check-plugin detection``: every column, the cuda parity
    included, passes in full (strict) with the small launches of this module."""
    from minicnn import conformance
    from minicnn.registry import get_registry
    report = conformance.check_plugin("detection", get_registry())
    assert sorted(r.type_name for r in report.layers) == ["RoIAlign", "RoIPool"]
    report.assert_ok(strict=True)
    assert all(layer.devices == ("cpu", "cuda") for layer in report.layers), report.format()


def _check(layer, x, rois):
    if isinstance(layer, RoIPool):
        tol = (0.0, 0.0)         # the same maxima, the same gradient sums in the same order
    elif x.dtype == np.float64:
        tol = (1e-12, 1e-10)
    else:
        tol = (1e-5, 1e-4)
    testing.check_parity(layer, [x, rois], device="cuda", atol=tol[0], rtol=tol[1])


PARITY = ([(case, np.float64) for case in CASES]          # float32: two cases (the simulator
          + [(case, np.float32) for case in CASES[:2]])   # is slow)


@pytest.mark.parametrize("case, dtype", PARITY, ids=[f"case{CASES.index(c)}-{np.dtype(d).name}"
                                                     for c, d in PARITY])
def test_parity_with_the_cpu_kernels(case, dtype):
    n, c, h, w, _, scale, _, _ = case
    x = testing.tie_free((n, c, h, w), seed=1, dtype=dtype)
    rois = random_rois(n, h, w, 4, seed=2, scale=scale).astype(dtype)
    for layer in _layers(case):
        _check(layer, x, rois)


def test_parity_on_awkward_geometry():
    """Bins under a cell (tiny boxes, large outputs), inverted and zero-size boxes with a fixed
    sampling ratio (negative or zero bins: samples at one point or walking backwards), a box
    far outside, one-row and one-column maps."""
    rois = np.array([[0, 1.2, 1.4, 1.6, 1.5],       # far under a cell, 3x3 bins
                     [0, 4.0, 3.0, 2.5, 1.0],       # inverted
                     [0, 2.0, 2.0, 2.0, 2.0],       # zero size
                     [1, -9.0, -9.0, -7.0, -8.0],   # outside, top left
                     [1, 3.0, 0.0, 9.0, 1.0],       # across the right border
                     [1, -0.9, -0.6, 0.2, 0.1]])    # around the top-left corner
    for shape in ((2, 2, 4, 5), (2, 1, 1, 6), (2, 1, 5, 1)):
        x = testing.tie_free(shape, seed=3, dtype=np.float64)
        for layer in (RoIPool(3, 1.0), RoIAlign(3, 1.0, 2, True), RoIAlign(3, 1.0, 2, False),
                      RoIAlign(3, 0.5, -1, False)):
            _check(layer, x, rois)
    ties = np.random.default_rng(0).integers(0, 3, (2, 2, 4, 5)).astype(np.float64)
    _check(RoIPool(2, 1.0), ties, rois)         # equal maxima: the first one gets the gradient


@pytest.mark.parametrize("layer", [RoIPool((2, 3), 0.5), RoIAlign((2, 3), 0.5, -1, True),
                                   RoIAlign(2, 1.0, 2, False)], ids=["pool", "align", "align2"])
def test_gradcheck_on_the_device(layer):
    x = testing.tie_free((2, 2, 4, 5), seed=4)
    rois = random_rois(2, 4, 5, 2, seed=6, scale=layer.spatial_scale)[[0, 1, 2, 4, 8, 9]]
    testing.gradcheck(layer.to("cuda"), [x, rois], max_elements=16)


def _forward_backward(layer, x, rois, gy_seed=1):
    y = to_numpy(layer([x, rois])).copy()
    gy = testing.tie_free(y.shape, seed=gy_seed, dtype=y.dtype)
    return y, to_numpy(layer.backward(gy)[0]).copy()


def test_same_bits_in_every_run_and_launch_shape():
    """Heavily overlapping boxes (many ROIs add into the same cells), float32: the outputs and
    feature gradients of three runs, the last with other block and channel-block sizes, are
    identical bit for bit; ROI pool's are also the CPU's bits."""
    import minicnn.cuda_device as cuda_device

    from minicnn_detection import roi_cuda
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    rois = random_rois(2, 6, 6, 4, seed=3)
    rois[:, 1:] = np.abs(rois[:, 1:]) % 5
    rois = rois.astype(np.float32)
    for make in (lambda: RoIAlign(3, 1.0), lambda: RoIPool(3, 1.0)):
        layer = make().to("cuda")
        runs = [_forward_backward(layer, x, rois), _forward_backward(layer, x, rois)]
        old = cuda_device.set_launch(threads_per_block=16, max_blocks=2)
        old_block = roi_cuda.set_channel_block(3)
        try:
            runs.append(_forward_backward(make().to("cuda"), x, rois))
        finally:
            roi_cuda.set_channel_block(old_block)
            cuda_device.set_launch(*old)
        for y, gx in runs[1:]:
            np.testing.assert_array_equal(y, runs[0][0])
            np.testing.assert_array_equal(gx, runs[0][1])
        assert np.abs(runs[0][1]).max() > 0
        if isinstance(layer, RoIPool):
            cpu = _forward_backward(make(), x, rois)
            np.testing.assert_array_equal(runs[0][0], cpu[0])
            np.testing.assert_array_equal(runs[0][1], cpu[1])


@pytest.mark.parametrize("pooling", ["align", "pool"])
def test_a_fast_rcnn_head_runs_on_the_device(pooling):
    """``model.to("cuda")`` on the Fast R-CNN head (ROI layer, flatten, fully connected layers,
    two outputs): outputs, feature gradient and parameter gradients match the CPU's."""
    head = fast_rcnn_head(2, 2, pooling, pool_size=2, spatial_scale=0.5, hidden=(6,),
                          rng=np.random.default_rng(0))
    x = testing.tie_free((2, 2, 5, 6), seed=7)
    rois = random_rois(2, 5, 6, 2, seed=8, scale=0.5).astype(np.float32)
    testing.check_parity(head, [x, rois], device="cuda", atol=1e-5, rtol=1e-4)


def test_bad_rois_are_the_cpu_errors():
    x = np.ones((2, 1, 5, 5), np.float32)
    rois = np.array([[0, 0, 0, 3, 3], [2, 1, 1, 4, 4]], np.float32)
    for layer in (RoIAlign(2), RoIPool(2)):
        with pytest.raises(InputError, match=rf"\({layer.type_name}\): .*batch index 2\.0; "
                                             r"expected a whole number in \[0, 2\)"):
            layer.to("cuda")([x, rois])


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
    from minicnn_detection import roi_cuda
    i64, i32 = types.int64[::1], types.int32[::1]
    for dt in (types.float32, types.float64):
        f = types.Array(dt, 1, "C")
        for name, sig in (("roi_pool_forward", (f, f, i64, f, i32, i64, types.float64)),
                          ("roi_pool_backward", (f, f, i64, i32, f, i64, types.float64)),
                          ("roi_align_forward", (f, f, i64, f, i64, types.float64)),
                          ("roi_align_backward", (f, f, i64, f, i64, types.float64))):
            ptx, _ = cuda.compile_ptx(getattr(roi_cuda, name).py_func, sig, cc=(8, 0))
            local = sum(int(n) for n in re.findall(r"__local_depot\\d+\\[(\\d+)\\]", ptx))
            print(f"ok {name} {dt} local={local}")
""")


def test_every_kernel_compiles_to_ptx():
    """The simulator runs kernels as Python and misses typing errors: compile both dtypes'
    signatures (as launched: flat C-contiguous arrays, int64 tables, a float64 scale) to PTX."""
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
    assert len(lines) == 8, stdout
    assert all(line.endswith("local=0") for line in lines), stdout


def test_a_whole_detector_trains_and_detects_on_the_device():
    """A tiny Faster R-CNN moved with ``to("cuda")``: one training step's losses and parameter
    gradients, and the detections, match the CPU's (the numpy parts of the step take the
    device outputs through ``to_numpy``)."""
    import copy

    import minicnn

    from minicnn_detection import DetShapes, faster_rcnn
    minicnn.manual_seed(4)
    cpu = faster_rcnn(2, widths=(2, 2, 2, 2), head_hidden=(4,)).double()
    gpu = copy.deepcopy(cpu).to("cuda")
    x, targets = DetShapes(1, 16, num_classes=2, seed=3, min_size=6, max_size=12).get_batch([0])
    x = x.astype(np.float64)
    losses = {name: det.forward_backward(x, targets) for name, det in (("cpu", cpu),
                                                                        ("cuda", gpu))}
    for key, value in losses["cpu"].items():
        np.testing.assert_allclose(losses["cuda"][key], value, rtol=1e-9, err_msg=key)
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters(), strict=True):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-7, atol=1e-12,
                                   err_msg=name)
    found = {name: det.detect(x, score_thresh=0.0)[0] for name, det in (("cpu", cpu),
                                                                        ("cuda", gpu))}
    for key in ("boxes", "scores", "labels"):
        np.testing.assert_allclose(found["cuda"][key], found["cpu"][key], rtol=1e-7,
                                   atol=1e-9, err_msg=key)
