"""Class activation maps, Grad-CAM and input-gradient saliency (with SmoothGrad).

Each method takes a model and an image batch ``x`` ((C, H, W) or (N, C, H, W), floats as the
model takes them) and returns a :class:`Saliency`: the raw maps, the classes explained, the class
scores. The score of a class is the model's output, or the input of a final Softmax /
LogSoftmax (the logit): gradients of probabilities saturate.

* **CAM** (Zhou et al. 2016): for a model ending ``features A (C, h, w) -> global average pool ->
  Linear W``, ``CAM_k = sum_c W[k, c] A_c``. Its mean over the map plus the bias is exactly the
  logit of class k. For a model ending in class maps and global average pooling (no Linear), the
  CAM of class k is map k.
* **Grad-CAM** (Selvaraju et al. 2017) at any node with a 4-D output A: ``alpha_c = mean_ij
  d y_k / d A_cij``, ``map = ReLU(sum_c alpha_c A_c)``. On a global-average-pooling + Linear
  model at the pooled features it equals ``ReLU(CAM) / (h w)``.
* **Input gradient** (Simonyan et al. 2014): ``max_c |d y_k / d x_c|`` per pixel;
  **SmoothGrad** (Smilkov et al. 2017) averages the gradient over ``smooth`` copies of the image
  with Gaussian noise of standard deviation ``noise * (max(x) - min(x))`` first.

The model is run in eval mode and without parameter gradients (its flags are restored after;
``Param.grad`` is left as it was).
"""

from dataclasses import dataclass

import numpy as np
from minicnn import to_numpy

from .graph import (
    SaliencyError,
    check_layer,
    default_layer,
    evaluating,
    find_cam_head,
    gradient_at,
    one_hot,
    resolve_classes,
    trace,
)
from .render import normalize, overlay, upsample

METHODS = ("cam", "gradcam", "gradient")

# how each method's maps are scaled to [0, 1] for display (see render.normalize)
_DISPLAY = {"cam": ("minmax", None), "gradcam": ("max", None), "gradient": ("max", 99.5),
            "smoothgrad": ("max", 99.5)}


@dataclass
class Saliency:
    """What a saliency method found.

    ``maps`` (N, h, w) float64: raw maps at the node's resolution (the input's for gradients);
    ``classes`` (N,) the class explained per sample; ``scores`` (N, K) the class scores (logits);
    ``layer`` the node the maps come from (None for gradients); ``input_size`` (H, W).
    """

    method: str
    maps: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    layer: str | None
    input_size: tuple

    def heat(self, size=None, clip_percentile="auto"):
        """(N, H, W) maps in [0, 1], upsampled bilinearly to ``size`` (default: the input's) and
        scaled per sample: CAM min to max, Grad-CAM and gradients by their maximum (gradients
        clipped at their 99.5th percentile: ``clip_percentile`` None keeps every value)."""
        mode, clip = _DISPLAY[self.method]
        if clip_percentile != "auto":
            clip = clip_percentile
        maps = upsample(self.maps, size or self.input_size)
        return np.stack([normalize(m, mode, clip) for m in maps])

    def overlay(self, image, index=0, alpha=0.5, cmap="jet"):
        """Sample ``index``'s heat blended over ``image`` (any size: the heat is resized to it);
        a Pillow RGB image."""
        from minicnn.viz import to_rgb
        rgb = to_rgb(image)
        return overlay(rgb, self.heat(rgb.shape[:2])[index], alpha=alpha, cmap=cmap)


def _batch(model, x):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise SaliencyError(f"expected an image (C, H, W) or a batch (N, C, H, W), got shape "
                            f"{x.shape}")
    dtype = model.dtype or np.dtype(np.float32)
    return np.ascontiguousarray(x, dtype=dtype)


def cam(model, x, target=None):
    """Class activation maps: ``maps[n] = sum_c W[k, c] A[n, c]`` with k = the class explained
    (``target``: None for each sample's top class, an int, or one per sample). Raises
    :class:`SaliencyError` naming what the model ends with when it has no CAM head."""
    x = _batch(model, x)
    graph = trace(model, x.shape[1:])
    head = find_cam_head(graph)
    with evaluating(model):
        scores = to_numpy(graph.model(x))
        features = graph.model.activation(head.feature).astype(np.float64)
    classes = resolve_classes(target, scores)
    if head.weight is None:
        maps = features[np.arange(len(x)), classes]
    else:
        maps = np.einsum("nc,nchw->nhw", head.weight[classes], features)
    return Saliency("cam", maps, classes, scores, head.feature, x.shape[2:])


