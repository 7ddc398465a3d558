"""Faster R-CNN: a backbone, a region proposal network and a Fast R-CNN head, as three minicnn
graphs driven by :class:`FasterRCNN`.

* ``backbone``: any minicnn graph from images ``(N, C, H, W)`` to a feature map ``(N, F, H / s,
  W / s)``: :func:`small_backbone`, or a zoo model or user graph cut at a named node
  (:func:`cut`);
* ``rpn``: :func:`rpn_head`, features -> objectness ``(N, A, h, w)`` and deltas ``(N, 4A, h, w)``;
* ``head``: :func:`fast_rcnn_head`, ``[features, rois (R, 5)]`` -> class scores ``(R, K + 1)``
  and class-specific box deltas ``(R, 4 (K + 1))``, through :class:`RoIPool` or
  :class:`RoIAlign` and fully connected layers.

Training is approximate joint training (py-faster-rcnn's end-to-end mode): one backward pass
sums the RPN loss and the head loss; proposals are constants (no gradient through the box
coordinates). The feature gradient from the head and the one from the RPN are added and sent
through the backbone once.
"""

import numpy as np
from minicnn import Input, Model, Module, Sequential, nn, to_numpy

from .anchors import generate_anchors, grid_anchors
from .config import preset
from .plugin import ensure_registered
from .roi import RoIAlign, RoIPool
from .roi_heads import head_loss, postprocess, sample_rois
from .rpn import anchor_targets, flatten_rpn, propose, rpn_loss, unflatten_rpn


def small_backbone(in_channels=3, widths=(16, 32, 64, 64)):
    """3x3 conv-BN-ReLU stages with a 2x2 max pool between them: stride ``2 ** (len - 1)``."""
    x = Input((in_channels, None, None))
    h, c = x, in_channels
    for i, w in enumerate(widths):
        h = nn.Conv2d(c, w, 3, padding=1, bias=False)(h, name=f"conv{i + 1}")
        h = nn.ReLU()(nn.BatchNorm2d(w)(h, name=f"bn{i + 1}"), name=f"relu{i + 1}")
        if i < len(widths) - 1:
            h = nn.MaxPool2d(2)(h, name=f"pool{i + 1}")
        c = w
    return Model(x, h)


def cut(model, node):
    """The part of ``model`` from its input to node ``node`` (a Model's node name, or a
    Sequential's child name), sharing the layers: a backbone from any zoo model or graph."""
    if isinstance(model, Sequential):
        names = [name for name, _ in model.named_children()]
        if node not in names:
            raise KeyError(f"cut: no child named {node!r}; children: {names}")
        return model[:names.index(node) + 1]
    return Model(model.inputs, model.node(node))


def _normal(param, std, rng):
    param.data[...] = rng.normal(0.0, std, param.data.shape).astype(param.data.dtype)


def rpn_head(channels, num_anchors, mid_channels=None, rng=None):
    """3x3 conv + ReLU, then 1x1 convs for objectness (A) and deltas (4A); weights N(0, 0.01)."""
    rng = rng or np.random.default_rng(0)
    mid = mid_channels or channels
    f = Input((channels, None, None))
    conv, cls, box = nn.Conv2d(channels, mid, 3, padding=1), nn.Conv2d(mid, num_anchors, 1), \
        nn.Conv2d(mid, 4 * num_anchors, 1)
    for layer in (conv, cls, box):
        _normal(layer.weight, 0.01, rng)
        layer.bias.data[...] = 0
    h = nn.ReLU()(conv(f, name="conv"), name="relu")
    return Model(f, [cls(h, name="cls_logits"), box(h, name="bbox_pred")])


def fast_rcnn_head(channels, num_classes, pooling="align", pool_size=7, spatial_scale=1 / 16,
                   sampling_ratio=-1, aligned=True, hidden=(1024, 1024), rng=None):
    """ROI pooling, flatten, fully connected + ReLU layers, then a (K + 1)-way classifier
    (N(0, 0.01)) and class-specific box regressors (N(0, 0.001)), as py-faster-rcnn."""
    rng = rng or np.random.default_rng(0)
    ensure_registered()
    f, r = Input((channels, None, None)), Input((5,))
    pool = RoIAlign(pool_size, spatial_scale, sampling_ratio, aligned) if pooling == "align" \
        else RoIPool(pool_size, spatial_scale)
    h = nn.Flatten()(pool([f, r], name="roi_pool"), name="flatten")
    width = channels * pool_size * pool_size
    for i, w in enumerate(hidden):
        h = nn.ReLU()(nn.Linear(width, w)(h, name=f"fc{i + 6}"), name=f"relu{i + 6}")
        width = w
    cls, box = nn.Linear(width, num_classes + 1), nn.Linear(width, 4 * (num_classes + 1))
    _normal(cls.weight, 0.01, rng)
    _normal(box.weight, 0.001, rng)
    cls.bias.data[...] = 0
    box.bias.data[...] = 0
    return Model([f, r], [cls(h, name="cls_score"), box(h, name="bbox_pred")])


