"""Optimisers, schedules and gradient clipping against hand-written numpy versions of PyTorch's
formulas, plus convergence (L-BFGS), frozen parameters, parameter groups and state-dict resumes."""

import json
import math

import numpy as np
import pytest

from minicnn import NonFiniteError, Param, optim

# -- problems and helpers -------------------------------------------------------------------------

SCALES = [np.array([1.0, 3.0, 0.5]), np.array([[2.0, 0.2], [1.5, 4.0]])]
SHIFTS = [np.array([0.3, -1.0, 2.0]), np.array([[-0.5, 1.0], [0.25, -2.0]])]
START = [np.array([1.0, -2.0, 0.7]), np.array([[0.4, -1.2], [2.0, 0.9]])]


def quadratic_grads(arrays):
    """Gradient of sum_i 0.5 a_i x_i^2 + b_i x_i for each array."""
    return [a * x + b for a, x, b in zip(SCALES, arrays, SHIFTS, strict=True)]


def make_params(dtype=np.float64):
    return [Param(x.astype(dtype).copy()) for x in START]


def fill_grads(params):
    for p, g in zip(params, quadratic_grads([p.data for p in params]), strict=True):
        p.grad = g.astype(p.data.dtype)


def run(opt, params, steps):
    trajectory = []
    for _ in range(steps):
        fill_grads(params)
        opt.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


def reference_sgd(steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False):
    """PyTorch's SGD written out with numpy, float64."""
    xs = [x.copy() for x in START]
    bufs = [None] * len(xs)
    out = []
    for _ in range(steps):
        grads = quadratic_grads(xs)
        for i, (x, g) in enumerate(zip(xs, grads, strict=True)):
            d = -g if maximize else g
            d = d + weight_decay * x
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            xs[i] = x - lr * d
        out.append([x.copy() for x in xs])
    return out


def reference_adam(steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                   decoupled=False):
    """Adam / AdamW as in the papers with PyTorch's placement of eps and decay, float64."""
    beta1, beta2 = betas
    xs = [x.copy() for x in START]
    ms = [np.zeros_like(x) for x in xs]
    vs = [np.zeros_like(x) for x in xs]
    vmax = [np.zeros_like(x) for x in xs]
    out = []
    for t in range(1, steps + 1):
        grads = quadratic_grads(xs)
        for i, g in enumerate(grads):
            if decoupled:
                xs[i] = xs[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * xs[i]
            ms[i] = beta1 * ms[i] + (1 - beta1) * g
            vs[i] = beta2 * vs[i] + (1 - beta2) * g * g
            vmax[i] = np.maximum(vmax[i], vs[i])
            m_hat = ms[i] / (1 - beta1 ** t)
            v = vmax[i] if amsgrad else vs[i]
            xs[i] = xs[i] - lr * m_hat / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps)
        out.append([x.copy() for x in xs])
    return out


def assert_trajectory(got, want, rtol=1e-12, atol=1e-14):
    assert len(got) == len(want)
    for step, (g_step, w_step) in enumerate(zip(got, want, strict=True)):
        for g, w in zip(g_step, w_step, strict=True):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"step {step + 1}")


def json_round_trip(state):
    """Split arrays (as safetensors would hold them) from the rest (JSON), then put them back."""
    arrays = {}

    def strip(obj, path):
        if isinstance(obj, np.ndarray):
            arrays[path] = obj.copy()
            return {"__array__": path}
        if isinstance(obj, dict):
            return {str(k): strip(v, f"{path}/{k}") for k, v in obj.items()}
        if isinstance(obj, list):
            return [strip(v, f"{path}/{i}") for i, v in enumerate(obj)]
        assert obj is None or isinstance(obj, (bool, int, float, str)), (path, type(obj))
        return obj

    def restore(obj):
        if isinstance(obj, dict):
            if "__array__" in obj:
                return arrays[obj["__array__"]]
            return {k: restore(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [restore(v) for v in obj]
        return obj

    return restore(json.loads(json.dumps(strip(state, ""))))


# -- SGD ------------------------------------------------------------------------------------------

SGD_CASES = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.8, weight_decay=0.05, nesterov=True),
    dict(momentum=0.5, maximize=True),
]


