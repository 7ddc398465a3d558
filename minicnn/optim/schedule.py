"""Learning-rate schedules (PyTorch's ``torch.optim.lr_scheduler`` semantics).

A schedule changes ``group["lr"]`` of its optimiser's parameter groups. Building one records each
group's ``initial_lr`` and applies the value for step 0; then call ``scheduler.step()`` once per
epoch (or iteration), after ``optimizer.step()``. ``get_last_lr()`` lists the current rates.

The updates are PyTorch's chainable forms (each step multiplies the current rate), so two schedules
on one optimiser compose, and a rate changed from outside is carried forward. ``step(epoch)`` jumps
to an epoch with the closed form. ``state_dict()`` holds plain numbers and lists only;
``load_state_dict`` takes back only those attributes, each checked (``check_state_dict``) first.
"""

import math
from bisect import bisect_right

from .optimizer import Optimizer
from .state_checks import (
    MAX_COUNT,
    check_bool,
    check_int,
    check_key,
    check_mapping,
    check_real,
    check_real_list,
    compatible,
    show,
    type_name,
)


class _SavedState:
    """``state_dict`` (every attribute but those in ``_unsaved``) and a checked
    ``load_state_dict``. ``_state_checks()`` maps attribute names to ``check(value, where)``;
    an attribute without one must keep its kind of value (``compatible``)."""

    _unsaved = ("optimizer",)

    def _state_checks(self):
        return {}

    def state_dict(self):
        """Every attribute but the optimiser (plain numbers and lists)."""
        return {k: (list(v) if isinstance(v, (list, tuple)) else v)
                for k, v in self.__dict__.items() if k not in self._unsaved}

    def check_state_dict(self, state_dict):
        """Raise ValueError or TypeError, naming this schedule and the key, unless every key of
        ``state_dict`` is an attribute this schedule's ``state_dict()`` has (never a method) and
        its value passes the attribute's check. Changes nothing."""
        where = f"{type(self).__name__} state"
        check_mapping(state_dict, where)
        own = self.state_dict()
        checks = self._state_checks()
        for key, value in state_dict.items():
            check_key(key, own, where)
            if callable(getattr(type(self), key, None)):   # setattr would hide the method
                raise ValueError(f"{where}: key {key!r} names a method")
            at = f"{where}: {key!r}"
            if key in checks:
                checks[key](value, at)
            elif not compatible(own[key], value):
                raise TypeError(f"{at} is a {type_name(value)} {show(value)}, expected a "
                                f"{type_name(own[key])} like {show(own[key])}")

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned; checked whole first (``check_state_dict``)."""
        self.check_state_dict(state_dict)
        for key, value in state_dict.items():
            setattr(self, key, list(value) if isinstance(value, (list, tuple)) else value)


def _rates(n):
    """Check of a list of one finite rate >= 0 per parameter group."""
    return lambda value, at: check_real_list(value, at, n, minimum=0.0)


def _counter(minimum=0):
    return lambda value, at: check_int(value, at, minimum, MAX_COUNT)


def _number(minimum=None, maximum=None, strict_max=False, low_open=False):
    """Check of a finite number in a range (``low_open``: > minimum; ``strict_max``: <
    maximum)."""
    def check(value, at):
        check_real(value, at)
        low_bad = minimum is not None and (value <= minimum if low_open else value < minimum)
        high_bad = maximum is not None and (value >= maximum if strict_max else value > maximum)
        if low_bad or high_bad:
            low = "" if minimum is None else f"{'(' if low_open else '['}{minimum}, "
            high = "" if maximum is None else f"{maximum}{')' if strict_max else ']'}"
            raise ValueError(f"{at} must be in {low or '(-inf, '}{high or 'inf)'}, got "
                             f"{show(value)}")
    return check


def _choice(*allowed):
    def check(value, at):
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{at} must be one of {list(allowed)}, got {show(value)}")
    return check


def _int_list(length=None, ordered=False):
    """Check of a list of epoch numbers (``length`` of them; sorted if ``ordered``)."""
    def check(value, at):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{at} must be a list, got {type_name(value)}")
        if length is not None and len(value) != length:
            raise ValueError(f"{at} has {len(value)} entries, expected {length}")
        for i, item in enumerate(value):
            check_int(item, f"{at}[{i}]", -MAX_COUNT, MAX_COUNT)
        if ordered and list(value) != sorted(value):
            raise ValueError(f"{at} must be sorted, got {show(value)}")
    return check


class LRScheduler(_SavedState):
    """Base of the epoch-driven schedules: subclasses implement ``get_lr`` (chainable form) and
    ``_closed_form`` (the rate of each group at ``self.last_epoch``)."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   f"when resuming an optimizer")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self):
        raise NotImplementedError

    def _closed_form(self):
        return self.get_lr()

    def step(self, epoch=None):
        """Advance one epoch (or jump to ``epoch`` with the closed form) and set the rates."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = int(epoch)
            values = self._closed_form()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = self._group_lrs()

    def get_last_lr(self):
        """The learning rate of each parameter group after the last step."""
        return list(self._last_lr)

    def _state_checks(self):
        n = len(self.optimizer.param_groups)
        # _last_lr: what the rule gave (a LambdaLR may go below 0), base_lrs: optimizer rates
        return {"last_epoch": _counter(-1), "_step_count": _counter(), "_is_initial": check_bool,
                "base_lrs": _rates(n),
                "_last_lr": lambda value, at: check_real_list(value, at, n)}

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)`` (one function, or one per group). The functions are
    not part of ``state_dict``: rebuild the schedule with them, then load the state."""

    _unsaved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.optimizer = optimizer
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got "
                                 f"{len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs,
                                                                strict=True)]


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs:
    ``lr = initial_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if not isinstance(step_size, int) or isinstance(step_size, bool) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _state_checks(self):
        return {**super()._state_checks(), "step_size": _counter(1), "gamma": _number()}

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone epoch (one listed twice counts twice):
    ``lr = initial_lr * gamma ** (number of milestones <= epoch)``."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _state_checks(self):
        return {**super()._state_checks(), "milestones": _int_list(ordered=True),
                "gamma": _number()}

    def get_lr(self):
        hits = self.milestones.count(self.last_epoch)
        if hits == 0:
            return self._group_lrs()
        return [lr * self.gamma ** hits for lr in self._group_lrs()]

    def _closed_form(self):
        passed = bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = initial_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _state_checks(self):
        return {**super()._state_checks(), "gamma": _number()}

    def get_lr(self):
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate by a factor going linearly from ``start_factor`` (s) to ``end_factor`` (e)
    over ``total_iters`` epochs: ``initial_lr * (s + (e - s) * min(epoch, total_iters) /
    total_iters)``."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and "
                             "less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"total_iters must be a positive integer, got {total_iters!r}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _state_checks(self):
        return {**super()._state_checks(), "total_iters": _counter(1),
                "start_factor": _number(0.0, 1.0, low_open=True),
                "end_factor": _number(0.0, 1.0)}

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._group_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._group_lrs()]

    def _closed_form(self):
        delta = self.end_factor - self.start_factor
        frac = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + delta * frac) for base in self.base_lrs]


