"""Packed parameters, gradients and optimiser state on the GPU (``minicnn/packed.py``, numba's CUDA
simulator): a group's update is one launch, with the same bits as one launch per parameter, and
anything unpacked (a frozen parameter in the middle, replaced arrays, a loaded state) falls back
or is packed again without changing a value."""

import copy

import numpy as np
import pytest

from minicnn import nn, optim, packed, testing, to_numpy
from minicnn.device import get_device

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse

cuda_device = cuda_or_skip()
from minicnn.optim import updates_cuda  # noqa: E402 - after the simulator choice


def _model():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(12, 4))


OPTIMISERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "plain_sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
    "adamw_amsgrad": lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
}


def _train(model, make_opt, steps=3, unpack=False, reload_after=None):
    """Train a copy of ``model`` on the GPU; returns (parameters, update calls per step)."""
    dev = get_device("cuda")
    model = copy.deepcopy(model).to("cuda")
    if unpack:                  # untagged copies: the optimiser must update one by one
        for p in model.parameters():
            p.data = dev.copy(p.data)
    opt = make_opt(model.parameters())
    loss = nn.CrossEntropyLoss()
    calls = []
    counted = {"n": 0}
    real = {name: getattr(updates_cuda, name) for name in ("sgd_update", "adam_update")}

    def counting(name):
        def wrapper(*args):
            counted["n"] += 1
            return real[name](*args)
        return wrapper
    try:
        for name in real:
            setattr(updates_cuda, name, counting(name))
        for step in range(steps):
            x = testing.tie_free((2, 2, 4, 4), seed=step)
            loss(model(x), np.array([1, 3]))
            model.backward(loss.backward(), input_grad=False)
            counted["n"] = 0
            opt.step()
            calls.append(counted["n"])
            if reload_after == step:             # a checkpoint's round trip: unpacked state
                state = opt.state_dict()
                opt = make_opt(model.parameters())
                opt.load_state_dict(state)
    finally:
        for name, fn in real.items():
            setattr(updates_cuda, name, fn)
    return [to_numpy(p.data) for p in model.parameters()], calls


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_one_launch_per_group_with_the_bits_of_one_per_parameter(name):
    model = _model()
    fast, calls = _train(model, OPTIMISERS[name])
    slow, slow_calls = _train(model, OPTIMISERS[name], unpack=True)
    assert calls == [1, 1, 1]
    assert slow_calls == [len(slow)] * 3
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_loaded_state_is_packed_again(name):
    model = _model()
    resumed, calls = _train(model, OPTIMISERS[name], steps=4, reload_after=1)
    straight, _ = _train(model, OPTIMISERS[name], steps=4)
    assert calls == [1, 1, 1, 1]
    for a, b in zip(resumed, straight, strict=True):
        assert np.array_equal(a, b)


def test_a_frozen_parameter_splits_the_range_and_changes_nothing():
    model = _model()
    model.freeze("1")                    # batch norm's weight and bias, between conv and linear
    fast, calls = _train(model, OPTIMISERS["sgd"])
    slow, _ = _train(model, OPTIMISERS["sgd"], unpack=True)
    assert calls == [4, 4, 4]            # conv and linear parameters one by one
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a, b)


def test_the_executor_packs_the_gradients_in_parameter_order():
    model = _model().to("cuda")
    params = model.parameters()
    assert packed.span([p.data for p in params]) is not None
    model(testing.tie_free((2, 2, 4, 4), seed=9))
    model.backward(np.ones((2, 4), np.float32), input_grad=False)
    grads = [p.grad for p in params]
    flat = packed.span(grads)
    assert flat is not None and flat.size == sum(p.data.size for p in params)
    assert packed.span(grads[::-1]) is None and packed.span(grads[1:]) is not None
    assert packed.span([np.zeros(3)]) is None            # host arrays are never packed
