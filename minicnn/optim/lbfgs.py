"""L-BFGS (PyTorch's algorithm, after minFunc), over all parameters as one flat vector.

``step(closure)``: the closure recomputes the loss, runs backward (filling every ``Param.grad``) and
returns the loss; it is called several times per step. Style transfer optimises an image this way.

All vector work goes through the parameters' update backend (dot products, axpy, max |x|), so the
history and the dot products can stay on the parameters' device; only scalars come back.
"""

import numpy as np

from .optimizer import Optimizer, backend_for, check_number
from .state_checks import check_float_array, check_int, check_key, check_mapping, check_real

_COUNTS = ("func_evals", "n_iter")
# saved together by every step that gets past its first evaluation
_HISTORY = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to ``bounds``."""
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square ** 0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def _strong_wolfe(ops, obj_func, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Line search along ``d`` from step ``t`` satisfying the strong Wolfe conditions.

    ``obj_func(t)`` returns (loss, flat gradient) at ``x + t d``. Returns (f, g, t, evaluations).
    """
    d_norm = ops.abs_max(d)
    g = ops.copy(g)
    f_new, g_new = obj_func(t)
    evals = 1
    gtd_new = ops.dot(g_new, d)

    # bracketing: find an interval that contains a point satisfying the conditions
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = bracket_f = bracket_g = bracket_gtd = None
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        # extrapolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        previous = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = previous, f_new, g_new, gtd_new
        f_new, g_new = obj_func(t)
        evals += 1
        gtd_new = ops.dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point satisfies the conditions
    insufficient = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # keep away from the bracket's ends when progress is slow
        top, bottom = max(bracket), min(bracket)
        eps = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < eps:
            if insufficient or t >= top or t <= bottom:
                t = top - eps if abs(t - top) < abs(t - bottom) else bottom + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = obj_func(t)
        evals += 1
        gtd_new = ops.dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high], bracket_gtd[high] = g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low], bracket_gtd[low] = g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