def feature_geometry(backbone, probe=256):
    """``(channels, stride)`` of a backbone's output, from shape inference on a probe image."""
    in_shape = backbone.inputs[0].shape if isinstance(backbone, Model) else None
    c = in_shape[0] if in_shape else 3
    out = backbone.infer_shapes([(1, c, probe, probe)])[0]
    return out[1], probe / out[2]


class FasterRCNN(Module):
    """Faster R-CNN on minicnn graphs (see the module docstring).

    :param num_classes: object classes (labels 1..K; 0 is the background).
    :param backbone: a minicnn graph from images to features (default :func:`small_backbone`).
    :param config: a :class:`DetectorConfig` (default ``preset("small")``); ``overrides`` replace
        single settings (``anchor_scales=(4, 8, 16)``...).
    :param seed: the generator of the head initialisation and of all target sampling.
    """

    def __init__(self, num_classes=3, backbone=None, config=None, seed=0, **overrides):
        super().__init__()
        ensure_registered()
        config = (config or preset("small")).replace(num_classes=int(num_classes), **overrides)
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.backbone = backbone if backbone is not None else small_backbone()
        channels, stride = feature_geometry(self.backbone)
        if abs(stride - config.feature_stride) > 1e-6:
            raise ValueError(f"FasterRCNN: the backbone's stride is {stride:g}, the config says "
                             f"feature_stride={config.feature_stride}")
        self.base_anchors = generate_anchors(config.anchor_base_size, config.anchor_ratios,
                                             config.anchor_scales)
        a = len(self.base_anchors)
        rpn = rpn_head(channels, a, config.rpn_channels, self.rng)
        head = fast_rcnn_head(channels, config.num_classes, config.pooling, config.pool_size,
                              1.0 / config.feature_stride, config.sampling_ratio, config.aligned,
                              config.head_hidden, self.rng)
        self._assemble(self.backbone, rpn, head, config, seed)

    def _assemble(self, backbone, rpn, head, config, seed=0):
        self.backbone, self.rpn, self.head, self.config = backbone, rpn, head, config
        self.rng = np.random.default_rng(seed)
        self.base_anchors = generate_anchors(config.anchor_base_size, config.anchor_ratios,
                                             config.anchor_scales)
        self._anchor_cache = {}

    def named_children(self):
        yield "backbone", self.backbone
        yield "rpn", self.rpn
        yield "head", self.head

    @property
    def class_names(self):
        return self.config.class_names

    def anchors(self, feature_size):
        key = tuple(feature_size)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = grid_anchors(self.base_anchors, key,
                                                   self.config.feature_stride)
        return self._anchor_cache[key]

    def normalize(self, images):
        x = np.asarray(images, np.float32)
        if x.ndim == 3:
            x = x[None]
        c = x.shape[1]
        mean = np.asarray(self.config.image_mean, np.float32)[:c].reshape(1, c, 1, 1)
        std = np.asarray(self.config.image_std, np.float32)[:c].reshape(1, c, 1, 1)
        return np.ascontiguousarray((x - mean) / std, dtype=self.dtype or np.float32)

    def _proposals(self, logits, deltas, image_size, training):
        cfg = self.config
        pre = cfg.rpn_pre_nms_top_n_train if training else cfg.rpn_pre_nms_top_n_test
        post = cfg.rpn_post_nms_top_n_train if training else cfg.rpn_post_nms_top_n_test
        anchors = self.anchors(logits.shape[2:])
        flat_l, flat_d = flatten_rpn(logits, deltas)
        return [propose(anchors, flat_l[i].astype(np.float64), flat_d[i].astype(np.float64),
                        image_size, pre, post, cfg.rpn_nms_thresh, cfg.rpn_min_size)[0]
                for i in range(len(logits))]

    @staticmethod
    def _rois(per_image):
        return np.concatenate([np.concatenate([np.full((len(b), 1), float(i)), b], axis=1)
                               for i, b in enumerate(per_image)]).astype(np.float32)

    def forward_backward(self, images, targets):
        """One training step's forward and backward (parameter gradients filled; call the
        optimiser after). Returns the losses ``{"loss", "rpn_cls", "rpn_box", "cls", "box"}``."""
        cfg = self.config
        self.train()
        x = self.normalize(images)
        size = x.shape[2:]
        features = self.backbone(x)
        # The sampling, targets and losses are numpy code: device outputs come back to the host
        # (to_numpy is the identity on the CPU) and the gradients go in as numpy arrays.
        logits, deltas = (to_numpy(a) for a in self.rpn(features))
        anchors = self.anchors(logits.shape[2:])
        labels, box_targets = zip(*[anchor_targets(
            anchors, t["boxes"], size, self.rng, cfg.rpn_positive_iou, cfg.rpn_negative_iou,
            cfg.rpn_batch_size, cfg.rpn_positive_fraction, cfg.rpn_allowed_border)
            for t in targets], strict=True)
        flat_l, flat_d = flatten_rpn(logits, deltas)
        r_total, r_parts, g_l, g_d = rpn_loss(flat_l, flat_d, np.stack(labels),
                                              np.stack(box_targets), cfg.rpn_sigma)
        proposals = self._proposals(logits, deltas, size, training=True)
        sampled = [sample_rois(p, t["boxes"], t["labels"], self.rng, cfg.roi_batch_size,
                               cfg.roi_fg_fraction, cfg.roi_fg_iou, cfg.roi_bg_iou_hi,
                               cfg.roi_bg_iou_lo, cfg.bbox_reg_weights)
                   for p, t in zip(proposals, targets, strict=True)]
        rois = self._rois([s[0] for s in sampled]).astype(features.dtype)
        roi_labels = np.concatenate([s[1] for s in sampled])
        roi_targets = np.concatenate([s[2] for s in sampled])
        scores, box_deltas = (to_numpy(a) for a in self.head([features, rois]))
        h_total, h_parts, g_s, g_b = head_loss(scores, box_deltas, roi_labels, roi_targets,
                                               cfg.head_sigma)
        dtype = features.dtype
        g_feat = to_numpy(self.head.backward([g_s.astype(dtype), g_b.astype(dtype)])[0])
        g_logits, g_deltas = unflatten_rpn(g_l.astype(dtype), g_d.astype(dtype), logits.shape)
        g_feat = g_feat + to_numpy(self.rpn.backward([g_logits, g_deltas]))
        self.backbone.backward(g_feat, input_grad=False)
        losses = {"loss": r_total + h_total, **r_parts, **h_parts}
        losses["fg_rois"] = int((roi_labels > 0).sum())
        return losses

    def detect(self, images, score_thresh=None):
        """Detections for each image: ``[{"boxes" (D, 4), "scores" (D,), "labels" (D,)}, ...]``,
        in eval mode (``score_thresh`` overrides the config's)."""
        cfg = self.config
        was_training = self.training
        self.eval()
        try:
            x = self.normalize(images)
            size = x.shape[2:]
            features = self.backbone(x)
            logits, deltas = (to_numpy(a) for a in self.rpn(features))
            proposals = self._proposals(logits, deltas, size, training=False)
            for i, p in enumerate(proposals):
                if not len(p):       # no proposal survived: the whole image as one
                    proposals[i] = np.array([[0, 0, size[1], size[0]]], np.float64)
            scores, box_deltas = (to_numpy(a) for a in self.head(
                [features, self._rois(proposals).astype(features.dtype)]))
            out, start = [], 0
            thresh = cfg.score_thresh if score_thresh is None else score_thresh
            for p in proposals:
                stop = start + len(p)
                out.append(postprocess(scores[start:stop].astype(np.float64),
                                       box_deltas[start:stop].astype(np.float64), p, size,
                                       thresh, cfg.nms_thresh, cfg.detections_per_img,
                                       cfg.bbox_reg_weights))
                start = stop
            return out
        finally:
            self.train(was_training)

    def __call__(self, images):
        return self.detect(images)

    def extra_repr(self):
        c = self.config
        return (f"num_classes={c.num_classes}, anchors={len(self.base_anchors)}, "
                f"stride={c.feature_stride}, pooling={c.pooling!r}")


def faster_rcnn(num_classes=3, preset_name="small", in_channels=3, widths=(16, 32, 64, 64),
                seed=0, **overrides):
    """A :class:`FasterRCNN` with :func:`small_backbone` and the given preset (the zoo entry)."""
    config = preset(preset_name)
    return FasterRCNN(num_classes, small_backbone(in_channels, widths), config, seed,
                      **overrides)



def faster_rcnn_backbone(in_channels=3, widths=(16, 32, 64, 64), num_classes=None):
    """The zoo entry ``detection_backbone``: :func:`small_backbone` (``num_classes`` is accepted
    and ignored, for the zoo's calling convention)."""
    return small_backbone(in_channels, tuple(widths))
