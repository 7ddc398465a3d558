"""minicnn-style-transfer: neural style transfer (Gatys, Ecker and Bethge 2016) on minicnn.

* layers (:mod:`.layers`, CPU kernels in :mod:`.layers_cpu`): :class:`GramMatrix`,
  :class:`StyleLoss`, :class:`ContentLoss`, :class:`TotalVariationLoss`, and their functional forms
  :func:`gram_matrix`, :func:`style_loss`, :func:`content_loss`, :func:`total_variation_loss`;
* feature networks (:mod:`.networks`) with the same layer names on every backbone
  (``conv1_1`` ... ``conv5_1``, ``conv4_2``): :func:`vgg19_features` (user-supplied weights),
  :func:`darknet_features` (Tiny Darknet through the Keras / TF.js importer),
  :func:`random_features` (no weights needed); :data:`GATYS` the paper's choices;
* the optimisation (:mod:`.transfer`): :class:`StyleTransfer` (L-BFGS or Adam on the image,
  coarse-to-fine, cost estimate), :class:`StyleResult`;
* images (:mod:`.images`): :func:`load_rgb`, :func:`save_rgb`, :func:`panel`;
* the ``minicnn style`` command (:mod:`.cli`), registered by :mod:`.plugin`.
"""

from .images import load_rgb, panel, resize, save_rgb, shorter_side
from .layers import (
    ContentLoss,
    GramMatrix,
    StyleLoss,
    TotalVariationLoss,
    content_loss,
    gram_matrix,
    style_loss,
    style_scale,
    total_variation_loss,
)
from .networks import (
    DEFAULT_WEIGHTS,
    GATYS,
    NETWORKS,
    FeatureNetwork,
    calibration_image,
    chain_features,
    darknet_features,
    default_darknet_path,
    feature_network,
    random_features,
    vgg19_features,
)
from .plugin import ensure_registered
from .transfer import Evaluation, StyleResult, StyleTransfer, graph_cost

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_WEIGHTS", "GATYS", "NETWORKS", "ContentLoss", "Evaluation", "FeatureNetwork",
    "GramMatrix", "StyleLoss", "StyleResult", "StyleTransfer", "TotalVariationLoss",
    "calibration_image", "chain_features", "content_loss", "darknet_features",
    "default_darknet_path", "ensure_registered", "feature_network", "graph_cost", "gram_matrix",
    "load_rgb", "panel", "random_features", "resize", "save_rgb", "shorter_side", "style_loss",
    "style_scale", "total_variation_loss", "vgg19_features",
]