class LinearWarmup(LinearLR):
    """Linear warm-up: the rate grows from ``start_factor * lr`` to ``lr`` over ``warmup_steps``
    steps, then stays (a LinearLR ending at 1). Combine with a decay through SequentialLR."""

    def __init__(self, optimizer, warmup_steps, start_factor=0.1, last_epoch=-1):
        super().__init__(optimizer, start_factor=start_factor, end_factor=1.0,
                         total_iters=warmup_steps, last_epoch=last_epoch)


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (initial_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2`` (computed
    recursively, as PyTorch does; past ``T_max`` it rises again)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):   # noqa: N803 (PyTorch name)
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _state_checks(self):
        return {**super()._state_checks(), "T_max": _number(0.0, low_open=True),
                "eta_min": _number()}

    def get_lr(self):
        epoch, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and epoch > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
                    for base in self.base_lrs]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base, lr in zip(self.base_lrs, self._group_lrs(), strict=True)]
        ratio = (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1)
                                                                        / t_max))
        return [ratio * (lr - eta_min) + eta_min for lr in self._group_lrs()]

    def _closed_form(self):
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (restarted at its epoch
    0), and so on: e.g. ``SequentialLR(opt, [LinearWarmup(opt, 5), CosineAnnealingLR(opt, 95)],
    milestones=[5])``."""

    _unsaved = ("optimizer", "_schedulers")

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler, LRScheduler):
                raise ValueError(f"SequentialLR: scheduler {i} must be an epoch-driven schedule")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} belongs to another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers, got {len(milestones)}")
        self._schedulers = list(schedulers)
        self._milestones = [int(m) for m in milestones]
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:   # undo what building the schedulers did
            group["lr"] = group["initial_lr"]
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        for scheduler in self._schedulers:
            scheduler.last_epoch -= 1
        self._schedulers[0]._initial_step()
        self._step_count = 1
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self, epoch=None):
        self.last_epoch += 1
        self._step_count += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def _state_checks(self):
        return {**super()._state_checks(),
                "_milestones": _int_list(len(self._schedulers) - 1),
                "_schedulers": self._check_children}

    def _check_children(self, value, at):
        """One state per scheduler, each checked by that scheduler."""
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{at} must be a list, got {type_name(value)}")
        if len(value) != len(self._schedulers):
            raise ValueError(f"{at} has {len(value)} states, this SequentialLR has "
                             f"{len(self._schedulers)} schedulers")
        for i, (scheduler, saved) in enumerate(zip(self._schedulers, value, strict=True)):
            try:
                scheduler.check_state_dict(saved)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{at}[{i}]: {exc}") from None

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned, the schedulers' states included; all of it is
        checked before anything changes."""
        self.check_state_dict(state_dict)
        own = {k: v for k, v in state_dict.items() if k != "_schedulers"}
        super().load_state_dict(own)
        for scheduler, saved in zip(self._schedulers, state_dict.get("_schedulers", ()),
                                    strict=True):
            scheduler.load_state_dict(saved)


