"""The CUDA losses' launches and checks: the chunk sums made inside the finish kernel's block or
by ``chunk_sums`` first (the same bits), bad input reported on the call that read the value and,
under ``Loss.compute``, on the next call, with the device flag cleared after each report. The
parity and gradchecks of every loss are in ``test_cuda_layers``."""

import numpy as np
import pytest

from minicnn import InputError, nn, to_numpy

from .cuda_sim import (  # noqa: F401 - the fixture is autouse
    cuda_or_skip,
    launched_kernel_names,
    small_launches,
)

cuda_device = cuda_or_skip()
from minicnn import losses_cuda  # noqa: E402 - imports numba.cuda: after the simulator check


def _device(a):
    return cuda_device.CUDADevice().asarray(a)


def _both_reductions(monkeypatch, run):
    """``run()`` with the finish kernel summing the chunks, then with chunk_sums doing it."""
    in_block = run()
    monkeypatch.setattr(losses_cuda, "FINISH_THREADS", 1)   # 3 chunks > 1: chunk_sums first
    summed = run()
    return in_block, summed


@pytest.mark.parametrize("make, inputs", [
    (lambda: nn.CrossEntropyLoss(weight=[0.5, 2.0], ignore_index=0),
     lambda rng: [rng.standard_normal((2100, 2)), rng.integers(0, 2, 2100)]),
    (nn.MSELoss, lambda rng: [rng.standard_normal((3, 700)), rng.standard_normal((3, 700))]),
], ids=["cross_entropy", "mse"])
def test_chunk_sums_in_the_finish_block_or_first_give_the_same_bits(monkeypatch, make, inputs):
    x, t = inputs(np.random.default_rng(0))
    assert losses_cuda._chunks(t.size if t.ndim == 1 else x.size) == 3
    cpu = make()
    expected, expected_grad = cpu(x, t), cpu.backward()
    gpu = make().to("cuda")

    def run():
        value = gpu(_device(x), _device(t))
        return value, to_numpy(gpu.backward())

    (v1, g1), (v2, g2) = _both_reductions(monkeypatch, run)
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)
    assert v1 == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(g1, expected_grad, rtol=1e-10, atol=1e-14)


def test_a_bad_target_is_reported_and_the_next_call_is_clean():
    loss = nn.CrossEntropyLoss().to("cuda")
    x = np.random.default_rng(1).standard_normal((4, 3))
    with pytest.raises(InputError, match=r"target value 3 is out of range"):
        loss(_device(x), np.array([0, 1, 3, 2]))
    assert np.isfinite(loss(_device(x), np.array([0, 1, 2, 2])))


def test_compute_reports_a_bad_target_on_the_next_call_and_its_value_is_nan():
    loss = nn.CrossEntropyLoss().to("cuda")
    x = _device(np.random.default_rng(2).standard_normal((4, 3)))
    good = np.array([0, 1, 2, 2])
    clean = float(to_numpy(loss.compute(x, good)))
    value = loss.compute(x, np.array([0, -5, 2, 2]))
    assert np.isnan(float(to_numpy(value)))
    with pytest.raises(InputError, match=r"previous call.*target value -5 is out of range"):
        loss.compute(x, good)
    assert float(to_numpy(loss.compute(x, good))) == clean
    assert loss(x, good) == clean                  # the flag was cleared by the report


def test_bce_probabilities_outside_zero_one_are_reported_now_or_on_the_next_call():
    loss = nn.BCELoss().to("cuda")
    y = _device(np.full((2, 3), 0.5))
    bad = _device(np.array([[0.2, 1.5, 0.3], [0.1, 0.2, 0.3]]))
    good = _device(np.full((2, 3), 0.25))
    with pytest.raises(InputError, match=r"probabilities in \[0, 1\], found values in"):
        loss(bad, y)
    clean = loss(good, y)
    assert np.isfinite(clean)
    assert np.isnan(float(to_numpy(loss.compute(bad, y))))
    with pytest.raises(InputError, match=r"previous call"):
        loss.compute(good, y)
    assert loss(good, y) == clean


def test_a_cross_entropy_forward_is_two_launches(monkeypatch):
    """Small networks on a GPU are bound by launches: rows, then one finish block (the flag is
    cleared once, at the first call)."""
    loss = nn.CrossEntropyLoss().to("cuda")
    x, t = _device(np.random.default_rng(3).standard_normal((5, 4))), np.array([0, 1, 2, 3, 0])
    loss(x, t)
    names = launched_kernel_names(monkeypatch)
    loss.compute(x, t)
    assert names == ["class_rows_forward", "class_finish"]
