"""The tiled implicit-GEMM convolution kernels (``minicnn.layers.conv_tiled_cuda``) against the CPU
kernels, with the tiles shrunk (4 x 8 x 4, 2 x 2 register blocks, 8 threads) and the thresholds
lowered so that tiny shapes on numba's CUDA simulator run several blocks, grid-stride over tiles,
partial tiles at every edge (rows, columns, reduction), split weight-gradient reductions (empty
chunks included) and the block-reduced bias sums. Also: the kernel choice at the real settings,
determinism and the fused activation epilogue. ``tests/test_cuda_ptx.py`` compiles these kernels
to PTX at the real tile sizes (``record_tiled_launches``)."""

import contextlib

import numpy as np
import pytest

from minicnn import nn, testing, to_numpy

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse

cuda_device = cuda_or_skip()
from minicnn.layers import conv_cuda  # noqa: E402 - after the simulator choice
from minicnn.layers import conv_tiled_cuda as tiled  # noqa: E402

SMALL = {"TILES": ((4, 8, 4, 2, 2),), "NARROW_TILES": ((4, 4, 4, 2, 2),), "MIN_GRID": 0,
         "SPLIT_K_GRID": 0, "MIN_K_CHUNK": 4,
         "MIN_CHANNELS": 1, "MIN_PIXELS": 1, "MIN_SPLIT": 4, "TARGET_BLOCKS": 16,
         "SUM_THREADS": 8}
REAL = {name: getattr(tiled, name) for name in SMALL}


@contextlib.contextmanager
def tiny_tile_settings():
    for name, value in SMALL.items():
        setattr(tiled, name, value)
    try:
        yield
    finally:
        for name, value in REAL.items():
            setattr(tiled, name, value)


@pytest.fixture(scope="module", autouse=True)
def tiny_tiles():
    with tiny_tile_settings():
        yield


def record_tiled_launches():
    """[module, kernel name, argument types] of every tiled kernel (all directions, bias sums,
    split sums; float32), for ``tests/test_cuda_ptx.py``: recorded on tiny tiles, then renamed to
    each of the real ``TILES`` / ``SUM_THREADS`` (what a GPU compiles). The float64 kernels are
    the same code (the gradchecks here run them on the simulator)."""
    previous = cuda_device.RECORD
    cuda_device.RECORD = set()
    try:
        with tiny_tile_settings():
            testing.check_parity(nn.ConvTranspose2d(2, 3, 2, stride=2), [_x((2, 2, 2, 2))],
                                 device="cuda", atol=1e-3, rtol=1e-3)
            testing.check_parity(nn.Conv2d(2, 3, 3, padding=1), [_x((1, 2, 2, 3))],
                                 device="cuda", atol=1e-3, rtol=1e-3)
            tiled.SPLIT_K_GRID = 1 << 40        # and once with split reductions
            testing.check_parity(nn.Conv2d(2, 3, 3, padding=1), [_x((1, 2, 2, 3))],
                                 device="cuda", atol=1e-3, rtol=1e-3)
        records = sorted(cuda_device.RECORD)
    finally:
        cuda_device.RECORD = previous
    out = set()
    for module, name, types in records:
        if module == tiled.__name__ and "[" in name:
            kind = name.split("[")[0]
            tiles = REAL["TILES"] + REAL["NARROW_TILES"]
            for tile in ((REAL["SUM_THREADS"],) if kind == "channel_sum" else tiles):
                out.add((module, tiled.kernel_name(kind, "float32", tile), types))
        else:
            out.add((module, name, types))
    out = sorted(out)
    modules = {tiled.__name__, tiled.split_sum.py_func.__module__}
    kinds = _kinds(name for module, name, _ in out if module in modules)
    assert kinds == {"forward", "backward_data", "backward_data_strided", "backward_weight",
                     "channel_sum", "split_sum", "split_sum_rows"}
    return out


