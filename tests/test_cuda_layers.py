"""Every CUDA layer kernel against the CPU kernel (forward, input and parameter gradients) and a
float64 finite-difference gradcheck on the cuda device. Runs on numba's CUDA simulator in CI (tiny
shapes, 8 threads per block, at most 4 blocks) and unsimulated with MINICNN_TEST_REAL_GPU=1."""

import logging

import numpy as np
import pytest

from minicnn import Input, Model, nn, testing, zoo
from minicnn.random import no_init

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse

cuda_device = cuda_or_skip()


def _x(shape, seed=0, positive=False):
    x = testing.tie_free(shape, seed=seed)
    return np.abs(x) if positive else x


def _two_input(layer, shape):
    a, b = Input(shape[1:]), Input(shape[1:])
    return Model([a, b], layer([a, b])), [_x(shape, 1), _x(shape, 2)]


# (id, module factory, inputs factory): each runs parity; GRAD ids also a gradcheck on the device
CASES = [
    ("relu", nn.ReLU, lambda: [_x((2, 3, 2, 2))]),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), lambda: [_x((2, 5))]),
    ("elu", lambda: nn.ELU(0.7), lambda: [_x((2, 5))]),
    ("sigmoid", nn.Sigmoid, lambda: [_x((2, 5))]),
    ("tanh", nn.Tanh, lambda: [_x((2, 5))]),
    ("identity", nn.Identity, lambda: [_x((2, 5))]),
    ("linear", lambda: nn.Linear(5, 3), lambda: [_x((2, 5))]),
    ("linear_nobias", lambda: nn.Linear(4, 2, bias=False), lambda: [_x((3, 4))]),
    ("flatten", nn.Flatten, lambda: [_x((2, 2, 3))]),
    ("conv2d", lambda: nn.Conv2d(2, 2, 2), lambda: [_x((2, 2, 3, 3))]),
    ("conv2d_stride_pad_groups", lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2),
     lambda: [_x((1, 2, 4, 4))]),
    ("conv2d_dilation_nobias", lambda: nn.Conv2d(2, 2, 2, padding=1, dilation=2, bias=False),
     lambda: [_x((1, 2, 3, 3))]),
    ("conv2d_same", lambda: nn.Conv2d(1, 2, (2, 3), padding="same"), lambda: [_x((1, 1, 3, 3))]),
    ("conv1d", lambda: nn.Conv1d(2, 2, 2, stride=2, padding=1), lambda: [_x((2, 2, 5))]),
    ("conv3d", lambda: nn.Conv3d(1, 2, 2, padding=1), lambda: [_x((1, 1, 2, 2, 2))]),
    ("conv_transpose", lambda: nn.ConvTranspose2d(2, 3, 3), lambda: [_x((2, 2, 3, 3))]),
    ("conv_transpose_stride_pad_groups",
     lambda: nn.ConvTranspose2d(4, 2, (3, 2), stride=(2, 3), padding=(1, 0),
                                output_padding=(1, 2), groups=2),
     lambda: [_x((1, 4, 2, 2))]),
    ("conv_transpose_dilation_nobias",      # output_padding >= stride: allowed below dilation
     lambda: nn.ConvTranspose2d(2, 2, 2, padding=1, output_padding=1, dilation=2, bias=False),
     lambda: [_x((1, 2, 3, 2))]),
    ("constant_pad", lambda: nn.ConstantPad2d((1, 2, 0, 1), 1.5), lambda: [_x((2, 2, 2, 3))]),
    ("constant_pad_crop", lambda: nn.ConstantPad2d((-1, 1, 2, -1), -2.0),
     lambda: [_x((1, 2, 3, 3))]),
    ("constant_pad_neg_inf", lambda: nn.ConstantPad2d(1, -np.inf), lambda: [_x((1, 1, 2, 2))]),
    ("zero_pad_unbatched", lambda: nn.ZeroPad2d((0, 1, 1, 0)), lambda: [_x((2, 2, 3))]),
    ("max_pool", lambda: nn.MaxPool2d(2), lambda: [_x((2, 2, 4, 4))]),
    ("max_pool_pad_ceil", lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
     lambda: [_x((1, 2, 5, 5))]),
    ("max_pool_dilation", lambda: nn.MaxPool2d(2, 1, dilation=2), lambda: [_x((1, 2, 4, 4))]),
    ("avg_pool", lambda: nn.AvgPool2d(2), lambda: [_x((2, 2, 4, 4))]),
    ("avg_pool_exclude_pad", lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False,
                                                  ceil_mode=True), lambda: [_x((1, 2, 4, 4))]),
    ("avg_pool_divisor", lambda: nn.AvgPool2d(2, divisor_override=3), lambda: [_x((1, 1, 4, 4))]),
    ("lp_pool2", lambda: nn.LPPool2d(2, 2), lambda: [_x((1, 2, 4, 4), positive=True)]),
    ("lp_pool_frac", lambda: nn.LPPool2d(1.5, 2, 1), lambda: [_x((1, 1, 3, 3), positive=True)]),
    ("adaptive_avg", lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda: [_x((1, 2, 3, 4))]),
    ("global_avg", nn.GlobalAvgPool2d, lambda: [_x((2, 2, 3, 3))]),
    ("batchnorm2d", lambda: nn.BatchNorm2d(2), lambda: [_x((2, 2, 2, 3))]),
    ("batchnorm1d_cma", lambda: nn.BatchNorm1d(3, momentum=None), lambda: [_x((4, 3))]),
    ("batchnorm_noaffine", lambda: nn.BatchNorm2d(2, affine=False), lambda: [_x((2, 2, 2, 2))]),
    ("batchnorm3d", lambda: nn.BatchNorm3d(2), lambda: [_x((2, 2, 1, 2, 2))]),
    ("batchnorm_eval", lambda: nn.BatchNorm2d(2).eval(), lambda: [_x((2, 2, 2, 2))]),
    ("dropout", lambda: nn.Dropout(0.5), lambda: [_x((2, 3, 2, 2))]),
    ("dropout2d", lambda: nn.Dropout2d(0.4), lambda: [_x((2, 3, 2, 2))]),
    ("dropout1d", lambda: nn.Dropout1d(0.5), lambda: [_x((2, 3, 4))]),
    ("softmax", nn.Softmax, lambda: [_x((2, 3, 2))]),
    ("log_softmax_last", lambda: nn.LogSoftmax(dim=-1), lambda: [_x((2, 2, 3))]),
    ("add", None, None),
    ("concat", None, None),
    ("cross_entropy", nn.CrossEntropyLoss, lambda: [_x((3, 4)), np.array([0, 3, 1])]),
    ("cross_entropy_options",
     lambda: nn.CrossEntropyLoss(weight=[1.0, 2.0, 0.5], ignore_index=1, label_smoothing=0.1,
                                 reduction="sum"),
     lambda: [_x((2, 3, 2, 2)), np.array([[[0, 1], [2, 0]], [[1, 1], [2, 2]]])]),
    ("nll", nn.NLLLoss, lambda: [_x((3, 4)), np.array([2, 0, 1])]),
    ("mse", nn.MSELoss, lambda: [_x((2, 3)), _x((2, 3), 5)]),
    ("l1", lambda: nn.L1Loss(reduction="sum"), lambda: [_x((2, 3)), _x((2, 3), 5)]),
    ("smooth_l1", lambda: nn.SmoothL1Loss(beta=0.5), lambda: [_x((2, 3)), _x((2, 3), 5)]),
    ("bce_logits", lambda: nn.BCEWithLogitsLoss(weight=np.array([1.0, 2.0, 3.0]),
                                                pos_weight=np.array([[0.5], [2.0]])),
     lambda: [_x((2, 3)), _x((2, 3), 5, positive=True)]),
    ("bce", nn.BCELoss, lambda: [_x((2, 3), positive=True) * 0.9, _x((2, 3), 5, positive=True)]),
]

