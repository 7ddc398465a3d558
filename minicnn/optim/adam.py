"""Adam and AdamW (PyTorch's formulas, bias correction, optional AMSGrad)."""

import numpy as np

from .optimizer import Optimizer, check_flag, check_number
from .state_checks import is_real, show


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    maximize=False)``.

    Per parameter at step ``t`` (counting from 1) with gradient ``g``::

        g = g + weight_decay * p                        (Adam: L2 penalty in the gradient)
        p = p * (1 - lr * weight_decay)                 (AdamW: decoupled decay, instead)
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)                           (amsgrad; then v_max replaces v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).
    """

    decoupled = False
    _state_spec = {"step": "count", "exp_avg": "param", "exp_avg_sq": "moment2",
                   "max_exp_avg_sq": "moment2"}
    _state_required = ("step", "exp_avg", "exp_avg_sq")   # made together at the first step

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        if isinstance(betas, (list, tuple, np.ndarray)):
            betas = tuple(betas)   # anything else: _check_group says what is wrong
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_number("lr", group["lr"])
        check_number("eps", group["eps"])
        check_number("weight_decay", group["weight_decay"])
        betas = group["betas"]
        if not isinstance(betas, (list, tuple, np.ndarray)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {show(betas)} (expected two values in [0, 1))")
        for i, beta in enumerate(betas):
            # beta = 1 makes the bias correction 1 - beta ** step zero
            if not is_real(beta) or not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {show(beta)} (expected a "
                                 f"number in [0, 1))")
        check_flag("amsgrad", group["amsgrad"])
        check_flag("maximize", group["maximize"])
        group["betas"] = tuple(betas)

    def _update(self, param, grad, group, state, ops):
        amsgrad = group["amsgrad"]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = ops.zeros_like(param.data)
            state["exp_avg_sq"] = ops.zeros_like(param.data)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = ops.zeros_like(param.data)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        ops.adam_update(param.data, grad, state["exp_avg"], state["exp_avg_sq"],
                        state.get("max_exp_avg_sq") if amsgrad else None, state["step"],
                        group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                        self.decoupled, amsgrad, group["maximize"])

    def _update_flat(self, params, data, grad, group, ops):
        steps = {self.state.get(p, {}).get("step") for p in params}
        if len(steps) != 1:
            return False                     # parameters at different steps
        step = (steps.pop() or 0) + 1
        amsgrad = group["amsgrad"]
        # the moments exist for all or none (made together); max_exp_avg_sq may start later.
        # _flat_state creates only where none has the array, so a False below leaves no trace
        flat = {}
        for name in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ()):
            flat[name] = self._flat_state(params, name)[0]
            if flat[name] is None:
                return False
        for p in params:
            self.state[p]["step"] = step
        beta1, beta2 = group["betas"]
        ops.adam_update(data, grad, flat["exp_avg"], flat["exp_avg_sq"],
                        flat.get("max_exp_avg_sq"), step, group["lr"], beta1, beta2,
                        group["eps"], group["weight_decay"], self.decoupled, amsgrad,
                        group["maximize"])
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p = p * (1 - lr * weight_decay)`` before the Adam step
    (the decay is not part of the gradient, so it is not rescaled by the moments). Default
    ``weight_decay=1e-2`` as in PyTorch."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