@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_sgd_trajectory(kwargs):
    params = make_params()
    lr = 0.01 if kwargs.get("maximize") else 0.1
    opt = optim.SGD(params, lr=lr, **kwargs)
    assert_trajectory(run(opt, params, 6), reference_sgd(6, lr, **kwargs))


def test_sgd_momentum_buffer_starts_at_gradient():
    p = Param(np.array([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.5, momentum=0.9, dampening=0.5)
    p.grad = np.array([0.2, -0.4])
    opt.step()
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"], [0.2, -0.4])  # no dampening
    np.testing.assert_allclose(p.data, [0.9, 2.2], rtol=1e-15)
    p.grad = np.array([1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [0.9 * 0.2 + 0.5, -0.36 + 0.5],
                               rtol=1e-15)


def test_sgd_validation():
    p = make_params()
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD(p, lr=-0.1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero "
                                         "dampening"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="required optimization parameter lr"):
        optim.SGD(p)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="minicnn.Param"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": p}, {"params": p[:1]}], lr=0.1)


# -- Adam / AdamW ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_trajectory(cls, amsgrad, weight_decay):
    params = make_params()
    opt = getattr(optim, cls)(params, lr=0.3, betas=(0.8, 0.95), eps=1e-6,
                              weight_decay=weight_decay, amsgrad=amsgrad)
    want = reference_adam(8, 0.3, (0.8, 0.95), 1e-6, weight_decay, amsgrad,
                          decoupled=cls == "AdamW")
    assert_trajectory(run(opt, params, 8), want)


def test_amsgrad_changes_the_trajectory_and_adamw_default_decay():
    # the test above would pass vacuously if v never decreased: check amsgrad really matters here
    plain = reference_adam(8, 0.3, (0.8, 0.95), 1e-6, amsgrad=False)
    ams = reference_adam(8, 0.3, (0.8, 0.95), 1e-6, amsgrad=True)
    assert not np.allclose(plain[-1][0], ams[-1][0])
    assert optim.AdamW(make_params()).param_groups[0]["weight_decay"] == 1e-2
    assert optim.Adam(make_params()).param_groups[0]["weight_decay"] == 0.0


def test_adam_validation():
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam(make_params(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        optim.Adam(make_params(), eps=-1.0)


def test_large_parameters_use_the_parallel_kernels():
    rng = np.random.default_rng(0)
    n = 3 * 2 ** 15 + 7
    start = rng.standard_normal(n)
    grad = rng.standard_normal(n)
    for cls, kwargs in ((optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                        (optim.Adam, dict(lr=0.01, amsgrad=True))):
        p = Param(start.copy())
        opt = cls([p], **kwargs)
        for k in range(3):
            p.grad = grad * (k + 1)
            opt.step()
        small = [Param(start[i:i + 1000].copy()) for i in range(0, 3000, 1000)]
        opt_small = cls(small, **kwargs)
        for k in range(3):
            for q, i in zip(small, range(0, 3000, 1000), strict=True):
                q.grad = grad[i:i + 1000] * (k + 1)
            opt_small.step()
        np.testing.assert_allclose(p.data[:3000], np.concatenate([q.data for q in small]),
                                   rtol=1e-14, atol=1e-15)


def test_float32_parameters_follow_the_float64_reference():
    params = make_params(np.float32)
    opt = optim.Adam(params, lr=0.1)
    want = reference_adam(5, 0.1)
    assert_trajectory(run(opt, params, 5), want, rtol=1e-5, atol=1e-6)
    assert all(p.data.dtype == np.float32 for p in params)
    assert opt.state[params[0]]["exp_avg"].dtype == np.float32


# -- shared behaviour: frozen parameters, groups, zero_grad, state dicts --------------------------

@pytest.mark.parametrize("cls,kwargs", [(optim.SGD, dict(lr=0.1, momentum=0.9)),
                                        (optim.Adam, dict(lr=0.1)),
                                        (optim.AdamW, dict(lr=0.1))])
def test_frozen_and_gradless_params_untouched(cls, kwargs):
    frozen = Param(np.array([1.0, 2.0]), requires_grad=False)
    frozen.grad = np.array([5.0, 5.0])
    no_grad = Param(np.array([3.0]))
    live = Param(np.array([1.0]))
    opt = cls([frozen, no_grad, live], **kwargs)
    live.grad = np.array([1.0])
    opt.step()
    np.testing.assert_array_equal(frozen.data, [1.0, 2.0])
    np.testing.assert_array_equal(no_grad.data, [3.0])
    assert live.data[0] != 1.0
    assert frozen not in opt.state and no_grad not in opt.state


def test_param_groups_with_different_lr():
    params = make_params()
    opt = optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.02}], lr=0.1,
                    momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.02]
    got = run(opt, params, 5)
    fast, slow = reference_sgd(5, 0.1, momentum=0.9), reference_sgd(5, 0.02, momentum=0.9)
    for step in range(5):
        np.testing.assert_allclose(got[step][0], fast[step][0], rtol=1e-12)
        np.testing.assert_allclose(got[step][1], slow[step][1], rtol=1e-12)


def test_zero_grad():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    fill_grads(params)
    grad = params[0].grad
    grad[0] = np.nan
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is grad and not grad.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.step()   # nothing to do
    np.testing.assert_array_equal(params[0].data, START[0])


@pytest.mark.parametrize("cls,kwargs", [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                        (optim.Adam, dict(lr=0.2, amsgrad=True)),
                                        (optim.AdamW, dict(lr=0.2, weight_decay=0.1))])
def test_state_dict_resume_gives_the_same_trajectory(cls, kwargs):
    params = make_params()
    opt = cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], **kwargs)
    full = run(opt, params, 6)

    params = make_params()
    opt = cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], **kwargs)
    run(opt, params, 3)
    saved_state = json_round_trip(opt.state_dict())
    saved_params = [p.data.copy() for p in params]

    resumed = [Param(x) for x in saved_params]
    opt2 = cls([{"params": resumed[:1]}, {"params": resumed[1:], "lr": 0.5}], **kwargs)
    opt2.load_state_dict(saved_state)
    assert opt2.param_groups[1]["lr"] == 0.05          # hyper-parameters come back too
    assert isinstance(opt2.param_groups[0].get("betas", ()), tuple)
    rest = run(opt2, resumed, 3)
    for a, b in zip(full[3:], rest, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_load_state_dict_rejects_mismatched_groups():
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    run(opt, params, 1)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": make_params()[:1]}, {"params": make_params()[1:]}],
                  lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD(make_params()[:1], lr=0.1).load_state_dict(state)


# -- L-BFGS ---------------------------------------------------------------------------------------

def rosenbrock_closure(param, counter):
    def closure():
        counter[0] += 1
        a, b = param.data
        param.grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
        return (1 - a) ** 2 + 100 * (b - a * a) ** 2
    return closure


def test_lbfgs_converges_on_rosenbrock():
    x = Param(np.array([-1.5, 2.0]))
    calls = [0]
    opt = optim.LBFGS([x], lr=1, max_iter=200, max_eval=250, tolerance_grad=1e-10,
                      tolerance_change=1e-14, line_search_fn="strong_wolfe")
    opt.step(rosenbrock_closure(x, calls))
    np.testing.assert_allclose(x.data, [1.0, 1.0], atol=1e-6)
    assert calls[0] <= 100
    assert opt.state[x]["func_evals"] == calls[0]


def _least_squares(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((20, 5))
    b = rng.standard_normal(20)
    return a, b, np.linalg.lstsq(a, b, rcond=None)[0]


def ls_closure(a, b, params, counter):
    def closure():
        counter[0] += 1
        x = np.concatenate([p.data for p in params])
        r = a @ x - b
        g = a.T @ r
        params[0].grad, params[1].grad = g[:2].copy(), g[2:].copy()
        return 0.5 * float(r @ r)
    return closure


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lbfgs_solves_least_squares_in_few_iterations(line_search):
    a, b, solution = _least_squares()
    params = [Param(np.zeros(2)), Param(np.zeros(3))]    # one flat vector over both
    calls = [0]
    opt = optim.LBFGS(params, lr=1.0, max_iter=60 if not line_search else 12,
                      tolerance_grad=1e-11, tolerance_change=1e-15, line_search_fn=line_search)
    opt.step(ls_closure(a, b, params, calls))
    np.testing.assert_allclose(np.concatenate([p.data for p in params]), solution, atol=1e-7)
    assert opt.state[params[0]]["n_iter"] <= 12


def test_lbfgs_first_iteration_is_a_scaled_gradient_step():
    p = Param(np.array([1.0, -2.0, 0.5]))
    calls = [0]

    def closure():
        calls[0] += 1
        p.grad = 2 * p.data
        return float(p.data @ p.data)

    g0 = 2 * p.data.copy()
    start = p.data.copy()
    opt = optim.LBFGS([p], lr=0.7, max_iter=1)
    loss = opt.step(closure)
    assert loss == pytest.approx(5.25)
    np.testing.assert_allclose(p.data, start - min(1.0, 1.0 / np.abs(g0).sum()) * 0.7 * g0,
                               rtol=1e-15)
    assert calls[0] == 1        # the last iteration does not re-evaluate
    opt = optim.LBFGS([p], lr=0.1, max_iter=5)
    calls[0] = 0
    opt.step(closure)
    assert calls[0] == 5


@pytest.mark.parametrize("max_eval, calls", [(1, 2), (3, 4), (5, 6), (40, 7)])
def test_lbfgs_line_search_keeps_within_max_eval(max_eval, calls):
    """The strong-Wolfe search gets the evaluations left of ``max_eval`` (PyTorch since its
    #135026; the counts are PyTorch 2.13's). The first step is far too short here (the minimum
    is at 1e6, the first trial at 1), so the search extrapolates tenfold six times when nothing
    bounds it; bounded, it stops after its first trial plus ``max_eval - 1`` more."""
    p = Param(np.zeros(1))
    count = [0]

    def closure():
        count[0] += 1
        p.grad = p.data - 1e6
        return float(0.5 * (p.data[0] - 1e6) ** 2)

    opt = optim.LBFGS([p], lr=1.0, max_iter=1, max_eval=max_eval, line_search_fn="strong_wolfe")
    opt.step(closure)
    assert count[0] == calls and opt.state[p]["func_evals"] == calls
    # the last trial (1, 10, 100... from the first, after the step's first evaluation at 0)
    assert p.data[0] == pytest.approx(10.0 ** (calls - 2), rel=1e-12)


def test_lbfgs_stops_when_already_optimal_and_skips_frozen():
    p = Param(np.zeros(3))
    frozen = Param(np.array([4.0]), requires_grad=False)

    def closure():
        p.grad = 2 * p.data
        frozen.grad = np.array([10.0])
        return float(p.data @ p.data)

    opt = optim.LBFGS([p, frozen], max_iter=5)
    assert opt.step(closure) == 0.0
    np.testing.assert_array_equal(p.data, 0.0)
    p.data[:] = [1.0, 2.0, 3.0]
    opt.step(closure)
    assert frozen.data[0] == 4.0
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [p]}, {"params": [frozen]}])
    with pytest.raises(ValueError, match="strong_wolfe"):
        optim.LBFGS([p], line_search_fn="backtracking")


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lbfgs_state_dict_resume(line_search):
    def build(x0):
        x = Param(x0.copy())
        opt = optim.LBFGS([x], lr=1 if line_search else 0.002, max_iter=4,
                          history_size=3, line_search_fn=line_search)
        return x, opt

    start = np.array([-1.2, 1.0])
    x, opt = build(start)
    for _ in range(4):
        opt.step(rosenbrock_closure(x, [0]))
    full = x.data.copy()

    x, opt = build(start)
    for _ in range(2):
        opt.step(rosenbrock_closure(x, [0]))
    saved = json_round_trip(opt.state_dict())
    assert saved["state"]["0"]["old_dirs"].shape[0] <= 3
    y, opt2 = build(x.data)
    opt2.load_state_dict(saved)
    for _ in range(2):
        opt2.step(rosenbrock_closure(y, [0]))
    np.testing.assert_array_equal(y.data, full)
    assert not np.allclose(full, start)