GRAD = {"elu", "sigmoid", "linear", "conv2d_stride_pad_groups", "conv2d_dilation_nobias",
        "conv1d", "conv3d", "conv_transpose_stride_pad_groups", "conv_transpose_dilation_nobias",
        "constant_pad_crop", "max_pool_pad_ceil", "avg_pool_exclude_pad", "lp_pool_frac",
        "adaptive_avg", "batchnorm2d", "dropout2d", "log_softmax_last", "concat",
        "cross_entropy_options", "smooth_l1", "bce_logits"}


def build(case_id):
    _, make, inputs = next(c for c in CASES if c[0] == case_id)
    if case_id == "add":
        return _two_input(nn.Add(), (2, 3, 2))
    if case_id == "concat":
        a, b = Input((2, 2)), Input((3, 2))
        return Model([a, b], nn.Concat(1)([a, b])), [_x((2, 2, 2), 1), _x((2, 3, 2), 2)]
    return make(), inputs()


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_parity_with_cpu(case_id):
    module, inputs = build(case_id)
    testing.check_parity(module, inputs, device="cuda", atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("case_id", sorted(GRAD))
def test_gradcheck_on_device(case_id):
    module, inputs = build(case_id)
    testing.gradcheck(module.to("cuda"), inputs)


def test_every_cuda_kernel_has_a_case():
    """The cases above build every layer type that has a CUDA kernel."""
    from minicnn.registry import get_registry
    registry = get_registry()
    built = set()
    for case_id, _, _ in CASES:
        module, _ = build(case_id)
        built |= {m.type_name for _, m in module.named_modules()}
    with_cuda = {t for (t, dev) in registry.kernels if dev == "cuda"}
    assert with_cuda - built == set()


@pytest.mark.parametrize("momentum", [None, 0.3])
def test_batchnorm_running_statistics_over_several_steps(momentum):
    """num_batches_tracked and the running averages after three training batches and an eval one
    (the cumulative average reads the count the same launch sequence updates)."""
    import copy

    from minicnn import to_numpy
    cpu = nn.BatchNorm2d(2, momentum=momentum)
    gpu = copy.deepcopy(cpu).to("cuda")
    for step in range(3):
        x = _x((2, 2, 2, 3), seed=10 + step) * (step + 1)
        np.testing.assert_allclose(to_numpy(gpu(x)), cpu(x), rtol=1e-5, atol=1e-6)
    gpu.eval()
    cpu.eval()
    x = _x((2, 2, 2, 3), seed=20)
    np.testing.assert_allclose(to_numpy(gpu(x)), cpu(x), rtol=1e-5, atol=1e-6)
    assert int(to_numpy(gpu.num_batches_tracked)) == int(cpu.num_batches_tracked) == 3
    np.testing.assert_allclose(to_numpy(gpu.running_mean), cpu.running_mean, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(gpu.running_var), cpu.running_var, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (300, 2)])
