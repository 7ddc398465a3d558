"""Losses: layers with two inputs (prediction, target) and a scalar output, PyTorch's definitions.

``value = loss(prediction, target)`` returns a Python float; ``g = loss.backward()`` returns the
gradient of the prediction (the target gets none). ``reduction`` is ``"mean"`` or ``"sum"``.

* ``CrossEntropyLoss``: fused log-softmax + negative log-likelihood over logits ``(N, C)`` or
  ``(N, C, d1, ...)`` with integer targets ``(N,)`` or ``(N, d1, ...)``; per-class ``weight``,
  ``ignore_index`` and ``label_smoothing`` as in PyTorch. With ``z = logsumexp(x)``, weights ``w``
  and smoothing ``e``, the loss of one position with target ``t`` is
  ``(1 - e) w[t] (z - x[t]) + e / C sum_c w[c] (z - x[c])``; the mean divides the sum over
  positions by ``sum w[t]`` over the positions that are not ignored.
* ``NLLLoss``: the same over log-probabilities (no log-softmax, no smoothing).
* ``MSELoss`` (d^2), ``L1Loss`` (|d|), ``SmoothL1Loss`` (0.5 d^2 / beta if |d| < beta else
  |d| - 0.5 beta; beta = 0 is L1), with ``d = prediction - target``.
* ``BCEWithLogitsLoss``: ``max(x, 0) - x y + log(1 + exp(-|x|))``, with ``pos_weight`` multiplying
  the positive term; ``BCELoss`` over probabilities (logs clamped at -100 as PyTorch does).

The "mean" of the element-wise losses divides by the number of elements (per-element ``weight``
included, as PyTorch does). Kernels are in :mod:`minicnn.losses_cpu`.
"""

import numpy as np

from .errors import ConfigError, ShapeError
from .layer import Loss
from .layers.functional_util import build
from .registry import hookimpl


def _float_array(owner, name, value):
    """A finite float array from a user-supplied weight (float dtypes kept, others to float64)."""
    array = np.array(value)
    if array.dtype.kind not in "fiub":
        raise ConfigError(f"{owner}: {name} must be a numeric array, got {value!r}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{owner}: {name} must be finite")
    return np.ascontiguousarray(array)