def _x(shape, seed=0):
    return testing.tie_free(shape, seed=seed)


# (id, layer factory, input shape)
CASES = [
    ("partial_tiles", lambda: nn.Conv2d(3, 5, 3, padding=1), (2, 3, 3, 5)),
    ("stride_dilation", lambda: nn.Conv2d(2, 6, 3, stride=2, padding=2, dilation=2), (2, 2, 5, 6)),
    ("same_asymmetric", lambda: nn.Conv2d(3, 4, (2, 4), padding="same", bias=False), (1, 3, 4, 5)),
    ("many_splits", lambda: nn.Conv2d(2, 3, 1), (2, 2, 5, 5)),
    ("padding_past_the_kernel", lambda: nn.Conv2d(3, 4, 2, padding=2), (2, 3, 3, 4)),
    ("uneven_strides", lambda: nn.Conv2d(3, 4, 3, stride=(1, 2), padding=1), (2, 3, 4, 5)),
    ("conv1d", lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1), (2, 3, 9)),
    ("transpose_stride", lambda: nn.ConvTranspose2d(3, 5, 3, stride=2, padding=1,
                                                    output_padding=1), (2, 3, 3, 2)),
    ("transpose_dilation", lambda: nn.ConvTranspose2d(2, 3, 2, padding=1, output_padding=1,
                                                      dilation=2, bias=False), (1, 2, 3, 3)),
    ("transpose_bias", lambda: nn.ConvTranspose2d(3, 4, 3, padding=1), (2, 3, 3, 4)),
]


def _kinds(names):
    """Kernel kinds of launched names; "backward_data_s2x2" and the like read as
    "backward_data_strided"."""
    kinds = {name.split("[")[0] for name in names}
    return {"backward_data_strided" if kind.startswith("backward_data_s") else kind
            for kind in kinds}


def _launched(fn):
    """The names of the kernels ``fn`` launches."""
    cuda_device.RECORD = set()
    try:
        fn()
        return {name for _, name, _ in cuda_device.RECORD}
    finally:
        cuda_device.RECORD = None


def _parity_case(case_id):
    """A ``CASES`` layer checked against the CPU on the device, and the kernels that ran."""
    _, make, shape = next(c for c in CASES if c[0] == case_id)
    layer = make()
    names = _launched(lambda: testing.check_parity(layer, [_x(shape)], device="cuda",
                                                   atol=1e-5, rtol=1e-4))
    return layer, names


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_tiled_kernels_match_the_cpu(case_id):
    layer, names = _parity_case(case_id)
    kinds = _kinds(names)
    # the input gradient at stride 1 is the forward kernel on the flipped weight; a strided one
    # has its own kernel
    data = "backward_data_strided" if max(layer.stride) > 1 else "backward_data"
    assert {"forward", data, "backward_weight"} <= kinds, names
    assert not kinds & {"conv_forward", "conv_backward_data", "conv_backward_weight"}, names
    assert ("channel_sum" in kinds) == (layer.bias is not None)


@pytest.mark.parametrize("case_id", ["partial_tiles", "stride_dilation", "conv1d",
                                     "transpose_bias"])
def test_narrow_tiles_match_the_cpu(monkeypatch, case_id):
    # every GEMM short of blocks: the forward and input-gradient kernels take the narrow tile
    monkeypatch.setattr(tiled, "MIN_GRID", 1 << 40)
    _, names = _parity_case(case_id)
    narrow = ",".join(map(str, tiled.NARROW_TILES[0]))
    assert {name.split("[")[0] for name in names if narrow in name} >= {"forward"}, names
    data = [name for name in names if name.startswith("backward_data")]
    assert data and all(narrow in name for name in data), names


@pytest.mark.parametrize("case_id", ["partial_tiles", "stride_dilation", "conv1d",
                                     "transpose_stride", "transpose_bias"])