def test_batchnorm_statistics_merged_from_many_chunks(shape):
    """Channels long enough to be cut into several chunks per channel (merged with Chan's formula)
    give the CPU's float64 statistics and gradients to rounding, also for values far from zero
    (a large mean and a small spread: where a one-pass variance would lose every digit)."""
    import copy

    from minicnn import cuda_reduce, to_numpy
    _, splits = cuda_reduce.block_shape(shape[1], int(np.prod(shape)) // shape[1])
    assert splits > 1
    x = 1000.0 + _x(shape, seed=3).astype(np.float64) * 1e-3
    gy = _x(shape, seed=4).astype(np.float64)
    cpu = nn.BatchNorm2d(shape[1]) if len(shape) == 4 else nn.BatchNorm1d(shape[1])
    cpu = cpu.astype(np.float64)
    gpu = copy.deepcopy(cpu).to("cuda")
    outs = [to_numpy(layer(x)) for layer in (gpu, cpu)]
    grads = [to_numpy(layer.backward(gy)) for layer in (gpu, cpu)]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-7, atol=1e-9)
    for name in ("weight", "bias"):
        np.testing.assert_allclose(to_numpy(getattr(gpu, name).grad), getattr(cpu, name).grad,
                                   rtol=1e-8, atol=1e-8)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(to_numpy(getattr(gpu, name)), getattr(cpu, name), rtol=1e-12)


CHUNKED_CONVS = [
    ("plain", lambda: nn.Conv2d(1, 3, 3, stride=2, padding=1), (4, 1, 20, 20)),
    ("groups_dilation", lambda: nn.Conv2d(4, 4, 3, groups=2, dilation=2, padding=2),
     (2, 4, 12, 12)),
    ("conv3d", lambda: nn.Conv3d(2, 2, (2, 3, 3), stride=(1, 1, 2)), (2, 2, 4, 10, 20)),
    ("conv1d", lambda: nn.Conv1d(2, 3, 5, padding=2, bias=False), (3, 2, 200)),
]


@pytest.mark.parametrize("make, shape", [c[1:] for c in CHUNKED_CONVS],
                         ids=[c[0] for c in CHUNKED_CONVS])
def test_long_weight_gradient_sums_run_in_chunks(make, shape):
    """Weight gradients whose sums run over many output positions are block reductions cut into
    chunks (``conv_backward_weight_chunks``): the CPU's gradients, in float64 to rounding."""
    import copy

    from minicnn import to_numpy
    from minicnn.layers import conv_cuda
    cpu = make().astype(np.float64)
    gpu = copy.deepcopy(cpu).to("cuda")
    x = _x(shape, seed=5).astype(np.float64)
    values = conv_cuda.geometry_values(cpu, shape)
    assert conv_cuda.tiled.weight_splits(values) == 0
    assert conv_cuda.chunked_weight_shape(values, cpu.weight.size)[1] > 1
    gy = _x(cpu(x).shape, seed=6).astype(np.float64)
    for layer in (cpu, gpu):
        layer(x)
        layer.backward(gy)
    np.testing.assert_allclose(to_numpy(gpu.weight.grad), cpu.weight.grad, rtol=1e-10,
                               atol=1e-10)