def grad_cam(model, x, target=None, layer=None, relu=True):
    """Grad-CAM at node ``layer`` (default: the last node with a 4-D output larger than 1x1):
    ``ReLU(sum_c alpha_c A_c)`` with ``alpha_c`` the mean over the map of the class score's
    gradient with respect to ``A_c`` (``relu=False`` keeps the negative part)."""
    x = _batch(model, x)
    graph = trace(model, x.shape[1:])
    layer = default_layer(graph) if layer is None else check_layer(graph, layer)
    with evaluating(model):
        value, grad, scores, classes = gradient_at(graph, x, layer, target)
    alpha = grad.astype(np.float64).mean(axis=(2, 3))
    maps = np.einsum("nc,nchw->nhw", alpha, value.astype(np.float64))
    if relu:
        maps = np.maximum(maps, 0.0)
    return Saliency("gradcam", maps, classes, scores, layer, x.shape[2:])


def _input_grads(graph, x, classes):
    graph.model(x)
    onehot = one_hot((len(x), graph.score.shape[0]), classes, x.dtype)
    return to_numpy(graph.model.backward(onehot))


def input_gradient(model, x, target=None, smooth=0, noise=0.15, seed=0, batch_size=16):
    """Saliency from the gradient of the class score with respect to the image:
    ``max_c |d y_k / d x_c|`` per pixel.

    ``smooth`` > 0 is SmoothGrad: the gradient averaged over ``smooth`` noisy copies of each image
    (Gaussian noise of standard deviation ``noise * (max - min)`` of that image, from
    ``numpy.random.default_rng(seed)``: minicnn's random stream is not used), run
    ``batch_size`` copies at a time. The class explained is chosen on the clean image.
    """
    x = _batch(model, x)
    if not (isinstance(smooth, (int, np.integer)) and smooth >= 0):
        raise SaliencyError(f"smooth must be a non-negative number of samples, got {smooth!r}")
    if not noise >= 0:
        raise SaliencyError(f"noise must be >= 0, got {noise!r}")
    graph = trace(model, x.shape[1:])
    with evaluating(model):
        scores = to_numpy(graph.model(x))
        classes = resolve_classes(target, scores)
        if not smooth:
            onehot = one_hot(scores.shape, classes, x.dtype)
            grads = to_numpy(graph.model.backward(onehot)).astype(np.float64)
        else:
            rng = np.random.default_rng(seed)
            grads = np.zeros(x.shape)
            step = max(1, int(batch_size))
            for n in range(len(x)):
                sigma = noise * float(x[n].max() - x[n].min())
                for start in range(0, smooth, step):
                    count = min(step, smooth - start)
                    noisy = x[n] + rng.normal(0.0, sigma, (count,) + x.shape[1:])
                    g = _input_grads(graph, noisy.astype(x.dtype),
                                     np.full(count, classes[n]))
                    grads[n] += g.astype(np.float64).sum(axis=0)
            grads /= smooth
    maps = np.abs(grads).max(axis=1)
    return Saliency("smoothgrad" if smooth else "gradient", maps, classes, scores,
                    None, x.shape[2:])


def saliency(model, x, method="gradcam", target=None, layer=None, **options):
    """Dispatch by name: ``"cam"`` (:func:`cam`), ``"gradcam"`` (:func:`grad_cam`, ``layer``)
    or ``"gradient"`` (:func:`input_gradient`; ``smooth``, ``noise``, ``seed`` in
    ``options``)."""
    if method == "cam":
        if layer is not None:
            raise SaliencyError("CAM reads the feature map before the global average pooling; "
                                "it takes no layer (use method 'gradcam' for another node)")
        return cam(model, x, target, **options)
    if method == "gradcam":
        return grad_cam(model, x, target, layer=layer, **options)
    if method == "gradient":
        if layer is not None:
            raise SaliencyError("the input gradient takes no layer (use 'gradcam' for a node)")
        return input_gradient(model, x, target, **options)
    raise SaliencyError(f"unknown saliency method {method!r}; known: {', '.join(METHODS)}")
