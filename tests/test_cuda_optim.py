"""The optimisers' CUDA update kernels against the CPU ones (``updates_cuda`` vs
``updates_cpu``): SGD and Adam variants, gradient clipping and L-BFGS with state on the device."""

import numpy as np
import pytest

from minicnn import Param, optim, to_numpy
from minicnn.optim import updates_cpu

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse

cuda_device = cuda_or_skip()
DEV = cuda_device.CUDADevice()


def _params(device, seed=0):
    rng = np.random.default_rng(seed)
    params = [Param(rng.standard_normal(s).astype(np.float32)) for s in ((3, 2), (5,))]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    if device == "cuda":
        for p in params:
            p.data = DEV.asarray(p.data)
    return params, grads


def _steps(make_opt, device, steps=3):
    params, grads = _params(device)
    opt = make_opt(params)
    for k in range(steps):
        for p, g in zip(params, grads, strict=True):
            p.grad = DEV.asarray(g * (k + 1)) if device == "cuda" else g * (k + 1)
        opt.step()
    return [to_numpy(p.data) for p in params]


@pytest.mark.parametrize("make_opt", [
    lambda p: optim.SGD(p, lr=0.1),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, maximize=True),
    lambda p: optim.Adam(p, lr=0.01, weight_decay=0.1),
    lambda p: optim.Adam(p, lr=0.01, amsgrad=True, maximize=True),
    lambda p: optim.AdamW(p, lr=0.01),
], ids=["sgd", "sgd_momentum_decay", "sgd_nesterov_max", "adam_l2", "adam_amsgrad", "adamw"])
def test_updates_match_the_cpu(make_opt):
    for a, b in zip(_steps(make_opt, "cuda"), _steps(make_opt, "cpu"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_update_module_is_found_by_array_type():
    from minicnn.optim import updates_cuda
    assert optim.backend_for(DEV.empty((2,), np.float32)) is updates_cuda
    assert optim.backend_for(np.zeros(2)) is updates_cpu


@pytest.mark.parametrize("norm_type", [2.0, 1.5, float("inf")])
def test_clip_grad_norm_on_the_device(norm_type):
    totals, clipped = {}, {}
    for device in ("cpu", "cuda"):
        params, grads = _params(device, seed=3)
        for p, g in zip(params, grads, strict=True):
            p.grad = DEV.asarray(g) if device == "cuda" else g.copy()
        totals[device] = optim.clip_grad_norm_(params, 0.5, norm_type=norm_type)
        clipped[device] = [to_numpy(p.grad) for p in params]
    assert totals["cuda"] == pytest.approx(totals["cpu"], rel=1e-9)
    for a, b in zip(clipped["cuda"], clipped["cpu"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_lbfgs_on_the_device_matches_the_cpu():
    target = np.array([1.0, -2.0, 0.5], np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        p = Param(np.zeros(3, np.float32))
        if device == "cuda":
            p.data = DEV.asarray(p.data)
        opt = optim.LBFGS([p], lr=1.0, max_iter=5, history_size=3)

        def closure(p=p, device=device):
            x = to_numpy(p.data).astype(np.float64)
            grad = (2.0 * (x - target)).astype(np.float32)
            p.grad = DEV.asarray(grad) if device == "cuda" else grad
            return float(np.sum((x - target) ** 2))

        opt.step(closure)
        results[device] = to_numpy(p.data)
    np.testing.assert_allclose(results["cuda"], results["cpu"], rtol=1e-5, atol=1e-6)
