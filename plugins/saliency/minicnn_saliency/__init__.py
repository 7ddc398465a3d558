"""minicnn-saliency: where a classifier looks.

* :func:`cam` (class activation maps, for models ending in global average pooling and a Linear
  layer, or in class maps and global average pooling), :func:`grad_cam` (any model, any node with
  a 4-D output), :func:`input_gradient` (plain gradients and SmoothGrad), :func:`saliency` (by
  name); each returns a :class:`Saliency` (raw maps, classes, scores, ``heat()``, ``overlay()``);
* the graph helpers behind them: :func:`trace` (a flat view of any model's leaf layers, nodes
  named as ``model.activation`` names them), :func:`find_cam_head`, :func:`default_layer`,
  :func:`gradient_at` (the gradient of a class score at any node);
* pictures: :func:`overlay`, :func:`apply_colormap` (jet, inferno and minicnn.viz's maps),
  :func:`upsample` (bilinear), :func:`normalize`;
* the ``minicnn saliency`` command (:mod:`.cli`), registered by :mod:`.plugin`.
"""

from .graph import (
    CamHead,
    FlatGraph,
    SaliencyError,
    default_layer,
    evaluating,
    feature_nodes,
    find_cam_head,
    gradient_at,
    resolve_classes,
    trace,
)
from .methods import METHODS, Saliency, cam, grad_cam, input_gradient, saliency
from .render import COLORMAPS, apply_colormap, normalize, overlay, upsample

__version__ = "0.1.0"

__all__ = [
    "COLORMAPS", "METHODS", "CamHead", "FlatGraph", "Saliency", "SaliencyError",
    "apply_colormap", "cam", "default_layer", "evaluating", "feature_nodes", "find_cam_head",
    "grad_cam", "gradient_at", "input_gradient", "normalize", "overlay", "resolve_classes",
    "saliency", "trace", "upsample",
]