def test_split_reductions_match_the_cpu(monkeypatch, case_id):
    # every GEMM short of blocks: the forward and input gradient split their reduction into
    # chunks of 4 (the small MIN_K_CHUNK), then add the partial sums in order
    monkeypatch.setattr(tiled, "SPLIT_K_GRID", 1 << 40)
    _, names = _parity_case(case_id)
    assert "split_sum_rows" in names, names


@pytest.mark.parametrize("seed", range(12))
def test_random_geometries_match_the_cpu(monkeypatch, seed):
    """The random geometries of ``tests/test_conv_random_geometry.py`` that the tiled kernels take
    (Conv1d, Conv2d, ConvTranspose2d without groups; strides, dilations, paddings), each with the
    narrow tiles and the split reductions forced on or off at random."""
    from .test_conv_random_geometry import _geometry
    rng = np.random.default_rng(seed)
    layer, size = _geometry(rng, dims=(1, 2), groups=(1,))
    monkeypatch.setattr(tiled, "MIN_GRID", int(rng.choice([0, 1 << 40])))
    monkeypatch.setattr(tiled, "SPLIT_K_GRID", int(rng.choice([0, 1 << 40])))
    x = _x((int(rng.integers(1, 3)), layer.in_channels) + size, seed=seed)
    names = _launched(lambda: testing.check_parity(layer, [x], device="cuda", atol=1e-5,
                                                   rtol=1e-4))
    assert _kinds(names) & {"forward", "backward_data", "backward_data_strided"}, names


def test_split_reduction_arithmetic(monkeypatch):
    # 27 = 3 channels x 3 x 3 taps over chunks of at least 4, rounded to the slice (BK = 4)
    assert tiled.reduction_splits(5, 15, 27) == (1, 27)          # SPLIT_K_GRID 0: never
    monkeypatch.setattr(tiled, "SPLIT_K_GRID", 1 << 40)
    splits, chunk = tiled.reduction_splits(5, 15, 27)
    assert chunk % 4 == 0 and (splits - 1) * chunk < 27 <= splits * chunk and splits > 1
    assert tiled.reduction_splits(5, 15, 7) == (1, 7)            # shorter than two chunks
    for name, value in REAL.items():
        monkeypatch.setattr(tiled, name, value)
    # a 512 x 256 GEMM with 4608-long sums (VGG-19's conv5 on one image, were its 256 pixels
    # not below MIN_PIXELS): the narrow tile makes 32 blocks, the split 9 times as many;
    # VGG-19's conv4_1 forward (256 -> 512 channels at 32x32): 128 narrow blocks, 4 splits
    assert tiled.tile_for(512, 256) == tiled.NARROW_TILES[2]
    assert tiled.reduction_splits(512, 256, 4608) == (9, 512)
    assert tiled.reduction_splits(512, 1024, 2304) == (4, 576)
    # ResNet-20's last stage fills the GPU without at batch 256 (256 blocks); at batch 16 it
    # would not, but its 576-long sums are not worth a launch
    assert tiled.reduction_splits(64, 256 * 64, 576) == (1, 576)
    assert tiled.reduction_splits(64, 16 * 64, 576) == (1, 576)


def test_split_reduction_with_the_fused_epilogue_and_bias(monkeypatch):
    from minicnn.device import get_device
    from minicnn.layers.activation_cuda import ReLUCUDA
    monkeypatch.setattr(tiled, "SPLIT_K_GRID", 1 << 40)
    dev = get_device("cuda")
    layer, act_layer, x = nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), _x((2, 3, 3, 5))
    conv = layer(x)
    values = conv_cuda.geometry_values(layer, x.shape)
    ws = {key: dev.empty(s, t) for key, (s, t) in
          conv_cuda.conv_workspace(values, layer.weight.size, np.float32).items()}
    assert ws["k_part"].size >= 2 * conv.size
    y, r = dev.empty(conv.shape, np.float32), dev.empty(conv.shape, np.float32)
    flat = cuda_device.flat
    names = _launched(lambda: conv_cuda.run_forward(
        flat(dev.asarray(x)), flat(dev.asarray(layer.weight.data)),
        flat(dev.asarray(layer.bias.data)), flat(y), values,
        ReLUCUDA().epilogue(act_layer), flat(r), ws))
    assert "split_sum_rows" in names
    np.testing.assert_allclose(to_numpy(y), conv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(r), act_layer(conv), rtol=1e-5, atol=1e-6)