class _ClassIndexLoss(Loss):
    """Base of CrossEntropyLoss and NLLLoss: scores (N, C, ...) and integer targets (N, ...)."""

    input_kinds = ("float", "index")

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        name = type(self).__name__
        if not isinstance(ignore_index, (int, np.integer)) or isinstance(ignore_index, bool):
            raise ConfigError(f"{name}: ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        if weight is None:
            self.weight = None
        else:
            weight = _float_array(name, "weight", weight)
            if weight.ndim != 1 or weight.size == 0:
                raise ConfigError(f"{name}: weight must be a 1-D array with one entry per class, "
                                  f"got shape {weight.shape}")
            self.add_buffer("weight", weight)

    def infer_shapes(self, in_shapes):
        pred, target = (tuple(s) for s in in_shapes)
        if len(pred) < 2:
            raise ShapeError("the input must hold class scores of shape (N, C) or (N, C, d1, ...)",
                             expected="(N, C, ...)", received=f"shape {pred}")
        want = (pred[0],) + pred[2:]
        if target != want:
            raise ShapeError(f"target shape must be the input shape {pred} without the class axis",
                             expected=f"target shape {want}", received=f"target shape {target}")
        if self.weight is not None and self.weight.shape[0] != pred[1]:
            raise ShapeError("weight must have one entry per class",
                             expected=f"{pred[1]} classes (input shape {pred})",
                             received=f"weight of {self.weight.shape[0]} entries")
        return [()]

    def flops(self, in_shapes, out_shapes):
        return 4 * int(np.prod(in_shapes[0]))

    def extra_repr(self):
        text = f"reduction={self.reduction!r}"
        if self.ignore_index != -100:
            text += f", ignore_index={self.ignore_index}"
        if self.weight is not None:
            text += f", weight=<{self.weight.shape[0]} classes>"
        return text


class CrossEntropyLoss(_ClassIndexLoss):
    """Log-softmax over axis 1 fused with the negative log-likelihood of integer class targets.

    Logits ``(N, C)`` with targets ``(N,)`` in ``[0, C)``, or ``(N, C, d1, ...)`` with targets
    ``(N, d1, ...)`` (per-pixel segmentation). Computed with log-sum-exp, so logits of 1e4 stay
    finite. Backward is ``(softmax - smoothed one-hot)`` scaled by the weights and the reduction.
    Targets equal to ``ignore_index`` contribute nothing (and get a zero gradient); other targets
    outside ``[0, C)`` are an :class:`minicnn.InputError`.
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, ignore_index, reduction)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ConfigError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], "
                              f"got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def extra_repr(self):
        text = super().extra_repr()
        if self.label_smoothing:
            text += f", label_smoothing={self.label_smoothing}"
        return text


class NLLLoss(_ClassIndexLoss):
    """Negative log-likelihood of log-probabilities ``(N, C, ...)`` (e.g. after LogSoftmax):
    ``-w[t] x[t]`` per position; same targets, weight, ignore_index and mean as CrossEntropyLoss."""


class _ElementwiseLoss(Loss):
    """A loss of prediction and target of one shape, summed or averaged over every element."""

    def infer_shapes(self, in_shapes):
        pred, target = (tuple(s) for s in in_shapes)
        if pred != target:
            raise ShapeError("target shape must equal the prediction shape",
                             expected=f"target shape {pred} (the prediction's)",
                             received=f"target shape {target}")
        for name in ("weight", "pos_weight"):
            value = getattr(self, name, None)
            if value is not None:
                try:
                    ok = np.broadcast_shapes(value.shape, pred) == pred
                except ValueError:
                    ok = False
                if not ok:
                    raise ShapeError(f"{name} must broadcast to the prediction shape",
                                     expected=f"a shape broadcastable to {pred}",
                                     received=f"{name} shape {value.shape}")
        return [()]

    def flops(self, in_shapes, out_shapes):
        return 3 * int(np.prod(in_shapes[0]))


class MSELoss(_ElementwiseLoss):
    """Squared error ``(x - y)^2``, averaged (or summed) over every element."""


class L1Loss(_ElementwiseLoss):
    """Absolute error ``|x - y|``; its gradient at 0 is taken as 0, as PyTorch does."""


class SmoothL1Loss(_ElementwiseLoss):
    """``0.5 d^2 / beta`` if ``|d| < beta`` else ``|d| - 0.5 beta``, with ``d = x - y``.

    ``beta = 0`` is the L1 loss."""

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        if not float(beta) >= 0.0:
            raise ConfigError(f"SmoothL1Loss: beta must be >= 0, got {beta!r}")
        self.beta = float(beta)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, beta={self.beta}"


class _WeightedBinaryLoss(_ElementwiseLoss):
    def _set_weight(self, name, value):
        if value is None:
            object.__setattr__(self, name, None)
        else:
            self.add_buffer(name, _float_array(type(self).__name__, name, value))


class BCEWithLogitsLoss(_WeightedBinaryLoss):
    """Binary cross-entropy of logits, computed stably:
    ``w [(1 - y) x + (1 + (p - 1) y) (log(1 + exp(-|x|)) + max(-x, 0))]`` with ``p = pos_weight``,
    which is ``max(x, 0) - x y + log(1 + exp(-|x|))`` when ``p = 1``. ``weight`` and ``pos_weight``
    broadcast to the prediction's shape (``pos_weight`` of shape ``(C,)`` for ``(N, C)`` logits)."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self._set_weight("weight", weight)
        self._set_weight("pos_weight", pos_weight)


class BCELoss(_WeightedBinaryLoss):
    """Binary cross-entropy of probabilities in [0, 1]: ``-w [y log x + (1 - y) log(1 - x)]``, both
    logs clamped at -100 (PyTorch's choice); prefer BCEWithLogitsLoss for stability."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self._set_weight("weight", weight)


LOSSES = [CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, BCEWithLogitsLoss, BCELoss]


@hookimpl
def minicnn_losses():
    return LOSSES


# -- functional forms (numpy in, float out) -------------------------------------------------------

def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of logits ``input`` and integer class ``target`` (see CrossEntropyLoss)."""
    return build(CrossEntropyLoss, weight, ignore_index, reduction, label_smoothing)(input, target)


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (see NLLLoss)."""
    return build(NLLLoss, weight, ignore_index, reduction)(input, target)


def mse_loss(input, target, *, reduction="mean"):
    return build(MSELoss, reduction)(input, target)


def l1_loss(input, target, *, reduction="mean"):
    return build(L1Loss, reduction)(input, target)


def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0):
    return build(SmoothL1Loss, reduction, beta)(input, target)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean",
                                     pos_weight=None):
    return build(BCEWithLogitsLoss, weight, reduction, pos_weight)(input, target)


def binary_cross_entropy(input, target, weight=None, *, reduction="mean"):
    return build(BCELoss, weight, reduction)(input, target)


FUNCTIONAL = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
              "binary_cross_entropy_with_logits", "binary_cross_entropy"]
