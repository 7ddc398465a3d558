"""The layers of neural style transfer: the Gram matrix and the content, style and total-variation
losses (Gatys, Ecker and Bethge 2016, "Image style transfer using convolutional neural networks").

Shapes are NCHW. For one sample, ``F`` is the ``(C, M)`` matrix of the feature maps flattened over
the ``M = H W`` positions (``a[i, j, k]`` of the course notes is ``F[k, i W + j]``).

* :class:`GramMatrix`: ``G = F F^T``, ``(N, C, H, W) -> (N, C, C)``, i.e.
  ``G[k, k'] = sum_ij a[i, j, k] a[i, j, k']``;
* :class:`StyleLoss`: features and a target Gram matrix, ``s sum_kk' (G - T)^2`` with the
  normaliser ``s`` chosen by ``norm``;
* :class:`ContentLoss`: ``1/2 sum (a - t)^2``;
* :class:`TotalVariationLoss`: squared (or absolute) differences of neighbouring pixels.

The losses output a scalar; ``reduction="sum"`` (the default here, as in the paper) adds the samples
of a batch, ``"mean"`` divides by the batch size (by the number of elements for the content and
total-variation losses, like PyTorch's mean). Kernels: :mod:`.layers_cpu` (a ``layers_cuda.py``
twin registers itself the same way when present).

Every class also describes itself to ``minicnn check-plugin style_transfer`` (the conformance
suite): ``conformance_cases()`` (configurations on tiny inputs, and inputs and hyper-parameters
that must be refused) and ``reference_forward`` (the slow float64 loops of :mod:`.references`,
which share no code with the kernels).
"""

import numpy as np
from minicnn import ConfigError, Layer, Loss, ShapeError, testing

from . import references

STYLE_NORMS = ("gatys", "course", "mean", "none")


