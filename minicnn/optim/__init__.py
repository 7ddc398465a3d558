"""Optimisers and learning-rate schedules with PyTorch's API and update formulas.

>>> opt = minicnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> sched = minicnn.optim.CosineAnnealingLR(opt, T_max=100)
>>> loss = loss_fn(model(x), y); model.backward(loss_fn.backward())
>>> minicnn.optim.clip_grad_norm_(model.parameters(), 5.0)
>>> opt.step(); sched.step()

Optimisers act on :class:`minicnn.Param` objects (``data``, ``grad``, ``requires_grad``); the array
arithmetic lives in per-device modules (``updates_cpu``) found through ``backend_for``.
"""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .lbfgs import LBFGS
from .optimizer import Optimizer, backend_for, register_backend
from .schedule import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    MultiStepLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from .sgd import SGD

__all__ = [
    "SGD", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR", "LBFGS", "LRScheduler",
    "LambdaLR", "LinearLR", "LinearWarmup", "MultiStepLR", "Optimizer", "ReduceLROnPlateau",
    "SequentialLR", "StepLR", "backend_for", "clip_grad_norm_", "clip_grad_value_",
    "register_backend",
]