# -- schedules ------------------------------------------------------------------------------------

def lr_sequence(scheduler, steps):
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


def sgd(lr=1.0):
    return optim.SGD(make_params(), lr=lr)


def test_step_and_multistep_lr():
    got = lr_sequence(optim.StepLR(sgd(), step_size=3, gamma=0.1), 9)
    np.testing.assert_allclose(got, [1, 1, 1, .1, .1, .1, .01, .01, .01, .001], rtol=1e-12)
    got = lr_sequence(optim.MultiStepLR(sgd(0.5), milestones=[5, 2, 5], gamma=0.1), 7)
    np.testing.assert_allclose(got, [.5, .5, .05, .05, .05, .0005, .0005, .0005], rtol=1e-12)


def test_cosine_annealing_lr():
    base, eta_min, t_max = 0.1, 0.01, 10
    got = lr_sequence(optim.CosineAnnealingLR(sgd(base), T_max=t_max, eta_min=eta_min), 25)
    want = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
            for t in range(26)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert got[10] == pytest.approx(eta_min) and got[20] == pytest.approx(base)


def test_warmup_lambda_and_exponential():
    got = lr_sequence(optim.LinearWarmup(sgd(0.4), warmup_steps=4, start_factor=0.25), 6)
    np.testing.assert_allclose(got, [0.1, 0.175, 0.25, 0.325, 0.4, 0.4, 0.4], rtol=1e-12)
    got = lr_sequence(optim.LambdaLR(sgd(2.0), lambda e: 0.5 ** e), 4)
    np.testing.assert_allclose(got, [2.0, 1.0, 0.5, 0.25, 0.125], rtol=1e-12)
    got = lr_sequence(optim.ExponentialLR(sgd(1.0), gamma=0.9), 3)
    np.testing.assert_allclose(got, [1.0, 0.9, 0.81, 0.729], rtol=1e-12)