def test_chunked_weight_gradient_gradcheck():
    testing.gradcheck(nn.Conv2d(1, 2, 3).to("cuda"), [_x((2, 1, 14, 14), seed=7)], max_elements=24)


@pytest.mark.parametrize("frozen", ["weight", "bias"])
def test_linear_parameter_gradients_when_one_is_frozen(frozen):
    """Linear's weight and bias gradients share one launch; either may be skipped."""
    import copy

    from minicnn import to_numpy
    cpu = nn.Linear(4, 3)
    getattr(cpu, frozen).requires_grad = False
    gpu = copy.deepcopy(cpu).to("cuda")
    x, gy = _x((5, 4), seed=1), _x((5, 3), seed=2)
    for layer in (cpu, gpu):
        layer(x)
        layer.backward(gy)
    other = "bias" if frozen == "weight" else "weight"
    np.testing.assert_allclose(to_numpy(getattr(gpu, other).grad), getattr(cpu, other).grad,
                               rtol=1e-5, atol=1e-6)
    assert getattr(gpu, frozen).grad is None


def test_max_pool_first_maximum_wins_on_ties():
    x = np.zeros((1, 1, 2, 2), np.float32)          # four equal values: the first gets it all
    layer = nn.MaxPool2d(2).to("cuda")
    layer(x)
    from minicnn import to_numpy
    gx = to_numpy(layer.backward(np.ones((1, 1, 1, 1), np.float32)))
    assert gx.reshape(-1).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_max_pool_windows_of_padding_only_give_minus_inf_and_no_gradient():
    # width 1, dilation 2, padding 1: each window's two taps (columns -1 and 1) are both outside
    from minicnn import to_numpy
    layer = nn.MaxPool2d((1, 2), stride=(1, 2), padding=(0, 1), dilation=(1, 2)).to("cuda")
    x = _x((1, 2, 3, 1))
    y = to_numpy(layer(x))
    assert y.shape == (1, 2, 3, 1) and np.isneginf(y).all()
    gx = to_numpy(layer.backward(np.ones(y.shape, np.float32)))
    np.testing.assert_array_equal(gx, np.zeros(x.shape, np.float32))


def test_cuda_kernels_are_launched_over_several_blocks():
    assert cuda_device.THREADS_PER_BLOCK == 8 and cuda_device.MAX_BLOCKS == 4


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_every_zoo_model_moves_to_cuda_with_nothing_missing(name, caplog):
    """Every foundation layer has a CUDA kernel now: no KernelMissingError, no CPU fallback."""
    with no_init():                         # zeros: the large models build (and copy) quickly
        model = zoo.MODELS[name]()
    with caplog.at_level(logging.WARNING, logger="minicnn.device"):
        model.to("cuda")
    assert not caplog.records
    assert all(m.device == "cuda" for _, m in model.named_modules())
    assert all(cuda_device.is_device_array(p.data) for p in model.parameters())


def _topk_loop(logits, labels, k):
    """Loop oracle: the label's rank counts the logits above it and the equal ones before it."""
    count = 0
    for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
        if 0 <= label < len(row):
            rank = sum(v > row[label] or (v == row[label] and j < label)
                       for j, v in enumerate(row))
            count += rank < k
    return count


def test_topk_metrics_accept_device_logits_and_labels():
    from minicnn.device import get_device
    from minicnn.metrics import accuracy, topk_correct
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 4, (40, 6)).astype(np.float32)     # many ties
    labels = rng.integers(0, 6, 40)
    labels[3] = 7                                               # out of range: never counts
    dev = get_device("cuda")
    d_logits, d_labels = dev.asarray(logits), dev.asarray(labels)
    for k in (1, 2, 3, 6):
        want = _topk_loop(logits, labels, k)
        assert topk_correct(logits, labels, k) == want
        assert topk_correct(d_logits, d_labels, k) == want
        assert accuracy(d_logits, labels, k) == pytest.approx(want / 40)


def test_topk_metrics_on_a_cuda_model_output():
    from minicnn.metrics import topk_correct
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    x = _x((5, 2, 3))
    want = topk_correct(model(x), np.array([0, 1, 2, 3, 0]), 2)
    logits = model.to("cuda")(x)
    assert cuda_device.is_device_array(logits)
    assert topk_correct(logits, np.array([0, 1, 2, 3, 0]), 2) == want