def test_gradcheck_float64_through_split_reductions(monkeypatch):
    # one input channel keeps the finite differences few: the forward still splits its 9-long
    # reduction in two chunks (8 and 1) and the input gradient its 18-long one in three
    monkeypatch.setattr(tiled, "SPLIT_K_GRID", 1 << 40)
    layer = nn.Conv2d(1, 2, 3, stride=1, padding=1).to("cuda")
    values = conv_cuda.geometry_values(layer, (1, 1, 3, 3))
    assert tiled.reduction_splits(*tiled.forward_gemm(values)) == (2, 8)
    assert tiled.reduction_splits(*tiled.backward_data_gemm(values)) == (3, 8)
    names = _launched(lambda: testing.gradcheck(layer, [_x((1, 1, 3, 3))]))
    assert "split_sum_rows" in names


@pytest.mark.parametrize("bias", [True, False])
def test_large_linear_layers_run_on_the_tiled_gemm(monkeypatch, bias):
    from minicnn.layers import linear_cuda
    monkeypatch.setattr(linear_cuda, "TILED_MACS", 1)
    layer = nn.Linear(6, 5, bias=bias)
    names = _launched(lambda: testing.check_parity(layer, [_x((30, 6))], device="cuda",
                                                   atol=1e-5, rtol=1e-4))
    kinds = _kinds(names)
    assert {"forward", "backward_data", "backward_weight", "split_sum"} <= kinds, names
    assert not kinds & {"linear_forward", "linear_backward_input"}, names
    assert ("linear_backward_params" in kinds) == bias, names     # the bias gradient only
    testing.gradcheck(nn.Linear(3, 2, bias=bias).to("cuda"), [_x((5, 3))])


@pytest.mark.parametrize("tiled_gemm", [False, True])
def test_linear_over_leading_axes_on_both_paths(monkeypatch, tiled_gemm):
    """Linear on (N, *, in_features): the direct kernels and the tiled GEMM see (rows, features)
    views; also with a fused ReLU (its output is viewed the same way)."""
    from minicnn.layers import linear_cuda
    monkeypatch.setattr(linear_cuda, "TILED_MACS", 1 if tiled_gemm else 1 << 40)
    names = _launched(lambda: testing.check_parity(nn.Linear(6, 5), [_x((2, 3, 5, 6))],
                                                   device="cuda", atol=1e-5, rtol=1e-4))
    assert ("forward" in _kinds(names)) == tiled_gemm, names
    fused = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
    testing.check_parity(fused, [_x((2, 7, 6), seed=1)], device="cuda", atol=1e-5, rtol=1e-4)
    testing.gradcheck(nn.Linear(3, 2).to("cuda"), [_x((2, 2, 3), seed=2)])


def test_weight_gradient_splits_its_reduction_including_empty_chunks():
    # reduction 2*5*5 = 50 positions, one 3 x 2 tile: 12 splits of 8 (rounded to BK), the last
    # five of them past the end
    values = conv_cuda.geometry_values(nn.Conv2d(2, 3, 1), (2, 2, 5, 5))
    assert tiled.weight_splits(values) == 12
    names = _launched(lambda: testing.check_parity(nn.Conv2d(2, 3, 1), [_x((2, 2, 5, 5))],
                                                   device="cuda"))
    assert "split_sum" in names