class ReduceLROnPlateau(_SavedState):
    """Multiply the rate by ``factor`` when a metric stops improving for more than ``patience``
    epochs: ``scheduler.step(metric)`` once per epoch.

    ``mode`` "min" (a loss) or "max" (an accuracy); ``threshold_mode`` "rel" (better means beyond
    ``best * (1 -/+ threshold)``) or "abs" (beyond ``best -/+ threshold``); after a reduction,
    ``cooldown`` epochs pass before bad epochs count again; rates never go below ``min_lr`` and a
    change smaller than ``eps`` is not applied.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got "
                                 f"{len(min_lr)}")
            self.min_lrs = [float(v) for v in min_lr]
        else:
            self.min_lrs = [float(min_lr)] * len(optimizer.param_groups)
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.mode = mode
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics):
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for i, group in enumerate(self.optimizer.param_groups):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, self.min_lrs[i])
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def _state_checks(self):
        n = len(self.optimizer.param_groups)
        count = _number(0.0)   # patience and cooldown are compared with counters: any number

        def best(value, at):
            check_real(value, at, finite=False)   # starts at +-inf

        return {"mode": _choice("min", "max"), "threshold_mode": _choice("rel", "abs"),
                "factor": _number(None, 1.0, strict_max=True), "patience": count,
                "threshold": _number(), "cooldown": count, "cooldown_counter": count,
                "eps": _number(0.0), "min_lrs": _rates(n), "last_epoch": _counter(),
                "num_bad_epochs": _counter(), "best": best,
                "_last_lr": lambda value, at: check_real_list(value, at, n)}
