"""Gradient clipping: ``clip_grad_norm_`` (rescale all gradients together), ``clip_grad_value_``."""

import math

from ..errors import NonFiniteError
from ..layer import Param
from .optimizer import backend_for


def _grads(parameters):
    if isinstance(parameters, Param):
        parameters = [parameters]
    return [p.grad for p in parameters if p.requires_grad and p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=True):
    """Scale the gradients so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector (``inf``: the largest
    absolute value). Gradients are multiplied by ``min(1, max_norm / (total_norm + 1e-6))``, as in
    PyTorch. Returns the total norm before clipping, as a float. A NaN or infinite norm raises
    :class:`minicnn.NonFiniteError` (a ``FloatingPointError``) before anything is changed, unless
    ``error_if_nonfinite=False``. Frozen parameters and parameters without a gradient are ignored.
    """
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return 0.0
    parts = [backend_for(g).norm_accumulate(g, norm_type) for g in grads]
    if math.isinf(norm_type):
        total = math.nan if any(math.isnan(v) for v in parts) else max(parts)
    else:
        acc = 0.0
        for value in parts:
            acc += value
        total = acc ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                             f"gradients is {total}, so they cannot be clipped; gradients and "
                             f"weights are left unchanged (to scale by the non-finite norm anyway, "
                             f"pass error_if_nonfinite=False)")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            backend_for(g).scale_(g, coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        backend_for(g).clamp_(g, -clip_value, clip_value)