class LBFGS(Optimizer):
    """``LBFGS(params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
    history_size=100, line_search_fn=None)``; ``line_search_fn`` is None (fixed step ``lr``) or
    ``"strong_wolfe"``. One parameter group only. ``max_eval`` defaults to ``max_iter * 5 // 4``;
    the line search gets the evaluations left of it, as PyTorch's does since its pull request
    #135026 (2.13 checked here): a step evaluates at most ``max_eval + 1`` times.

    Frozen parameters (``requires_grad=False``) are left out of the flat vector. The history costs
    ``2 * history_size`` vectors of the parameters' total size.
    """

    def __init__(self, params, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    def _check_group(self, group):
        check_number("lr", group["lr"])
        for key in ("max_iter", "max_eval", "history_size"):
            value = group[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Invalid {key}: {value} (expected a positive integer)")
        for key in ("tolerance_grad", "tolerance_change"):
            check_number(key, group[key], finite=False)
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"only 'strong_wolfe' is supported as line_search_fn, got "
                             f"{group['line_search_fn']!r}")

    # -- the flat vector ---------------------------------------------------------------------------

    def _params(self):
        return [p for p in self.param_groups[0]["params"] if p.requires_grad]

    def _gather_flat_grad(self, ops, params):
        return ops.flatten([p.grad for p in params], [p.data for p in params])

    def _add_to_params(self, ops, params, alpha, d):
        ops.unflatten_add_([p.data for p in params], alpha, d)

    def _state(self):
        return self.state.setdefault(self.param_groups[0]["params"][0], {})

    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss of the first evaluation."""
        if closure is None:
            raise TypeError("LBFGS.step needs a closure that recomputes the loss, runs backward "
                            "and returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]
        params = self._params()
        if not params:
            return closure()
        ops = backend_for(params[0].data)
        numel = sum(p.data.size for p in params)
        state = self._state()
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        if state.get("prev_flat_grad") is not None and state["prev_flat_grad"].size != numel:
            for key in ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
                        "prev_loss"):   # the set of trainable parameters changed: start afresh
                state.pop(key, None)
            state["n_iter"] = 0

        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad(ops, params)
        if ops.abs_max(flat_grad) <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # direction: steepest descent first, then the two-loop recursion over the history
            if state["n_iter"] == 1:
                d = ops.copy(flat_grad)
                ops.scale_(d, -1.0)
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1.0
            else:
                y = ops.copy(flat_grad)
                ops.axpy_(y, -1.0, prev_flat_grad)
                s = ops.copy(d)
                ops.scale_(s, t)
                ys = ops.dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / ops.dot(y, y)
                num_old = len(old_dirs)
                al = [0.0] * num_old
                q = ops.copy(flat_grad)
                ops.scale_(q, -1.0)
                for i in range(num_old - 1, -1, -1):
                    al[i] = ops.dot(old_stps[i], q) * ro[i]
                    ops.axpy_(q, -al[i], old_dirs[i])
                d = q
                ops.scale_(d, h_diag)
                for i in range(num_old):
                    be_i = ops.dot(old_dirs[i], d) * ro[i]
                    ops.axpy_(d, al[i] - be_i, old_stps[i])

            prev_flat_grad = ops.copy(flat_grad)
            prev_loss = loss

            # step length: the first iteration ever is scaled by the gradient's L1 norm
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / ops.abs_sum(flat_grad)) * lr
            else:
                t = lr
            gtd = ops.dot(flat_grad, d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = [ops.copy(p.data) for p in params]

                def obj_func(step, x_init=x_init, d=d):
                    self._add_to_params(ops, params, step, d)
                    value = float(closure())
                    grad = self._gather_flat_grad(ops, params)
                    for p, x0 in zip(params, x_init, strict=True):
                        ops.assign_(p.data, x0)
                    return value, grad

                # the search gets the evaluations left of max_eval (PyTorch since #135026;
                # before, 25 whatever max_eval said)
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    ops, obj_func, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_to_params(ops, params, t, d)
                opt_cond = ops.abs_max(flat_grad) <= tolerance_grad
            else:
                self._add_to_params(ops, params, t, d)
                opt_cond = False
                if n_iter != max_iter:
                    # re-evaluate (not on the last iteration: the caller evaluates next anyway)
                    loss = float(closure())
                    flat_grad = self._gather_flat_grad(ops, params)
                    opt_cond = ops.abs_max(flat_grad) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if ops.abs_max(d) * abs(t) <= tolerance_change:   # no progress in the parameters
                break
            if abs(loss - prev_loss) < tolerance_change:       # no progress in the loss
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # -- state dicts: histories as 2-D arrays (k, n), scalars as numbers --------------------------

    def _export_state(self, param, state):
        out = {}
        for key, value in state.items():
            if value is None:
                continue
            if key in ("old_dirs", "old_stps"):
                ops = backend_for(state["prev_flat_grad"])
                rows = [ops.to_host(v) for v in value]
                out[key] = (np.stack(rows) if rows else
                            np.zeros((0, state["prev_flat_grad"].size), param.data.dtype))
            elif key == "ro":
                out[key] = np.asarray(value, dtype=np.float64).reshape(-1)
            elif hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
                out[key] = backend_for(value).to_host(value)
            elif key in ("t", "H_diag", "prev_loss"):
                out[key] = float(value)
            else:
                out[key] = int(value)
        return out

    def _import_state(self, param, saved):
        ops = backend_for(param.data)
        out = {}
        for key, value in saved.items():
            if key in ("old_dirs", "old_stps"):
                out[key] = [ops.from_host(row, param.data) for row in np.asarray(value)]
            elif key == "ro":
                out[key] = [float(v) for v in np.asarray(value).reshape(-1)]
            elif hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
                out[key] = ops.from_host(value, param.data)
            elif hasattr(value, "item"):
                out[key] = value.item()
            else:
                out[key] = value
        return out

    def _check_param_state(self, param, saved, at):
        """The state lives on the group's first parameter: counters, and a history whose vectors
        all have one length n (the trainable parameters' total size when saved; ``step`` starts
        afresh if that changed): ``d``, ``prev_flat_grad`` of shape (n,), ``old_dirs`` and
        ``old_stps`` of shape (k, n), ``ro`` of shape (k,)."""
        check_mapping(saved, at)
        if saved and param is not self.param_groups[0]["params"][0]:
            raise ValueError(f"{at}: LBFGS keeps its state on the first parameter of its group, "
                             f"not on this one")
        for key in saved:
            check_key(key, _COUNTS + _HISTORY, at)
        for key in _COUNTS:
            if key in saved:
                check_int(saved[key], f"{at} {key!r}")
        present = [key for key in _HISTORY if key in saved]
        if not present:
            return
        if len(present) != len(_HISTORY):
            missing = [key for key in _HISTORY if key not in saved]
            raise ValueError(f"{at} holds {present} but lacks {missing} (the history is saved "
                             f"whole)")
        self._check_history(saved, at, param.data.dtype)

    @staticmethod
    def _check_history(saved, at, dtype):
        d = saved["d"]
        check_float_array(d, f"{at} 'd'", dtype)
        if d.ndim != 1:
            raise ValueError(f"{at} 'd' has shape {d.shape}, expected a vector")
        n = d.size
        check_float_array(saved["prev_flat_grad"], f"{at} 'prev_flat_grad'", dtype, (n,),
                          "expected the length of 'd':")
        dirs = saved["old_dirs"]
        check_float_array(dirs, f"{at} 'old_dirs'", dtype)
        if dirs.ndim != 2 or dirs.shape[1] != n:
            raise ValueError(f"{at} 'old_dirs' has shape {dirs.shape}, expected (k, {n}) (one "
                             f"row of the size of 'd' per remembered step)")
        k = dirs.shape[0]
        check_float_array(saved["old_stps"], f"{at} 'old_stps'", dtype, (k, n),
                          "expected that of 'old_dirs':")
        check_float_array(saved["ro"], f"{at} 'ro'", np.float64, (k,),
                          "expected one per row of 'old_dirs':")
        for key in ("t", "H_diag"):
            check_real(saved[key], f"{at} {key!r}")
        check_real(saved["prev_loss"], f"{at} 'prev_loss'", finite=False)
