"""Activation fusion (``minicnn/fusion.py``) on numba's CUDA simulator: which pairs fuse, that the
fused plan gives the same bits as the unfused one (outputs, taps, gradients at nodes, inputs and
parameters), that the activation's own kernel is no longer launched, and the cases that must not
fuse."""

import copy

import numpy as np
import pytest

from minicnn import Input, Model, fusion, nn, testing, to_numpy

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse

cuda_device = cuda_or_skip()
from minicnn.layers import linear_cuda  # noqa: E402 - after the simulator choice

from .test_cuda_tiled import tiny_tile_settings  # noqa: E402


def _graph():
    x = Input((3, 4, 4))
    c1 = nn.Conv2d(3, 4, 3, padding=1)(x, name="conv1")
    r1 = nn.ReLU()(c1, name="relu1")
    c2 = nn.Conv2d(4, 4, 3, padding=1)(r1, name="conv2")
    b2 = nn.BatchNorm2d(4)(c2, name="bn2")
    a2 = nn.LeakyReLU(0.1)(b2, name="lrelu2")
    c3 = nn.Conv2d(4, 4, 1)(a2, name="conv3")          # read twice: not fused
    r3 = nn.ReLU()(c3, name="relu3")
    added = nn.Add()([c3, r3], name="add")
    flat = nn.Flatten()(added, name="flat")
    scores = nn.Linear(64, 5)(flat, name="fc")
    return Model(x, [nn.Sigmoid()(scores, name="sig"), nn.Tanh()(scores, name="tanh")])


def _run(model, x, fuse, taps=()):
    """Forward, taps and backward of a copy of ``model`` on the GPU with fusion on or off."""
    previous = fusion.set_enabled(fuse)
    try:
        model = copy.deepcopy(model).to("cuda")
        outs = model(x)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        gys = [testing.tie_free(np.shape(o), seed=5 + k) for k, o in enumerate(outs)]
        tapped = [model.activation(name) for name in taps]
        gx = model.backward(gys if len(gys) > 1 else gys[0])
        plan = model._get_executor()._last
        node_grads = [model.gradient(name) for name in taps]
        return {"outs": [to_numpy(o) for o in outs], "taps": tapped, "gx": to_numpy(gx),
                "node_grads": node_grads,
                "grads": {n: to_numpy(p.grad) for n, p in model.named_parameters()},
                "fused": plan.fused}
    finally:
        fusion.set_enabled(previous)


def _assert_same(a, b):
    for key in ("outs", "taps", "node_grads"):
        for u, v in zip(a[key], b[key], strict=True):
            assert np.array_equal(u, v), key
    assert np.array_equal(a["gx"], b["gx"])
    assert a["grads"].keys() == b["grads"].keys()
    for name in a["grads"]:
        assert np.array_equal(a["grads"][name], b["grads"][name]), name


def test_fused_plan_gives_the_unfused_bits():
    model = _graph()
    x = testing.tie_free((2, 3, 4, 4), seed=1)
    taps = ("conv1", "relu1", "bn2", "conv3")
    fused = _run(model, x, True, taps)
    plain = _run(model, x, False, taps)
    # conv3 feeds two steps and fc two activations: neither fuses
    assert fused["fused"] == [("conv1", "relu1"), ("bn2", "lrelu2")]
    assert plain["fused"] == []
    _assert_same(fused, plain)
    assert np.array_equal(fused["taps"][0] > 0, fused["taps"][1] > 0)   # conv1 kept pre-ReLU
    assert (fused["taps"][0] < 0).any()


def test_residual_sums_fuse_their_relu():
    x = Input((2, 3, 3))
    c = nn.Conv2d(2, 2, 3, padding=1)(x, name="conv")
    b = nn.BatchNorm2d(2)(c, name="bn")
    two = nn.ReLU()(nn.Add()([b, x], name="add2"), name="relu2")
    three = nn.ELU()(nn.Add()([two, x, b], name="add3"), name="elu3")   # three inputs
    model = Model(x, three)
    data = testing.tie_free((2, 2, 3, 3), seed=8)
    taps = ("add2", "add3")
    fused, plain = _run(model, data, True, taps), _run(model, data, False, taps)
    assert fused["fused"] == [("add2", "relu2"), ("add3", "elu3")]
    _assert_same(fused, plain)
    testing.check_parity(model, [data], device="cuda", atol=1e-5, rtol=1e-5)


def test_fused_model_matches_the_cpu():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ELU(), nn.Flatten(), nn.Linear(12, 4), nn.ReLU())
    testing.check_parity(model, [testing.tie_free((2, 2, 4, 4), seed=2)], device="cuda",
                         atol=1e-5, rtol=1e-5)
    dev_model = copy.deepcopy(model).to("cuda")
    dev_model(testing.tie_free((2, 2, 4, 4), seed=2))
    assert len(dev_model._get_executor()._last.fused) == 2


def test_a_fused_activation_is_not_launched():
    model = copy.deepcopy(nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU())).to("cuda")
    x = testing.tie_free((1, 2, 4, 4), seed=3)
    model(x)                                   # plans (and compiles) outside the recording
    cuda_device.RECORD = set()
    try:
        model(x)
        launched = {name for _, name, _ in cuda_device.RECORD}
    finally:
        cuda_device.RECORD = None
    assert "conv_forward" in launched and "activation_forward" not in launched


def test_tiled_kernels_fuse_too(monkeypatch):
    monkeypatch.setattr(linear_cuda, "TILED_MACS", 1)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(45, 8), nn.Sigmoid())
    x = testing.tie_free((2, 3, 3, 3), seed=4)
    with tiny_tile_settings():
        fused = _run(model, x, True)
        plain = _run(model, x, False)
    assert len(fused["fused"]) == 2
    _assert_same(fused, plain)


def test_outputs_and_cpu_plans_are_not_fused():
    x = Input((2, 3, 3))
    conv = nn.Conv2d(2, 2, 1)(x, name="conv")
    model = Model(x, [conv, nn.ReLU()(conv, name="relu")])     # conv's output is returned
    data = testing.tie_free((1, 2, 3, 3), seed=6)
    assert _run(model, data, True)["fused"] == []
    cpu = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU())
    cpu(data)
    assert cpu._get_executor()._last.fused == []        # no CPU kernel fuses (yet)


@pytest.mark.parametrize("expected", [False, True])
def test_set_enabled_replans(expected):
    model = copy.deepcopy(nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU())).to("cuda")
    data = testing.tie_free((1, 2, 3, 3), seed=7)
    previous = fusion.set_enabled(expected)
    try:
        model(data)
        assert bool(model._get_executor()._last.fused) is expected
        fusion.set_enabled(not expected)
        model(data)
        assert bool(model._get_executor()._last.fused) is (not expected)
    finally:
        fusion.set_enabled(previous)