def test_warmup_then_cosine():
    opt = sgd(1.0)
    warm = optim.LinearWarmup(opt, warmup_steps=2, start_factor=0.5)
    cosine = optim.CosineAnnealingLR(opt, T_max=4)
    sched = optim.SequentialLR(opt, [warm, cosine], milestones=[2])
    got = lr_sequence(sched, 6)
    cos = [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(got, [0.5, 0.75] + cos, rtol=1e-12, atol=1e-15)


def test_schedules_scale_every_group():
    opt = optim.SGD([{"params": make_params()[:1], "lr": 1.0}, {"params": make_params()[1:],
                                                               "lr": 0.1}], lr=0.5)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.5, 0.05])
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5, 0.05])


def test_reduce_lr_on_plateau():
    opt = sgd(1.0)
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    lrs = []
    for metric in [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.79999]:
        sched.step(metric)
        lrs.append(sched.get_last_lr()[0])
    # the last value improves by less than the relative threshold 1e-4: still a bad epoch
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    opt = sgd(1.0)
    sched = optim.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, cooldown=1,
                                    min_lr=0.005)
    lrs = []
    for metric in [0.5, 0.4, 0.4, 0.4, 0.4, 0.4]:
        sched.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [1, 0.1, 0.1, 0.01, 0.01, 0.005])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        optim.ReduceLROnPlateau(sgd(), factor=2.0)


