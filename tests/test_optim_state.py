"""Loading optimiser and schedule state from untrusted files: every optimiser and schedule takes
back its own state dict bit for bit, and refuses a bad one (wrong shapes, kinds, ranges, keys) with
a message naming the class and the key, before changing anything; the update wrappers refuse state
buffers of the wrong size instead of writing past them."""

import copy
import math

import numpy as np
import pytest

from minicnn import Param, optim
from minicnn.optim import updates_cpu
from minicnn.optim.state_checks import check_update_sizes

from .test_optim import SCALES, SHIFTS, fill_grads, json_round_trip, make_params

# -- optimisers and how to train them -------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.8, weight_decay=0.01,
                                        nesterov=True),
    "sgd_plain": lambda p: optim.SGD(p, lr=0.1),
    "adam": lambda p: optim.Adam(p, lr=0.05),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=0.05, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=0.05, weight_decay=0.1),
    "lbfgs": lambda p: optim.LBFGS(p, lr=0.5, max_iter=3, history_size=4),
    "lbfgs_wolfe": lambda p: optim.LBFGS(p, max_iter=3, history_size=2,
                                         line_search_fn="strong_wolfe"),
}


def closure(params):
    """Loss and gradients of the quadratic of ``test_optim``."""
    def fn():
        fill_grads(params)
        return sum(float(np.sum(0.5 * a * p.data ** 2 + b * p.data))
                   for a, b, p in zip(SCALES, SHIFTS, params, strict=True))
    return fn


def train(opt, params, steps):
    """Steps of ``opt``; the parameters after each."""
    out = []
    for _ in range(steps):
        if isinstance(opt, optim.LBFGS):
            opt.step(closure(params))
        else:
            fill_grads(params)
            opt.step()
        out.append([p.data.copy() for p in params])
    return out


def trained(name, steps=3, dtype=np.float64):
    params = make_params(dtype)
    opt = OPTIMIZERS[name](params)
    train(opt, params, steps)
    return opt, params


