"""The cuda device: moving models, transfers, the missing-kernel report and the logged CPU
fallback, device-following losses, determinism, and training that matches the CPU step for step.
Runs on numba's CUDA simulator in CI (see tests/cuda_sim.py)."""

import copy
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import float64

import minicnn
from minicnn import InputError, KernelMissingError, Layer, nn, optim, testing, to_numpy
from minicnn.kernel import Kernel
from minicnn.registry import get_registry, hookimpl

from .cuda_sim import (  # noqa: F401 - the fixture is autouse
    cuda_or_skip,
    launched_kernel_names,
    small_launches,
)

cuda_device = cuda_or_skip()
from minicnn import cuda_reduce  # noqa: E402 - imports numba.cuda: after the simulator check


def _run(code, **env):
    environment = dict(os.environ, MINICNN_DISABLE_PLUGIN_AUTOLOAD="1", **env)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_and_cpu_use_never_touch_cuda():
    out = _run("""
        import sys
        import numpy as np
        import minicnn
        from minicnn import nn, optim
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
        y = model(np.ones((1, 1, 3, 3), np.float32))
        model.backward(np.ones_like(y))
        optim.SGD(model.parameters(), lr=0.1).step()
        minicnn.get_registry()
        print(sorted(m for m in sys.modules if m.startswith(("numba.cuda", "minicnn.cuda",
                                                             "numba_cuda"))
                     or m.endswith("_cuda")))
    """)
    assert out.strip() == "[]"


def test_row_stack_shim_only_where_numpy_lacks_it():
    out = _run("""
        import numpy as np
        if hasattr(np, "row_stack"):
            del np.row_stack                      # as numpy 2.5 does
        from minicnn import cuda_device
        assert cuda_device.ROW_STACK_SHIM
        assert np.row_stack(([1, 2], [3, 4])).tolist() == [[1, 2], [3, 4]]
        try:
            import numba_cuda  # noqa: F401 - numba-cuda: its arrayobj overloads np.row_stack
        except ImportError:
            pass
        else:
            import numba.cuda.np.arrayobj  # noqa: F401
        print("ok")
    """, NUMBA_ENABLE_CUDASIM="1")
    assert out.strip() == "ok"
    import numpy
    if hasattr(numpy, "row_stack") and not cuda_device.ROW_STACK_SHIM:
        assert numpy.row_stack.__module__.startswith("numpy")   # left alone


def test_to_moves_parameters_and_buffers_and_back():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    state = model.state_dict()
    model.to("cuda")
    assert model.device == "cuda"
    for _, p in model.named_parameters():
        assert cuda_device.is_device_array(p.data)
    for _, b in model.named_buffers():
        assert cuda_device.is_device_array(b)
    assert model[1].num_batches_tracked.shape == ()
    for key, value in model.state_dict().items():   # host copies, same values
        assert isinstance(value, np.ndarray)
        np.testing.assert_array_equal(value, state[key])
    model.to("cpu")
    assert model.device == "cpu"
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    assert isinstance(model[0].weight.data, np.ndarray)


def test_to_numpy_is_the_identity_on_numpy_and_copies_device_arrays():
    x = np.arange(6.0).reshape(2, 3)
    assert minicnn.to_numpy(x) is x
    d = cuda_device.CUDADevice().asarray(x)
    back = minicnn.to_numpy(d)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, x)