def test_scheduler_state_dict_resume():
    def build():
        opt = sgd(0.3)
        return opt, optim.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)

    opt, sched = build()
    full = lr_sequence(sched, 10)
    opt, sched = build()
    first = lr_sequence(sched, 4)
    saved_opt, saved_sched = json_round_trip(opt.state_dict()), json_round_trip(sched.state_dict())
    opt2, sched2 = build()
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert opt2.param_groups[0]["lr"] == first[-1]
    rest = lr_sequence(sched2, 6)
    np.testing.assert_allclose(first + rest[1:], full, rtol=1e-14)

    plateau = optim.ReduceLROnPlateau(sgd(), patience=1)
    for metric in (1.0, 2.0):
        plateau.step(metric)
    other = optim.ReduceLROnPlateau(sgd(), patience=1)
    other.load_state_dict(json_round_trip(plateau.state_dict()))
    other.step(3.0)
    assert other.get_last_lr() == pytest.approx([0.1])


# -- gradient clipping ----------------------------------------------------------------------------

def grads_of(params):
    return [None if p.grad is None else p.grad.copy() for p in params]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_value_and_scaling(norm_type):
    params = make_params()
    fill_grads(params)
    before = grads_of(params)
    flat = np.concatenate([g.reshape(-1) for g in before])
    if math.isinf(norm_type):
        total = np.abs(flat).max()
    else:
        total = (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    got = optim.clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert got == pytest.approx(total, rel=1e-13)
    assert total > 1.0
    for p, g in zip(params, before, strict=True):
        np.testing.assert_allclose(p.grad, g * (1.0 / (total + 1e-6)), rtol=1e-13)
    # below the threshold nothing changes
    fill_grads(params)
    optim.clip_grad_norm_(params, max_norm=100.0, norm_type=norm_type)
    for p, g in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_norm_large_and_frozen():
    rng = np.random.default_rng(1)
    big = Param(rng.standard_normal(50001))
    big.grad = rng.standard_normal(50001)
    frozen = Param(np.zeros(2), requires_grad=False)
    frozen.grad = np.array([1e9, 1e9])
    total = optim.clip_grad_norm_([big, frozen], 1e9)
    assert total == pytest.approx(np.linalg.norm(big.grad), rel=1e-12)
    np.testing.assert_array_equal(frozen.grad, [1e9, 1e9])
    assert optim.clip_grad_norm_([Param(np.zeros(2))], 1.0) == 0.0   # no gradients at all


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_non_finite(bad):
    params = make_params()
    fill_grads(params)
    params[1].grad[0, 1] = bad
    grads, weights = grads_of(params), [p.data.copy() for p in params]
    with pytest.raises(NonFiniteError, match="total norm of order 2.0.*(nan|inf).*unchanged"):
        optim.clip_grad_norm_(params, 1.0)
    with pytest.raises(FloatingPointError):
        optim.clip_grad_norm_(params, 1.0)
    for p, g, w in zip(params, grads, weights, strict=True):
        np.testing.assert_array_equal(p.grad, g)
        np.testing.assert_array_equal(p.data, w)
    total = optim.clip_grad_norm_(params, 1.0, error_if_nonfinite=False)
    assert not math.isfinite(total)


def test_clip_grad_value():
    p = Param(np.zeros(4))
    p.grad = np.array([-3.0, -0.5, 0.2, 7.0])
    optim.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad, [-1.0, -0.5, 0.2, 1.0])


def test_lbfgs_float32_parameters():
    a, b, solution = _least_squares(seed=3)
    params = [Param(np.zeros(2, np.float32)), Param(np.zeros(3, np.float32))]
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    opt = optim.LBFGS(params, max_iter=30, line_search_fn="strong_wolfe")
    opt.step(ls_closure(a32, b32, params, [0]))
    assert all(p.data.dtype == np.float32 for p in params)
    np.testing.assert_allclose(np.concatenate([p.data for p in params]), solution, atol=1e-4)


# -- end to end -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make_opt", [lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9),
                                      lambda ps: optim.Adam(ps, lr=0.05)])
def test_training_a_linear_classifier_reduces_the_loss(make_opt):
    from minicnn import manual_seed, nn

    manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    model = nn.Linear(5, 2)
    loss_fn = nn.CrossEntropyLoss()
    opt = make_opt(model.parameters())
    sched = optim.StepLR(opt, step_size=20, gamma=0.5)
    losses = []
    for _ in range(60):
        losses.append(loss_fn(model(x), y))
        model.backward(loss_fn.backward())
        optim.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(np.argmax(model(x), axis=1) == y) > 0.9
