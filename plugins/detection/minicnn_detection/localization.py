"""Single-object localisation: a classifier with a 4-number box regression head.

:func:`localizer` is one minicnn graph, image ``(N, C, H, W)`` -> ``[class logits (N, K),
box (N, 4)]``: conv-BN-ReLU stages with max pools, global average pooling, then two linear heads.
The box is ``(x1, y1, x2, y2)`` divided by the image width and height (so in [0, 1]).
:func:`train_localizer` minimises cross-entropy plus ``box_weight`` times smooth L1 on the box;
:func:`evaluate_localizer` reports classification accuracy, mean IoU and the localisation accuracy
(class right and IoU >= 0.5, ILSVRC's criterion). Data: any detection dataset with one object an
image, e.g. ``DetShapes(n, max_objects=1)``.
"""

import time

import numpy as np
from minicnn import Input, Model, NonFiniteError, nn, optim
from minicnn.data import DataLoader

from .boxes import box_iou
from .losses import smooth_l1, softmax_cross_entropy
from .training import cpu_threads


def localizer(num_classes=3, in_channels=3, widths=(16, 32, 64, 64)):
    """The localisation network (see the module docstring)."""
    x = Input((in_channels, None, None))
    h, c = x, in_channels
    for i, w in enumerate(widths):
        h = nn.Conv2d(c, w, 3, padding=1, bias=False)(h, name=f"conv{i + 1}")
        h = nn.ReLU()(nn.BatchNorm2d(w)(h, name=f"bn{i + 1}"), name=f"relu{i + 1}")
        if i < len(widths) - 1:
            h = nn.MaxPool2d(2)(h, name=f"pool{i + 1}")
        c = w
    h = nn.Flatten()(nn.AdaptiveAvgPool2d(4)(h, name="avgpool"), name="flatten")
    h = nn.ReLU()(nn.Linear(16 * c, 128)(h, name="fc"), name="relu_fc")
    return Model(x, [nn.Linear(128, num_classes)(h, name="cls"),
                     nn.Linear(128, 4)(h, name="box")])


def _single(targets, where):
    labels, boxes = [], []
    for k, t in enumerate(targets):
        if len(t["labels"]) != 1:
            raise ValueError(f"{where}: sample {k} has {len(t['labels'])} objects; localisation "
                             f"needs exactly one (e.g. DetShapes(max_objects=1))")
        labels.append(int(t["labels"][0]) - 1)
        boxes.append(np.asarray(t["boxes"][0], np.float64))
    return np.array(labels), np.array(boxes)


def predict_boxes(model, images):
    """``(labels 1..K, scores, boxes in pixels)`` for each image."""
    was = model.training
    model.eval()
    try:
        logits, box = model(np.ascontiguousarray(images, np.float32))
    finally:
        model.train(was)
    h, w = images.shape[2:]
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p.argmax(axis=1) + 1, p.max(axis=1), box * np.array([w, h, w, h], np.float32)


def evaluate_localizer(model, dataset, batch_size=64, num_threads=None):
    """``{"accuracy", "mean_iou", "loc_accuracy"}`` over ``dataset``."""
    correct, ious = [], []
    with cpu_threads(num_threads):
        for x, targets in DataLoader(dataset, batch_size=batch_size, prefetch=0):
            labels, boxes = _single(targets, "evaluate_localizer")
            pred, _, pbox = predict_boxes(model, x)
            correct.append(pred - 1 == labels)
            ious.append(np.diag(np.nan_to_num(box_iou(pbox.astype(np.float64), boxes))))
    correct, ious = np.concatenate(correct), np.concatenate(ious)
    return {"accuracy": float(correct.mean()), "mean_iou": float(ious.mean()),
            "loc_accuracy": float((correct & (ious >= 0.5)).mean())}


def train_localizer(model, train_set, val_set=None, *, epochs=5, batch_size=32, lr=5e-3,
                    box_weight=1.0, seed=0, log=print, num_threads=None):
    """Adam with a cosine schedule; returns the history (``loss``, ``cls``, ``box`` and the
    validation metrics of :func:`evaluate_localizer` per epoch)."""
    opt = optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed,
                        drop_last=len(train_set) > batch_size)
    sched = optim.CosineAnnealingLR(opt, T_max=max(1, epochs * len(loader)))
    history, start = [], time.perf_counter()
    with cpu_threads(num_threads):
        for epoch in range(1, epochs + 1):
            model.train()
            sums = np.zeros(3)
            for x, targets in loader:
                labels, boxes = _single(targets, "train_localizer")
                h, w = x.shape[2:]
                logits, box = model(x)
                cls, g_cls = softmax_cross_entropy(logits, labels)
                norm = boxes / np.array([w, h, w, h])
                reg, g_box = smooth_l1(box, norm, sigma=3.0, weight=box_weight / len(x))
                if not np.isfinite(cls + reg):
                    raise NonFiniteError("train_localizer: the loss is not finite")
                model.backward([g_cls.astype(np.float32), g_box.astype(np.float32)],
                               input_grad=False)
                opt.step()
                sched.step()
                sums += (cls + reg, cls, reg)
            logs = dict(zip(("loss", "cls", "box"), sums / max(len(loader), 1), strict=True))
            logs["epoch"] = epoch
            if val_set is not None:
                logs.update({f"val_{k}": v for k, v in
                             evaluate_localizer(model, val_set).items()})
            logs["seconds"] = time.perf_counter() - start
            history.append(logs)
            if log is not None:
                extra = "" if val_set is None else (
                    f", val accuracy {logs['val_accuracy']:.3f}, mean IoU "
                    f"{logs['val_mean_iou']:.3f}, loc. accuracy {logs['val_loc_accuracy']:.3f}")
                log(f"epoch {epoch}/{epochs}: loss {logs['loss']:.4f}{extra} "
                    f"({logs['seconds']:.1f} s)")
    return history