def _feature_shape(shape, what="input"):
    """Raise ShapeError unless ``shape`` is (N, C, H, W)."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ShapeError(f"the {what} must be feature maps (N, C, H, W)",
                         expected="4 axes (N, C, H, W)", received=f"shape {shape}")
    return shape


def style_scale(norm, channels, positions):
    """The normaliser ``s`` of the style loss ``s sum (G - T)^2`` for ``C`` channels and ``M``
    positions.

    * ``"gatys"``: ``1 / (4 N^2 M^2)`` with ``N = C`` (Gatys et al., eq. 4);
    * ``"course"``: ``1 / (2 nH nW nC)^2``: the same number, written with ``nH nW = M``, ``nC = N``
      (both names are accepted so that either formula can be asked for by name);
    * ``"mean"``: the mean over the ``C^2`` entries of the Gram matrices, each divided by
      ``C M`` (PyTorch's tutorial and Johnson et al.): ``1 / (C^2 (C M)^2)``;
    * ``"none"``: 1 (the plain sum of squares).
    """
    c, m = float(channels), float(positions)
    if norm in ("gatys", "course"):
        return 1.0 / (4.0 * c * c * m * m)
    if norm == "mean":
        return 1.0 / (c * c * (c * m) ** 2)
    if norm == "none":
        return 1.0
    raise ConfigError(f"StyleLoss: norm must be one of {STYLE_NORMS}, got {norm!r}")


class GramMatrix(Layer):
    """``y[n] = F F^T``: the ``(C, C)`` inner products of the feature maps of each sample,
    ``G[k, k'] = sum_ij x[n, k, i, j] x[n, k', i, j]``; ``(N, C, H, W) -> (N, C, C)``.

    ``normalize=True`` divides by the number of positions ``H W`` (a per-position average that does
    not grow with the image). Backward: ``gx[n] = (gy[n] + gy[n]^T) F`` (times the same factor).
    """

    def __init__(self, normalize=False):
        super().__init__()
        if not isinstance(normalize, (bool, np.bool_)):
            raise ConfigError(f"GramMatrix: normalize must be True or False, got {normalize!r}")
        self.normalize = bool(normalize)

    def infer_shapes(self, in_shapes):
        n, c, h, w = _feature_shape(in_shapes[0])
        return [(n, c, c)]

    def flops(self, in_shapes, out_shapes):
        n, c, h, w = in_shapes[0]
        return 2 * n * c * c * h * w

    def scale(self, in_shape):
        return 1.0 / (in_shape[2] * in_shape[3]) if self.normalize else 1.0

    def extra_repr(self):
        return "normalize=True" if self.normalize else ""

    # -- what ``minicnn check-plugin style_transfer`` uses ----------------------------------------

    @classmethod
    def conformance_cases(cls):
        """Both normalisations (C = 10 spans two row blocks of the kernels), and refusals."""
        return [
            {"shapes": [(2, 3, 4, 5)]},
            {"kwargs": {"normalize": True}, "shapes": [(1, 10, 2, 3)]},
            {"kwargs": {"normalize": "yes"}, "raises": "ConfigError",
             "match": "normalize must be True or False"},
            {"shapes": [(2, 3, 4)], "raises": "ShapeError", "match": r"4 axes \(N, C, H, W\)"},
            {"shapes": [(1, 2, 3, 4, 5)], "raises": "ShapeError", "match": "feature maps"},
        ]

    def reference_forward(self, x):
        """``sum_ij x[n, k, i, j] x[n, k', i, j]`` in plain loops, float64."""
        return references.gram(x, self.normalize)


class StyleLoss(Loss):
    """``s sum_kk' (G[k, k'] - T[k, k'])^2`` per sample, with ``G = F F^T`` the Gram matrix of the
    input features ``(N, C, H, W)`` and ``T`` the target Gram matrix ``(N, C, C)`` (the style
    image's, computed at the same number of positions ``M = H W``, or rescaled to it).

    ``norm`` picks ``s`` (see :func:`style_scale`): ``"gatys"`` (default) ``1 / (4 C^2 M^2)``,
    which is also the course's ``1 / (2 nH nW nC)^2``; ``"mean"``; ``"none"``. The Gram matrix is
    computed inside (fused; :class:`GramMatrix` is the same arithmetic as a layer of its own).
    Backward: ``gx[n] = 2 s (D + D^T) F`` with ``D = G - T``; the target gets no gradient.
    """

    def __init__(self, norm="gatys", reduction="sum"):
        super().__init__(reduction)
        if norm not in STYLE_NORMS:
            raise ConfigError(f"StyleLoss: norm must be one of {STYLE_NORMS}, got {norm!r}")
        self.norm = norm

    def infer_shapes(self, in_shapes):
        n, c, h, w = _feature_shape(in_shapes[0], "first input")
        target = tuple(in_shapes[1])
        if target != (n, c, c):
            raise ShapeError("the target must be one Gram matrix (C, C) per sample of the input "
                             f"{(n, c, h, w)}", expected=f"target shape {(n, c, c)}",
                             received=f"target shape {target}")
        return [()]

    def scale(self, in_shape):
        n, c, h, w = in_shape
        s = style_scale(self.norm, c, h * w)
        return s / n if self.reduction == "mean" else s

    def flops(self, in_shapes, out_shapes):
        n, c, h, w = in_shapes[0]
        return 2 * n * c * c * h * w + 3 * n * c * c

    def extra_repr(self):
        return f"norm={self.norm!r}, reduction={self.reduction!r}"

    # -- what ``minicnn check-plugin style_transfer`` uses ----------------------------------------

    @classmethod
    def conformance_cases(cls):
        """Features and a target Gram matrix near their own (see :func:`_style_inputs`), with two
        normalisers and both reductions; refused: unknown ``norm`` / ``reduction``, a target of
        another channel count or batch size, features that are not (N, C, H, W)."""
        return [
            {"inputs": _style_inputs((2, 3, 4, 5)), "atol": 1e-9, "rtol": 1e-4,
             "label": "() on (2, 3, 4, 5), target (2, 3, 3)"},
            {"kwargs": {"norm": "none", "reduction": "mean"}, "inputs": _style_inputs((1, 4, 3, 2)),
             "label": "(norm='none', reduction='mean') on (1, 4, 3, 2), target (1, 4, 4)"},
            {"kwargs": {"norm": "frobenius"}, "raises": "ConfigError",
             "match": "norm must be one of"},
            {"kwargs": {"reduction": "max"}, "raises": "ConfigError",
             "match": "reduction must be 'mean' or 'sum'"},
            {"shapes": [(2, 3, 4, 5), (2, 4, 4)], "raises": "ShapeError",
             "match": r"expected target shape \(2, 3, 3\), received target shape \(2, 4, 4\)"},
            {"shapes": [(2, 3, 4, 5), (1, 3, 3)], "raises": "ShapeError",
             "match": r"received target shape \(1, 3, 3\)"},
            {"shapes": [(2, 3, 4), (2, 3, 3)], "raises": "ShapeError", "match": "4 axes"},
        ]

    def reference_forward(self, x, target):
        """The normaliser written out per name and the squared differences summed in loops."""
        return references.style_loss(x, target, self.norm, self.reduction)


def _style_inputs(shape):
    """``inputs(seed)`` of a StyleLoss case: tie-free features ``(N, C, H, W)`` and a target near
    their own Gram matrices (each entry scaled by 0.5..1.5, plus noise: not symmetric, so that the
    backward's ``D + D^T`` is exercised), in float32."""
    def make(seed):
        x = testing.tie_free(shape, seed=seed)
        rng = np.random.default_rng(seed + 1)
        g = references.gram(x)
        target = g * rng.uniform(0.5, 1.5, g.shape) + 0.1 * rng.standard_normal(g.shape)
        return [x, target.astype(x.dtype)]
    return make


class ContentLoss(Loss):
    """``1/2 sum (x - t)^2`` over every element (``reduction="mean"``: ``1/2`` times the mean), the
    content cost ``J_content = 1/2 ||a_C - a_G||^2`` with ``x = a_G`` and the target ``t = a_C``.
    Any shape; the target has the input's shape and gets no gradient. Backward: ``x - t``."""

    def __init__(self, reduction="sum"):
        super().__init__(reduction)

    def infer_shapes(self, in_shapes):
        x, t = (tuple(s) for s in in_shapes)
        if x != t:
            raise ShapeError("the target must have the input's shape",
                             expected=f"target shape {x}", received=f"target shape {t}")
        return [()]

    def scale(self, in_shape):
        return 0.5 / int(np.prod(in_shape)) if self.reduction == "mean" else 0.5

    def flops(self, in_shapes, out_shapes):
        return 3 * int(np.prod(in_shapes[0]))

    # -- what ``minicnn check-plugin style_transfer`` uses ----------------------------------------

    @classmethod
    def conformance_cases(cls):
        """Feature maps and a plain matrix (any shape), both reductions; refused: an unknown
        reduction, a target of another shape."""
        return [
            {"shapes": [(2, 3, 4, 5), (2, 3, 4, 5)]},
            {"kwargs": {"reduction": "mean"}, "shapes": [(3, 7), (3, 7)]},
            {"kwargs": {"reduction": "none"}, "raises": "ConfigError",
             "match": "reduction must be 'mean' or 'sum'"},
            {"shapes": [(2, 3, 4, 5), (2, 3, 4, 4)], "raises": "ShapeError",
             "match": r"expected target shape \(2, 3, 4, 5\), received target shape "
                      r"\(2, 3, 4, 4\)"},
            {"shapes": [(3, 7), (7, 3)], "raises": "ShapeError", "match": "target shape"},
        ]

    def reference_forward(self, x, target):
        """``1/2 (x - t)^2`` summed element by element."""
        return references.content_loss(x, target, self.reduction)


class TotalVariationLoss(Loss):
    """Total variation of images ``(N, C, H, W)``: ``sum |x[i+1, j] - x[i, j]|^p +
    sum |x[i, j+1] - x[i, j]|^p`` over every sample and channel, ``p = power`` (2: smooth, the
    default; 1: anisotropic TV, whose gradient at a zero difference is taken as 0).
    ``reduction="mean"`` divides by ``N C H W``. One input, scalar output."""

    num_inputs = 1
    input_kinds = ("float",)
    differentiable_inputs = None

    def __init__(self, power=2, reduction="sum"):
        super().__init__(reduction)
        if power not in (1, 2) or isinstance(power, bool):
            raise ConfigError(f"TotalVariationLoss: power must be 1 or 2, got {power!r}")
        self.power = int(power)

    def __call__(self, *inputs, name=None):
        # minicnn.Loss.__call__ assumes two inputs: hand it a list so that one symbol works too
        if len(inputs) == 1 and not isinstance(inputs[0], (list, tuple)):
            inputs = ([inputs[0]],)
        return super().__call__(*inputs, name=name)

    def infer_shapes(self, in_shapes):
        _feature_shape(in_shapes[0])
        return [()]

    def scale(self, in_shape):
        return 1.0 / int(np.prod(in_shape)) if self.reduction == "mean" else 1.0

    def flops(self, in_shapes, out_shapes):
        return 6 * int(np.prod(in_shapes[0]))

    def extra_repr(self):
        return f"power={self.power}, reduction={self.reduction!r}"

    # -- what ``minicnn check-plugin style_transfer`` uses ----------------------------------------

    @classmethod
    def conformance_cases(cls):
        """Both powers and reductions (a width-1 image has no horizontal neighbours); refused: a
        power other than 1 or 2, an unknown reduction, images that are not (N, C, H, W)."""
        return [
            {"shapes": [(2, 3, 4, 5)]},
            {"kwargs": {"power": 1, "reduction": "mean"}, "shapes": [(1, 2, 3, 4)]},
            {"kwargs": {"power": 1}, "shapes": [(2, 2, 5, 1)]},
            {"kwargs": {"power": 3}, "raises": "ConfigError", "match": "power must be 1 or 2"},
            {"kwargs": {"power": True}, "raises": "ConfigError", "match": "power must be 1 or 2"},
            {"kwargs": {"reduction": "none"}, "raises": "ConfigError",
             "match": "reduction must be 'mean' or 'sum'"},
            {"shapes": [(3, 4, 5)], "raises": "ShapeError", "match": "4 axes"},
        ]

    def reference_forward(self, x):
        """Differences of neighbouring pixels, one by one, to the power ``p``."""
        return references.total_variation(x, self.power, self.reduction)


LAYERS = [GramMatrix]
LOSSES = [StyleLoss, ContentLoss, TotalVariationLoss]


# -- functional forms (numpy in, numpy out) --------------------------------------------------------

def _ensure():
    from .plugin import ensure_registered
    ensure_registered()


def gram_matrix(x, normalize=False):
    """``F F^T`` per sample: ``(N, C, H, W) -> (N, C, C)`` (see :class:`GramMatrix`)."""
    _ensure()
    return GramMatrix(normalize)(np.asarray(x))


def style_loss(x, target, norm="gatys", reduction="sum"):
    """The style loss of features ``x`` against target Gram matrices (see :class:`StyleLoss`)."""
    _ensure()
    return StyleLoss(norm, reduction)(np.asarray(x), np.asarray(target, dtype=np.asarray(x).dtype))


def content_loss(x, target, reduction="sum"):
    """``1/2 sum (x - target)^2`` (see :class:`ContentLoss`)."""
    _ensure()
    return ContentLoss(reduction)(np.asarray(x), np.asarray(target, dtype=np.asarray(x).dtype))


def total_variation_loss(x, power=2, reduction="sum"):
    """The total variation of images ``(N, C, H, W)`` (see :class:`TotalVariationLoss`)."""
    _ensure()
    return TotalVariationLoss(power, reduction)(np.asarray(x))


FUNCTIONAL = ["gram_matrix", "style_loss", "content_loss", "total_variation_loss"]

__all__ = ["ContentLoss", "GramMatrix", "StyleLoss", "TotalVariationLoss", "style_scale",
           *FUNCTIONAL]