def test_numpy_inputs_are_accepted_and_outputs_stay_on_the_device():
    layer = nn.Linear(3, 2).to("cuda")
    y = layer(np.ones((2, 3), np.float32))
    assert cuda_device.is_device_array(y)
    again = layer(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(to_numpy(again), to_numpy(y))


def test_arrays_with_odd_strides_on_size_one_axes_are_contiguous():
    """numpy gives ``x[None]`` stride 0 on the new axis and calls it contiguous; numba judges by
    every stride and refused to reshape such an array on a real GPU (the style-transfer image
    broke this way). Host and device arrays of that kind both run."""
    image = testing.tie_free((2, 5, 5), seed=4)
    odd = np.ascontiguousarray(image[None])
    assert odd.strides[0] == 0 and odd.flags.c_contiguous
    conv = nn.Conv2d(2, 3, 3)
    expected = conv(image[None].copy())
    conv.to("cuda")
    dev = cuda_device.CUDADevice()
    for x in (odd, dev.asarray(odd), cuda_device.cuda.to_device(odd)):
        np.testing.assert_allclose(to_numpy(conv(x)), expected, rtol=1e-5, atol=1e-6)
    moved = dev.asarray(odd)
    assert tuple(moved.strides) == cuda_device.c_strides(odd.shape, odd.itemsize)
    assert cuda_device.flat(cuda_device.cuda.to_device(odd)).shape == (odd.size,)


def test_cpu_module_refuses_device_arrays():
    x = cuda_device.CUDADevice().asarray(np.ones((2, 3), np.float32))
    with pytest.raises(InputError, match=r"on the 'cuda' device and the module on the CPU"):
        nn.Linear(3, 2)(x)


def test_parameterless_loss_follows_device_inputs():
    logits = testing.tie_free((3, 4))
    labels = np.array([1, 0, 3])
    loss = nn.CrossEntropyLoss()                   # never moved: no parameters, no buffers
    on_cpu = loss(logits, labels)
    g_cpu = loss.backward()
    value = loss(cuda_device.CUDADevice().asarray(logits), labels)
    g = loss.backward()
    assert cuda_device.is_device_array(g)
    assert value == pytest.approx(on_cpu, rel=1e-6)
    np.testing.assert_allclose(to_numpy(g), g_cpu, rtol=1e-5, atol=1e-7)


def test_loss_compute_leaves_the_value_on_the_device_and_backward_follows_it():
    logits = testing.tie_free((3, 4))
    labels = np.array([1, 0, 3])
    loss = nn.CrossEntropyLoss()
    on_cpu = loss(logits, labels)
    g_cpu = loss.backward()
    value = loss.compute(cuda_device.CUDADevice().asarray(logits), labels)
    assert cuda_device.is_device_array(value) and value.shape == ()
    g = loss.backward()
    assert float(to_numpy(value)) == pytest.approx(on_cpu, rel=1e-6)
    np.testing.assert_allclose(to_numpy(g), g_cpu, rtol=1e-5, atol=1e-7)


def test_astype_on_the_device():
    layer = nn.Linear(3, 2).to("cuda").double()
    assert layer.weight.data.dtype == np.float64 and cuda_device.is_device_array(layer.weight.data)


# -- a layer with only a CPU kernel ---------------------------------------------------------------

class Scale2(Layer):
    """y = 2 x (test layer with a CPU kernel only)."""

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]


class Scale2CPU(Kernel):
    layer, device = "Scale2", "cpu"

    def forward(self, layer, xs, ys, ws):
        ys[0][...] = 2 * xs[0]

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            gxs[0][...] = 2 * gys[0]


class CPUOnlyPlugin:
    @hookimpl
    def minicnn_layers(self):
        return [Scale2]

    @hookimpl
    def minicnn_kernels(self):
        return [Scale2CPU]


@pytest.fixture
def cpu_only_layer():
    registry = get_registry()
    registry.register(CPUOnlyPlugin(), name="cpu-only-test")
    yield
    registry.unregister("cpu-only-test")


def test_missing_kernel_is_reported_when_moving(cpu_only_layer):
    model = nn.Sequential(nn.Linear(3, 3), Scale2(), nn.ReLU())
    with pytest.raises(KernelMissingError, match=r"no 'cuda' kernel for: Scale2 \(1\).*fallback"):
        model.to("cuda")
    assert model.device == "cpu" and isinstance(model[0].weight.data, np.ndarray)   # unmoved


def test_cpu_fallback_is_opt_in_and_logged(cpu_only_layer, caplog):
    model = nn.Sequential(nn.Linear(3, 3), Scale2(), nn.Linear(3, 2))
    reference = copy.deepcopy(model)
    with caplog.at_level(logging.WARNING, logger="minicnn.device"):
        model.to("cuda", fallback="cpu")
    assert "Scale2" in caplog.text and "stay on the CPU" in caplog.text
    assert cuda_device.is_device_array(model[0].weight.data)
    x = testing.tie_free((2, 3))
    with caplog.at_level(logging.WARNING, logger="minicnn.device"):
        y = model(x)
    assert "node '1' (Scale2)" in caplog.text and "copies" in caplog.text
    np.testing.assert_allclose(to_numpy(y), reference(x), rtol=1e-5, atol=1e-6)
    gy = testing.tie_free((2, 2), seed=3)
    gx = model.backward(gy)
    np.testing.assert_allclose(to_numpy(gx), reference.backward(gy), rtol=1e-5, atol=1e-6)
    for (_, p), (_, q) in zip(model.named_parameters(), reference.named_parameters(),
                              strict=True):
        np.testing.assert_allclose(to_numpy(p.grad), q.grad, rtol=1e-5, atol=1e-6)


def test_unknown_fallback_is_an_error():
    with pytest.raises(ValueError, match="fallback"):
        nn.ReLU().to("cuda", fallback="gpu")