def assert_same(a, b, path="state"):
    """Equal nested dicts, lists and arrays, with the same kinds of values."""
    assert type(a) is type(b), (path, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b or (a != a and b != b), (path, a, b)


# -- valid states round-trip ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_round_trips_exactly(name):
    opt, params = trained(name)
    saved = json_round_trip(opt.state_dict())
    fresh_params = [Param(p.data.copy()) for p in params]
    rest = train(opt, params, 2)

    fresh = OPTIMIZERS[name](fresh_params)
    before = fresh.state_dict()
    assert fresh.check_state_dict(saved) is None
    assert_same(fresh.state_dict(), before)          # checking changes nothing
    fresh.load_state_dict(saved)
    again = train(fresh, fresh_params, 2)
    for a, b in zip(rest, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_zero_dim_parameter_state_round_trips():
    p = Param(np.array(2.0))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.array(1.0)
    opt.step()
    saved = opt.state_dict()
    assert isinstance(saved["state"][0]["momentum_buffer"], float)
    q = Param(p.data.copy())
    other = optim.SGD([q], lr=0.1, momentum=0.9)
    other.load_state_dict(saved)
    p.grad, q.grad = np.array(0.5), np.array(0.5)
    opt.step()
    other.step()
    assert q.data == p.data


# -- bad optimiser states are refused whole -------------------------------------------------------

def _set(path, value):
    """A change of the state dict at ``path`` (keys and indices)."""
    def change(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _drop(path):
    def change(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def _move_state(src, dst):
    def change(state):
        state["state"][dst] = state["state"].pop(src)
    return change


def _both(*changes):
    def change(state):
        for c in changes:
            c(state)
    return change


BIG = np.full(3, 1e300)
BAD_OPTIMIZER_STATES = [
    # the heap corruption: buffers of another size than the parameter's
    ("sgd", _set(["state", 0, "momentum_buffer"], np.zeros(1)), ValueError,
     r"SGD state: param 0 'momentum_buffer' has shape \(1,\), the parameter has \(3,\)"),
    ("sgd", _set(["state", 1, "momentum_buffer"], np.zeros(4)), ValueError,
     r"param 1 'momentum_buffer' has shape \(4,\), the parameter has \(2, 2\)"),
    ("adam", _set(["state", 1, "exp_avg"], np.zeros((2, 3))), ValueError,
     r"Adam state: param 1 'exp_avg' has shape \(2, 3\), the parameter has \(2, 2\)"),
    ("adam", _set(["state", 0, "exp_avg_sq"], np.zeros(1)), ValueError,
     r"param 0 'exp_avg_sq' has shape \(1,\)"),
    ("adam_amsgrad", _set(["state", 0, "max_exp_avg_sq"], np.zeros(2)), ValueError,
     r"param 0 'max_exp_avg_sq' has shape \(2,\)"),
    ("adamw", _set(["state", 0, "exp_avg"], np.zeros(30)), ValueError,
     r"AdamW state: param 0 'exp_avg' has shape \(30,\)"),
    # arrays of the wrong kind, or not arrays
    ("sgd", _set(["state", 0, "momentum_buffer"], 5), TypeError,
     r"param 0 'momentum_buffer' must be a numpy array, got int"),
    ("sgd", _set(["state", 0, "momentum_buffer"], [0.0, 0.0, 0.0]), TypeError,
     r"must be a numpy array, got list"),
    ("sgd", _set(["state", 0, "momentum_buffer"], np.zeros(3, np.int64)), TypeError,
     r"has dtype int64, expected a floating-point array"),
    ("sgd", _set(["state", 0, "momentum_buffer"], np.array([0.0, np.nan, 0.0])), ValueError,
     r"'momentum_buffer' holds NaN or infinite values"),
    ("adam", _set(["state", 0, "exp_avg_sq"], np.array([0.0, -1.0, 0.0])), ValueError,
     r"'exp_avg_sq' holds negative values"),
    # Adam's per-parameter state
    ("adam", _drop(["state", 0, "exp_avg_sq"]), ValueError,
     r"Adam state: param 0 lacks \['exp_avg_sq'\]"),
    ("adam", _set(["state", 0, "step"], "3"), TypeError, r"param 0 'step' must be an integer"),
    ("adam", _set(["state", 0, "step"], -1), ValueError, r"'step' must be an integer in \[0, "),
    ("adam", _set(["state", 0, "step"], 2.5), TypeError, r"'step' must be an integer, got float"),
    ("adam", _set(["state", 0, "step"], True), TypeError, r"'step' must be an integer, got bool"),
    ("adam", _set(["state", 0, "step"], 10 ** 400), ValueError, r"'step' must be an integer in"),
    ("adam", _set(["state", 0, "velocity"], np.zeros(3)), ValueError,
     r"param 0 has an unknown key 'velocity'"),
    # hyper-parameters: the constructor's checks
    ("sgd", _set(["param_groups", 0, "lr"], "fast"), ValueError,
     r"SGD state: param_groups\[0\]: Invalid learning rate: 'fast'"),
    ("sgd", _set(["param_groups", 0, "lr"], -1.0), ValueError, r"Invalid learning rate: -1"),
    ("sgd", _set(["param_groups", 0, "lr"], math.inf), ValueError, r"Invalid learning rate: inf"),
    ("sgd", _set(["param_groups", 0, "lr"], 10 ** 400), ValueError, r"Invalid learning rate"),
    ("sgd", _set(["param_groups", 0, "nesterov"], "yes"), ValueError,
     r"param_groups\[0\]: Invalid nesterov: 'yes' \(nesterov must be True or False\)"),
    ("sgd_nesterov", _set(["param_groups", 0, "momentum"], 0.0), ValueError,
     r"Nesterov momentum requires"),
    ("sgd", _set(["param_groups", 0, "dampening"], None), ValueError, r"Invalid dampening: None"),
    ("sgd", _set(["param_groups", 0, "maximize"], 1), ValueError, r"Invalid maximize: 1"),
    ("sgd", _set(["param_groups", 0, "initial_lr"], "x"), ValueError, r"Invalid initial_lr: 'x'"),
    ("adam", _set(["param_groups", 0, "betas"], [0.9]), ValueError, r"Invalid betas: \(0.9,\)"),
    ("adam", _set(["param_groups", 0, "betas"], 5), ValueError, r"Invalid betas: 5"),
    ("adam", _set(["param_groups", 0, "betas"], [1.0, 0.999]), ValueError,
     r"Invalid beta parameter at index 0: 1.0"),
    ("adam", _set(["param_groups", 0, "betas"], [0.9, "x"]), ValueError,
     r"Invalid beta parameter at index 1: 'x'"),
    ("adam", _set(["param_groups", 0, "eps"], math.nan), ValueError, r"Invalid epsilon value"),
    ("adam", _set(["param_groups", 0, "amsgrad"], "no"), ValueError, r"Invalid amsgrad: 'no'"),
    ("adamw", _set(["param_groups", 0, "weight_decay"], -0.1), ValueError,
     r"AdamW state: param_groups\[0\]: Invalid weight_decay value"),
    # structure: keys, indices, groups
    ("sgd", _set(["param_groups", 0, "foo"], 1), ValueError,
     r"param_groups\[0\] has an unknown key 'foo'"),
    ("sgd", _set(["param_groups", 0, "params"], 0), TypeError, r"'params' must be a list"),
    ("sgd", _set(["param_groups", 0, "params"], [0, 0]), ValueError, r"is listed twice"),
    ("sgd", _set(["param_groups", 0, "params"], [0, "1"]), TypeError,
     r"'params'\[1\] must be an integer"),
    ("sgd", _set(["param_groups", 0, "params"], [0]), ValueError, r"doesn't match the size"),
    ("sgd", _set(["param_groups"], []), ValueError, r"different number of parameter groups"),
    ("sgd", _set(["param_groups"], {}), TypeError, r"'param_groups' must be a list"),
    ("sgd", _move_state(0, "abc"), ValueError, r"'state' key 'abc' is not a parameter index"),
    ("sgd", _move_state(0, 7), ValueError, r"refers to parameter 7, which no group lists"),
    ("sgd", _move_state(0, -1), ValueError, r"'state' key -1 is not a parameter index"),
    ("sgd", lambda s: s["state"].__setitem__("1", s["state"][1]), ValueError,
     r"'state' holds parameter 1 twice"),
    ("sgd", _set(["state", 0], [1, 2]), TypeError, r"SGD state: param 0 must be a dict"),
    ("sgd", _set(["state"], []), TypeError, r"'state' must be a dict"),
    ("sgd", _drop(["state"]), ValueError, r"SGD state has no 'state' entry"),
    ("sgd", _set(["extra"], 1), ValueError, r"SGD state has an unknown key 'extra'"),
    # L-BFGS: one history whose vectors share a length
    ("lbfgs", _set(["state", 0, "prev_flat_grad"], np.zeros(3)), ValueError,
     r"LBFGS state: param 0 'prev_flat_grad' has shape \(3,\), expected the length of 'd': "
     r"\(7,\)"),
    ("lbfgs", _set(["state", 0, "d"], np.zeros((7, 1))), ValueError,
     r"'d' has shape \(7, 1\), expected a vector"),
    ("lbfgs", _set(["state", 0, "old_dirs"], np.zeros(7)), ValueError,
     r"'old_dirs' has shape \(7,\), expected \(k, 7\)"),
    ("lbfgs", _set(["state", 0, "old_stps"], np.zeros((9, 7))), ValueError,
     r"'old_stps' has shape \(9, 7\), expected that of 'old_dirs'"),
    ("lbfgs", _set(["state", 0, "ro"], np.zeros(9)), ValueError,
     r"'ro' has shape \(9,\), expected one per row of 'old_dirs'"),
    ("lbfgs", _set(["state", 0, "ro"], [1.0]), TypeError, r"'ro' must be a numpy array"),
    ("lbfgs", _drop(["state", 0, "d"]), ValueError, r"lacks \['d'\] \(the history is saved whole"),
    ("lbfgs", _set(["state", 0, "t"], "x"), TypeError, r"param 0 't' must be a number"),
    ("lbfgs", _set(["state", 0, "H_diag"], math.inf), ValueError,
     r"'H_diag' must be a finite number"),
    ("lbfgs", _set(["state", 0, "n_iter"], -1), ValueError, r"'n_iter' must be an integer in"),
    ("lbfgs", _set(["state", 0, "old_dirs"], np.full((0, 7), 1, np.int64)), TypeError,
     r"'old_dirs' has dtype int64"),
    ("lbfgs", _move_state(0, 1), ValueError, r"keeps its state on the first parameter"),
    ("lbfgs", _set(["state", 0, "momentum_buffer"], np.zeros(3)), ValueError,
     r"unknown key 'momentum_buffer'"),
    ("lbfgs", _set(["param_groups", 0, "history_size"], 0), ValueError,
     r"Invalid history_size: 0"),
    ("lbfgs", _set(["param_groups", 0, "tolerance_grad"], "x"), ValueError,
     r"Invalid tolerance_grad: 'x'"),
    ("lbfgs", _set(["param_groups", 0, "line_search_fn"], "backtracking"), ValueError,
     r"only 'strong_wolfe' is supported"),
]


def _valid_change(state):
    """A change that alone would load: a new rate and doubled state arrays, so that a refused
    load that applied a part of the dict shows."""
    state["param_groups"][0]["lr"] = 0.0123
    for saved in state["state"].values():
        for key, value in saved.items():
            if isinstance(value, np.ndarray):
                saved[key] = value * 2


@pytest.mark.parametrize("name,change,error,match", BAD_OPTIMIZER_STATES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_OPTIMIZER_STATES)])
def test_bad_optimizer_state_is_refused_and_changes_nothing(name, change, error, match):
    opt, _ = trained(name, steps=2)
    before = opt.state_dict()
    bad = copy.deepcopy(before)
    _valid_change(bad)
    change(bad)
    with pytest.raises(error, match=match):
        opt.check_state_dict(bad)
    with pytest.raises(error, match=match):
        opt.load_state_dict(bad)
    assert_same(opt.state_dict(), before)


@pytest.mark.parametrize("name,key", [("sgd", "momentum_buffer"), ("adam", "exp_avg"),
                                      ("adam", "exp_avg_sq"), ("adam_amsgrad", "max_exp_avg_sq")])
def test_wrong_size_buffer_refused_then_training_goes_on(name, key):
    # large enough for the parallel kernels and the packed path, as in the crash found
    params = [Param(np.zeros((256, 256), np.float32)), Param(np.zeros(256, np.float32))]
    opt = OPTIMIZERS[name](params)
    for p in params:
        p.grad = np.ones(p.data.shape, np.float32)
    opt.step()
    state = opt.state_dict()
    state["state"][0][key] = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match=rf"param 0 '{key}' has shape \(1,\), the parameter "
                                         rf"has \(256, 256\)"):
        opt.load_state_dict(state)
    opt.step()
    assert np.isfinite(params[0].data).all()
    assert opt.state[params[0]][key].shape == (256, 256)


def test_float32_parameters_refuse_what_float32_cannot_hold():
    opt, _ = trained("sgd", dtype=np.float32)
    state = opt.state_dict()
    state["state"][0]["momentum_buffer"] = BIG
    with pytest.raises(ValueError, match=r"NaN or infinite values \(as float32\)"):
        opt.load_state_dict(state)
    state["state"][0]["momentum_buffer"] = BIG[:3] * 1e-300   # float64 is fine if it fits
    opt.load_state_dict(state)
    assert opt.state_dict()["state"][0]["momentum_buffer"].dtype == np.float32


def test_constructors_apply_the_same_checks():
    with pytest.raises(ValueError, match=r"Invalid nesterov: 'yes'"):
        optim.SGD(make_params(), lr=0.1, momentum=0.9, nesterov="yes")
    with pytest.raises(ValueError, match=r"Invalid learning rate: inf"):
        optim.SGD(make_params(), lr=math.inf)
    with pytest.raises(ValueError, match=r"Invalid betas: 5"):
        optim.Adam(make_params(), betas=5)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 0: 'a'"):
        optim.Adam(make_params(), betas=("a", 0.9))
    with pytest.raises(ValueError, match=r"Invalid amsgrad"):
        optim.AdamW(make_params(), amsgrad=None)
    with pytest.raises(ValueError, match=r"Invalid tolerance_change"):
        optim.LBFGS(make_params(), tolerance_change=math.nan)


# -- the update wrappers' own guard ---------------------------------------------------------------

def _short(n):
    """A buffer of n elements that is a view into a larger array, so that code without the size
    check overruns into memory it owns (the test then fails instead of corrupting the heap)."""
    return np.zeros(n + 64)[:n]


@pytest.mark.parametrize("size", [1, 11])
def test_sgd_update_refuses_a_wrong_size_buffer(size):
    param, grad = np.ones(6), np.ones(6)
    with pytest.raises(ValueError, match=rf"sgd_update: momentum_buffer has {size} elements, "
                                         r"the parameter has 6"):
        updates_cpu.sgd_update(param, grad, _short(size), 0.1, 0.9, 0.0, 0.0, False, False,
                               False)
    with pytest.raises(ValueError, match=r"sgd_update: the gradient has 5 elements"):
        updates_cpu.sgd_update(param, _short(5), None, 0.1, 0.0, 0.0, 0.0, False, False, True)
    np.testing.assert_array_equal(param, np.ones(6))


@pytest.mark.parametrize("which", ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
@pytest.mark.parametrize("size", [2, 9])
def test_adam_update_refuses_a_wrong_size_buffer(which, size):
    param, grad = np.ones((2, 3)), np.ones((2, 3))
    buffers = {k: np.zeros((2, 3)) for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
    buffers[which] = _short(size)
    with pytest.raises(ValueError, match=rf"adam_update: {which} has {size} elements, the "
                                         r"parameter has 6"):
        updates_cpu.adam_update(param, grad, buffers["exp_avg"], buffers["exp_avg_sq"],
                                buffers["max_exp_avg_sq"], 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False,
                                True, False)
    np.testing.assert_array_equal(param, np.ones((2, 3)))


@pytest.mark.parametrize("step,beta1,match", [(0, 0.9, r"step must be an integer in \[1, "),
                                              (10 ** 400, 0.9, r"step must be an integer"),
                                              (1, 1.0, r"beta1 must be in \[0, 1\)")])
def test_adam_update_refuses_a_step_it_cannot_correct(step, beta1, match):
    param = np.ones(3)
    with pytest.raises(ValueError, match=rf"adam_update: {match}"):
        updates_cpu.adam_update(param, np.ones(3), np.zeros(3), np.zeros(3), None, step, 1e-3,
                                beta1, 0.999, 1e-8, 0.0, False, False, False)
    np.testing.assert_array_equal(param, np.ones(3))


def test_size_check_shared_with_the_cuda_wrappers():
    # updates_cuda calls the same check (on device arrays, which have .size too)
    check_update_sizes("adam_update", np.ones(4), np.ones(4), exp_avg=np.ones(4), vmax=None)
    with pytest.raises(ValueError, match=r"adam_update: exp_avg_sq has 3 elements, the "
                                         r"parameter has 4"):
        check_update_sizes("adam_update", np.ones(4), np.ones(4), exp_avg=np.ones(4),
                           exp_avg_sq=np.ones(3))


# -- schedules ------------------------------------------------------------------------------------

def _sgd(lr=0.5):
    return optim.SGD([{"params": make_params()[:1]}, {"params": make_params()[1:], "lr": 0.2}],
                     lr=lr)


SCHEDULERS = {
    "step": lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
    "multistep": lambda o: optim.MultiStepLR(o, milestones=[1, 3, 3], gamma=0.5),
    "exponential": lambda o: optim.ExponentialLR(o, gamma=0.9),
    "linear": lambda o: optim.LinearLR(o, start_factor=0.25, total_iters=4),
    "warmup": lambda o: optim.LinearWarmup(o, warmup_steps=3),
    "cosine": lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    "lambda": lambda o: optim.LambdaLR(o, lambda e: 0.9 ** e),
    "sequential": lambda o: optim.SequentialLR(
        o, [optim.LinearWarmup(o, 2), optim.CosineAnnealingLR(o, T_max=4)], milestones=[2]),
    "plateau": lambda o: optim.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1),
}
METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]


def _advance(sched, start, steps):
    """Step the schedule (and its optimizer's rates); the rates after each step."""
    out = []
    for k in range(start, start + steps):
        if isinstance(sched, optim.ReduceLROnPlateau):
            sched.step(METRICS[k])
        else:
            sched.step()
        out.append([g["lr"] for g in sched.optimizer.param_groups])
    return out


def _trained_scheduler(name, steps=3):
    opt = _sgd()
    sched = SCHEDULERS[name](opt)
    _advance(sched, 0, steps)
    return opt, sched


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_state_round_trips_exactly(name):
    opt, sched = _trained_scheduler(name)
    saved_opt, saved = json_round_trip(opt.state_dict()), json_round_trip(sched.state_dict())
    rest = _advance(sched, 3, 5)

    opt2 = _sgd()
    sched2 = SCHEDULERS[name](opt2)
    before = sched2.state_dict()
    assert sched2.check_state_dict(saved) is None
    assert_same(sched2.state_dict(), before)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    assert _advance(sched2, 3, 5) == rest


BAD_SCHEDULER_STATES = [
    # keys: only the attributes state_dict gives, never a method
    ("step", _set(["step"], 3), ValueError, r"StepLR state has an unknown key 'step'"),
    ("cosine", _set(["get_lr"], None), ValueError, r"unknown key 'get_lr'"),
    ("plateau", _set(["step"], 1), ValueError,
     r"ReduceLROnPlateau state has an unknown key 'step'"),
    ("exponential", _set(["foo"], 1), ValueError, r"unknown key 'foo'"),
    ("lambda", _set(["lr_lambdas"], []), ValueError, r"LambdaLR state has an unknown key"),
    ("step", _set(["optimizer"], None), ValueError, r"unknown key 'optimizer'"),
    # base attributes
    ("step", _set(["last_epoch"], "1"), TypeError,
     r"StepLR state: 'last_epoch' must be an integer, got str"),
    ("step", _set(["last_epoch"], 10 ** 30), ValueError, r"'last_epoch' must be an integer in"),
    ("cosine", _set(["_step_count"], 1.5), TypeError, r"'_step_count' must be an integer"),
    ("cosine", _set(["_is_initial"], "no"), TypeError, r"'_is_initial' must be True or False"),
    ("linear", _set(["base_lrs"], [0.5]), ValueError,
     r"LinearLR state: 'base_lrs' has 1 entries, expected 2"),
    ("linear", _set(["base_lrs"], [0.5, math.nan]), ValueError, r"'base_lrs'\[1\] must be"),
    ("linear", _set(["_last_lr"], "x"), TypeError, r"'_last_lr' must be a list"),
    # hyper-parameters, as the constructors check them
    ("step", _set(["step_size"], 0), ValueError, r"'step_size' must be an integer in \[1, "),
    ("step", _set(["gamma"], "x"), TypeError, r"StepLR state: 'gamma' must be a number"),
    ("multistep", _set(["milestones"], [3, 1]), ValueError, r"'milestones' must be sorted"),
    ("multistep", _set(["milestones"], [1, "3"]), TypeError, r"'milestones'\[1\] must be an"),
    ("linear", _set(["start_factor"], 0.0), ValueError,
     r"'start_factor' must be in \(0.0, 1.0\], got 0.0"),
    ("warmup", _set(["total_iters"], 0), ValueError, r"LinearWarmup state: 'total_iters'"),
    ("cosine", _set(["T_max"], 0), ValueError, r"'T_max' must be in \(0.0, inf\)"),
    ("cosine", _set(["eta_min"], math.inf), ValueError, r"'eta_min' must be a finite number"),
    # SequentialLR and the states of its schedulers
    ("sequential", _set(["_schedulers", 1, "last_epoch"], "x"), TypeError,
     r"SequentialLR state: '_schedulers'\[1\]: CosineAnnealingLR state: 'last_epoch' must be "
     r"an integer"),
    ("sequential", _set(["_schedulers", 0, "step"], 1), ValueError,
     r"'_schedulers'\[0\]: LinearWarmup state has an unknown key 'step'"),
    ("sequential", _set(["_schedulers"], [{}]), ValueError,
     r"'_schedulers' has 1 states, this SequentialLR has 2 schedulers"),
    ("sequential", _set(["_milestones"], [2, 4]), ValueError, r"'_milestones' has 2 entries"),
    ("sequential", _set(["_is_initial"], False), ValueError, r"unknown key '_is_initial'"),
    # ReduceLROnPlateau
    ("plateau", _set(["mode"], "up"), ValueError, r"'mode' must be one of \['min', 'max'\]"),
    ("plateau", _set(["threshold_mode"], 1), ValueError, r"'threshold_mode' must be one of"),
    ("plateau", _set(["factor"], 1.0), ValueError, r"'factor' must be in \(-inf, 1.0\)"),
    ("plateau", _set(["min_lrs"], [0.0]), ValueError, r"'min_lrs' has 1 entries, expected 2"),
    ("plateau", _set(["best"], math.nan), ValueError, r"'best' must be a number \(not NaN\)"),
    ("plateau", _set(["patience"], "x"), TypeError, r"'patience' must be a number"),
    ("plateau", _set(["num_bad_epochs"], -1), ValueError, r"'num_bad_epochs' must be an integer"),
]


def _valid_scheduler_change(state):
    state["last_epoch"] = state["last_epoch"] + 7
    if "_schedulers" in state:
        state["_schedulers"][0]["last_epoch"] += 7


@pytest.mark.parametrize("name,change,error,match", BAD_SCHEDULER_STATES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_SCHEDULER_STATES)])
def test_bad_scheduler_state_is_refused_and_changes_nothing(name, change, error, match):
    opt, sched = _trained_scheduler(name)
    before, lrs = sched.state_dict(), [g["lr"] for g in opt.param_groups]
    bad = copy.deepcopy(before)
    _valid_scheduler_change(bad)
    change(bad)
    with pytest.raises(error, match=match):
        sched.check_state_dict(bad)
    with pytest.raises(error, match=match):
        sched.load_state_dict(bad)
    assert_same(sched.state_dict(), before)
    assert [g["lr"] for g in opt.param_groups] == lrs
    _advance(sched, 3, 1)   # still works: no method was shadowed