def test_gradcheck_float64_through_the_tiled_kernels():
    layer = nn.Conv2d(2, 3, 2, stride=1, padding=1).to("cuda")
    names = _launched(lambda: testing.gradcheck(layer, [_x((1, 2, 2, 3))]))
    assert any(name.startswith("backward_weight[float64") for name in names)


def test_transposed_gradcheck_float64_through_the_tiled_kernels():
    layer = nn.ConvTranspose2d(2, 2, 2, stride=2, output_padding=1, dilation=2).to("cuda")
    testing.gradcheck(layer, [_x((1, 2, 2, 2))])


def test_tiled_results_do_not_depend_on_the_launch_shape():
    layer = nn.Conv2d(3, 5, 3, padding=1).to("cuda")
    x, gy = _x((2, 3, 3, 5)), _x((2, 5, 3, 5), seed=1)
    runs = []
    for max_blocks in (4, 1, 3):
        old = cuda_device.set_launch(max_blocks=max_blocks)
        try:
            y = to_numpy(layer(x))
            gx = to_numpy(layer.backward(gy))
            runs.append([y, gx, to_numpy(layer.weight.grad), to_numpy(layer.bias.grad)])
        finally:
            cuda_device.set_launch(*old)
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("op", ["ReLU", "Sigmoid"])
def test_fused_activation_epilogue(op):
    from minicnn.device import get_device
    from minicnn.layers.activation_cuda import ReLUCUDA, SigmoidCUDA
    dev = get_device("cuda")
    layer = nn.Conv2d(3, 5, 3, padding=1)
    act_layer = getattr(nn, op)()
    x = _x((2, 3, 3, 5))
    conv = layer(x)
    want = act_layer(conv)
    values = conv_cuda.geometry_values(layer, x.shape)
    y, r = dev.empty(want.shape, np.float32), dev.empty(want.shape, np.float32)
    flat = cuda_device.flat
    epilogue = {"ReLU": ReLUCUDA, "Sigmoid": SigmoidCUDA}[op]().epilogue(act_layer)
    tiled.forward(flat(dev.asarray(x)), flat(dev.asarray(layer.weight.data)),
                  flat(dev.asarray(layer.bias.data)), flat(y), values, True, epilogue, flat(r))
    np.testing.assert_allclose(to_numpy(y), conv, rtol=1e-5, atol=1e-6)   # both are written
    np.testing.assert_allclose(to_numpy(r), want, rtol=1e-5, atol=1e-6)


def test_the_choice_at_the_real_settings(monkeypatch):
    for name, value in REAL.items():
        monkeypatch.setattr(tiled, name, value)

    def values(layer, shape):
        return conv_cuda.geometry_values(layer, shape)
    big = values(nn.Conv2d(64, 64, 3, padding=1), (32, 64, 56, 56))
    assert tiled.use_forward(big) and tiled.use_backward_data(big)
    assert 1 < tiled.weight_splits(big) <= tiled.MAX_SPLITS
    tiny = values(nn.Conv2d(2, 2, 2), (2, 2, 3, 3))
    assert not (tiled.use_forward(tiny) or tiled.use_backward_data(tiny)
                or tiled.weight_splits(tiny))
    grouped = values(nn.Conv2d(64, 64, 3, padding=1, groups=2), (32, 64, 56, 56))
    assert not (tiled.use_forward(grouped) or tiled.weight_splits(grouped))
    volume = values(nn.Conv3d(16, 16, 3, padding=1), (4, 16, 16, 16, 16))
    assert not tiled.use_forward(volume)
    few_channels = values(nn.Conv2d(3, 3, 3), (32, 3, 34, 34))      # 3 channels each side
    assert not (tiled.use_forward(few_channels) or tiled.use_backward_data(few_channels)
                or tiled.weight_splits(few_channels))
    lenet_conv1 = values(nn.Conv2d(1, 6, 5), (1024, 1, 32, 32))     # 6 output channels
    assert tiled.use_forward(lenet_conv1)
    # one 16 x 128 weight tile, 800k positions: as many splits as allowed, to fill the GPU
    assert tiled.weight_splits(lenet_conv1) == tiled.MAX_SPLITS > 64
    assert not tiled.use_backward_data(lenet_conv1)                  # one input channel
    for tile in tiled.TILES:
        assert tiled.check_tile(tile)[2] == 128
    # the GEMM's rows (output channels; input channels for the input gradient) pick the tile
    assert [tiled.tile_for(rows)[0] for rows in (8, 16, 17, 32, 64, 65, 512)] == [
        16, 16, 32, 32, 64, 64, 64]
    # ... with half the columns where the wide tiles would make too few blocks: ResNet-20's
    # last stage at batch 256 (64 x 16384: 128 wide blocks), not its first (16 x 262144)
    assert tiled.tile_for(64, 256 * 8 * 8) == tiled.NARROW_TILES[2]
    assert tiled.tile_for(16, 256 * 32 * 32) == tiled.TILES[0]
    assert tiled.tile_for(64, 256 * 8 * 8 * 4) == tiled.TILES[2]     # 512 blocks
    for tile in tiled.NARROW_TILES:
        assert tiled.check_tile(tile)[2] == 128
    # its 1x1 projection's weight gradient (64 x 32, 16384 positions): 64 splits, not 8
    projection = values(nn.Conv2d(32, 64, 1, stride=2), (256, 32, 16, 16))
    assert tiled.weight_splits(projection) == 64