# -- determinism and training ---------------------------------------------------------------------

def _small_convnet(num_classes=3):
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(2 * 2 * 2, num_classes))


def test_backward_is_bit_identical_run_after_run():
    model = _small_convnet().to("cuda")
    x = testing.tie_free((2, 1, 4, 4))
    gy = testing.tie_free((2, 3), seed=1)
    results = []
    for _ in range(2):
        model(x)
        gx = to_numpy(model.backward(gy))
        results.append([gx] + [to_numpy(p.grad) for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_add_and_flatten_hand_their_gradient_on_without_copies(monkeypatch):
    """Add and Flatten pass the output gradient on, and Flatten's output is a view of its input
    (no copy launches either way); where a passed-on gradient meets a second consumer's, the
    sum goes to a buffer of its own: the CPU's outputs and gradients, and the output gradient
    the caller passed is left as it was."""
    x = minicnn.Input((2, 3, 3))
    h = nn.ReLU()(x)
    s = nn.Add()([h, nn.Conv2d(2, 2, 1)(h)])         # h feeds Add and the conv: fan-out
    cpu = minicnn.Model(x, nn.Linear(18, 2)(nn.Flatten()(nn.Add()([s, h]))))
    gpu = copy.deepcopy(cpu).to("cuda")
    xs, gy = testing.tie_free((2, 2, 3, 3)), testing.tie_free((2, 2), seed=1)
    from minicnn.layers.merge_cpu import AddCPU
    from minicnn.layers.shape_cpu import FlattenCPU
    with monkeypatch.context() as patch:   # the reference runs the kernels' own copies
        for kernel in (AddCPU, FlattenCPU):
            patch.setattr(kernel, "passes_gradient", False)
        patch.setattr(FlattenCPU, "output_is_view", False)
        y = cpu(xs).copy()
        expected = [cpu.backward(gy)] + [p.grad.copy() for p in cpu.parameters()]
    gy_device = cuda_device.CUDADevice().asarray(gy)
    names = launched_kernel_names(monkeypatch)
    np.testing.assert_allclose(to_numpy(gpu(xs)), y, rtol=1e-5, atol=1e-6)
    got = [to_numpy(gpu.backward(gy_device))] + [to_numpy(p.grad) for p in gpu.parameters()]
    assert "_copy_kernel" not in names
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(to_numpy(gy_device), gy)


@pytest.mark.parametrize("make_opt", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda p: optim.AdamW(p, lr=0.01, amsgrad=True),
], ids=["sgd_nesterov", "adamw_amsgrad"])
def test_training_matches_the_cpu_step_for_step(make_opt):
    x = testing.tie_free((2, 1, 4, 4))
    labels = np.array([2, 0])
    runs = {}
    for device in ("cpu", "cuda"):
        model = _small_convnet().to(device)
        loss = nn.CrossEntropyLoss()
        opt = make_opt(model.parameters())
        values = []
        for _ in range(3):
            values.append(loss(model(x), labels))
            model.backward(loss.backward(), input_grad=False)
            opt.step()
        runs[device] = values, [to_numpy(p.data) for p in model.parameters()]
        if device == "cuda":
            assert all(cuda_device.is_device_array(s) for st in opt.state.values()
                       for s in st.values() if hasattr(s, "shape"))
    np.testing.assert_allclose(runs["cuda"][0], runs["cpu"][0], rtol=1e-5)
    for a, b in zip(runs["cuda"][1], runs["cpu"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(cuda_device.SIMULATOR, reason="bare launches need a real GPU: the simulator "
                                                  "runs kernels as Python and never uses them")
def test_bare_launches_give_the_ordinary_launches_bits(monkeypatch):
    """Training with minicnn's bare launches (numba's marshalling cached) and with numba's
    ordinary calls gives the same bits, and the bare path is really taken."""
    from minicnn import cuda_launch
    if not cuda_launch.available():
        pytest.skip("bare launches need numba-cuda with cuda.core")
    x = testing.tie_free((8, 1, 4, 4))
    labels = np.arange(8) % 3
    runs = {}
    for bare in (True, False):
        monkeypatch.setattr(cuda_launch, "available", lambda bare=bare: bare)
        cuda_device.set_launch()                  # drops the configured launchers
        before = cuda_launch.launches["bare"]
        minicnn.manual_seed(0)
        model = _small_convnet().to("cuda")
        loss = nn.CrossEntropyLoss()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        values = []
        for _ in range(4):
            values.append(loss(model(x), labels))
            model.backward(loss.backward(), input_grad=False)
            opt.step()
        runs[bare] = values, [to_numpy(p.data) for p in model.parameters()]
        assert (cuda_launch.launches["bare"] > before) == bare
    cuda_device.set_launch()
    assert runs[True][0] == runs[False][0]
    for a, b in zip(runs[True][1], runs[False][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_bare_launches_stay_off_on_the_simulator_and_when_turned_off(monkeypatch):
    from minicnn import cuda_launch
    monkeypatch.setenv("MINICNN_BARE_LAUNCH", "0")
    assert not cuda_launch.available()
    if cuda_device.SIMULATOR:
        monkeypatch.delenv("MINICNN_BARE_LAUNCH")
        cuda_device.set_launch()
        layer = nn.Linear(3, 2).to("cuda")
        layer(np.ones((2, 3), np.float32))
        assert not any(isinstance(run, cuda_launch.BareLauncher)
                       for run in cuda_device._launchers.values())


def test_launch_settings_round_trip():
    old = cuda_device.set_launch(threads_per_block=16, max_blocks=2)
    assert (cuda_device.THREADS_PER_BLOCK, cuda_device.MAX_BLOCKS) == (16, 2)
    assert cuda_device.set_launch(*old) == (16, 2)


def test_trainer_fits_and_predicts_on_the_device_like_on_the_cpu():
    from minicnn.train import Trainer, predict
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 4, 4), dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    results = {}
    for device in ("cpu", "cuda"):
        model = _small_convnet().to(device)
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                          progress=False, topk=(1, 2))
        history = trainer.fit([(x[:3], y[:3]), (x[3:], y[3:])], epochs=2,
                              val_loader=[(x, y)])
        logits = predict(model, x, batch_size=4)
        assert isinstance(logits, np.ndarray)
        results[device] = history, logits
    (h_cpu, l_cpu), (h_gpu, l_gpu) = results["cpu"], results["cuda"]
    for a, b in zip(h_cpu, h_gpu, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(l_gpu, l_cpu, rtol=1e-4, atol=1e-6)


# -- launch_blocks: fixed grids beside the grid-stride launches ---------------------------------

TREE = 16   # the shared array of the reduction below: a compile-time size
cuda = cuda_device.cuda   # a module global: the simulator swaps it inside kernels
block_sum = cuda_reduce.block_sum


@cuda.jit
def where(out, dims):
    """Each thread writes its (block, thread) into its own cell; dims: the grid it ran on."""
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i < out.size:
        out[i] = cuda.blockIdx.x * 1000 + cuda.threadIdx.x
    if i == 0:
        dims[0] = cuda.gridDim.x
        dims[1] = cuda.blockDim.x


@cuda.jit
def block_sums(x, sums, length):
    """One block per row of ``x`` (rows of ``length``): thread t sums t, t + T, ... in order,
    then a fixed tree in shared memory (T a power of two up to TREE)."""
    row = cuda.blockIdx.x
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    partial = cuda.shared.array(TREE, float64)
    acc = 0.0
    for k in range(t, length, threads):
        acc += x[row * length + k]
    total = block_sum(partial, acc, t, threads)     # minicnn's shared tree reduction
    if t == 0:
        sums[row] = total


def _tree_sum(row, threads):
    """The reduction's order, in Python float64 arithmetic."""
    partial = [0.0] * threads
    for t in range(threads):
        for k in range(t, len(row), threads):
            partial[t] += float(row[k])
    width = threads // 2
    while width > 0:
        for t in range(width):
            partial[t] += partial[t + width]
        width //= 2
    return partial[0]


def _grid_of(kernel, launcher, *geometry):
    dev = cuda_device.CUDADevice()
    out, dims = dev.asarray(np.full(64, -1, np.int64)), dev.asarray(np.zeros(2, np.int64))
    launcher(kernel, *geometry, out, dims)
    return to_numpy(out), tuple(to_numpy(dims))


def test_launch_blocks_runs_exactly_the_grid_it_is_given():
    out, dims = _grid_of(where, cuda_device.launch_blocks, 3, 4)
    assert dims == (3, 4)
    expected = [b * 1000 + t for b in range(3) for t in range(4)]
    assert out[:12].tolist() == expected and (out[12:] == -1).all()   # every thread, once


def test_fixed_grids_and_grid_stride_launches_of_one_kernel_keep_their_own_grids():
    """Each cached launcher runs with its own geometry, whatever ran last (numba's simulator
    configures the kernel object itself), and ``set_launch`` moves the grid-stride launches
    only."""
    for _ in range(2):                              # the second round: cached launchers
        assert _grid_of(where, cuda_device.launch_blocks, 3, 4)[1] == (3, 4)
        assert _grid_of(where, cuda_device.launch_blocks, 2, 8)[1] == (2, 8)
        assert _grid_of(where, cuda_device.launch, 20)[1] == (3, 8)    # ceil(20 / 8), small
        assert _grid_of(where, cuda_device.launch, 64)[1] == (4, 8)    # MAX_BLOCKS = 4
    old = cuda_device.set_launch(threads_per_block=2, max_blocks=16)
    try:
        assert _grid_of(where, cuda_device.launch, 20)[1] == (10, 2)
        assert _grid_of(where, cuda_device.launch_blocks, 3, 4)[1] == (3, 4)
    finally:
        cuda_device.set_launch(*old)
    assert _grid_of(where, cuda_device.launch, 20)[1] == (3, 8)


def test_a_fixed_block_reduction_is_its_tree_order_bit_for_bit():
    """One block per row, sums in a fixed tree: the bits of the same order computed in Python,
    for several block sizes, run after run and whatever the grid-stride settings; a zero-block
    launch does nothing and is not recorded; every launch is recorded for the PTX check."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 37)) * 10.0 ** rng.integers(-8, 8, (3, 37))   # order matters
    dev = cuda_device.CUDADevice()
    d_x = dev.asarray(x)
    results = {}
    cuda_device.RECORD = set()
    try:
        for threads in (1, 4, 16):
            expected = [_tree_sum(row, threads) for row in x]
            for max_blocks in (4, 1):
                old = cuda_device.set_launch(max_blocks=max_blocks)
                try:
                    sums = dev.asarray(np.zeros(3))
                    cuda_device.launch_blocks(block_sums, 3, threads, cuda_device.flat(d_x),
                                              sums, 37)
                finally:
                    cuda_device.set_launch(*old)
                np.testing.assert_array_equal(to_numpy(sums), expected)
            results[threads] = to_numpy(sums)
        recorded = set(cuda_device.RECORD)
        untouched = dev.asarray(np.full(3, 7.0))
        cuda_device.launch_blocks(block_sums, 0, 4, cuda_device.flat(d_x), untouched, 37)
        assert set(cuda_device.RECORD) == recorded
    finally:
        cuda_device.RECORD = None
    assert (to_numpy(untouched) == 7.0).all()
    assert recorded == {(__name__, "block_sums",
                         (("array", "float64", 1), ("array", "float64", 1), ("int64",)))}
    assert not np.array_equal(results[1], results[16])          # the order is really different
    np.testing.assert_allclose(results[4], x.sum(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        cuda_device.launch_blocks(block_sums, 3, 0, cuda_device.flat(d_x), untouched, 37)


def test_set_launch_refuses_empty_blocks_and_grids_and_changes_nothing():
    before = (cuda_device.THREADS_PER_BLOCK, cuda_device.MAX_BLOCKS)
    for bad in ({"threads_per_block": 0}, {"threads_per_block": 16, "max_blocks": 0}):
        with pytest.raises(ValueError, match="at least 1"):
            cuda_device.set_launch(**bad)
        assert (cuda_device.THREADS_PER_BLOCK, cuda_device.MAX_BLOCKS) == before


@pytest.mark.parametrize("name, shape, launches", [
    ("lenet5", (16, 1, 28, 28), 30), ("resnet20", (16, 3, 32, 32), 213)])
def test_a_training_step_makes_the_launches_it_made_when_last_counted(monkeypatch, name, shape,
                                                                      launches):
    """Small networks on a GPU are bound by launches, so their number per training step
    (forward, cross-entropy, backward, SGD with momentum) is pinned: a change must be meant
    (then update the count here and in docs/benchmarks.md). Counted with every launch replaced
    by a no-op (``scripts/cuda_host_overhead.py`` does the same), so nothing runs."""
    from minicnn import losses_cuda, zoo

    class Counting(dict):
        calls = 0

        def get(self, key, default=None):
            return self.count

        def count(self, *args):
            Counting.calls += 1

    monkeypatch.setattr(cuda_device, "_launchers", Counting())
    monkeypatch.setattr(losses_cuda, "_flag_set", lambda ws: False)   # no kernel wrote the flags
    model = getattr(zoo, name)().to("cuda")
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dev = cuda_device.CUDADevice()
    x, y = dev.asarray(np.zeros(shape, np.float32)), dev.asarray(np.arange(shape[0]) % 10)

    def step():
        loss.compute(model(x), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    step()                          # plans, buffers, the flags' first clearing
    Counting.calls = 0
    step()
    assert Counting.calls == launches