# 6 x 6 register blocks: three groups of two adjacent rows (and columns) per thread, the
# arrangement the real 8 x 8 blocks use with two groups of four (vector shared loads)
GROUPED_TILE = (36, 12, 4, 6, 6)


@pytest.mark.parametrize("case_id", ["partial_tiles", "stride_dilation", "transpose_bias"])
def test_register_groups_of_adjacent_rows_and_columns(monkeypatch, case_id):
    assert tiled.check_tile(GROUPED_TILE) == (6, 2, 12)
    monkeypatch.setattr(tiled, "TILES", (GROUPED_TILE,))
    _, names = _parity_case(case_id)
    assert any("36,12,4,6,6" in name for name in names), names


def test_bad_tiles_are_refused():
    with pytest.raises(ValueError, match="loader constraints"):
        tiled.check_tile((4, 8, 4, 2, 3))
    with pytest.raises(ValueError, match="loader constraints"):
        tiled.check_tile((8, 8, 2, 1, 1))         # 64 threads, a B tile of 16 elements


def test_the_tile_tuning_script_runs_and_checks_every_candidate(tmp_path):
    """``scripts/tune_conv_tiles.py --sim`` (what a GPU session runs, on tiny tiles): every
    direction times its chosen kernel and the other candidates, and the candidates agree: the
    same reduction order whatever the tile, so the forward and input gradient give the same
    bits; other weight-gradient split counts agree to rounding."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "scripts" / "tune_conv_tiles.py"
    out = tmp_path / "tune.json"
    result = subprocess.run([sys.executable, str(script), "--sim", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())["rows"]
    groups = {}
    for label, direction, name, ms, chosen, diff, _ in rows:
        groups.setdefault((label, direction), []).append((name, ms, chosen, diff))
    assert len(groups) == 6                           # two shapes, three directions
    for (_, direction), group in groups.items():
        assert sum(chosen for _, _, chosen, _ in group) == 1
        assert len(group) >= 3 and all(ms > 0 for _, ms, _, _ in group)
        chosen_name = next(name for name, _, chosen, _ in group if chosen)
        for name, _, _, diff in group:
            # the weight gradient's split count (the name's " sN") changes the order
            exact = name.split()[1:] == chosen_name.split()[1:]
            assert diff == 0 if exact else diff < 1e-5, (direction, name, diff)
    assert "geometric mean" not in result.stdout     # no cuDNN on the simulator
    assert "fastest candidate" in result.stdout
