"""Detection metrics: VOC-style average precision at one IoU threshold and COCO-style mAP over
IoU 0.5:0.05:0.95.

Inputs, one entry per image: ``detections[i] = {"boxes" (D, 4), "scores" (D,), "labels" (D,)}``
and ``targets[i] = {"boxes" (M, 4), "labels" (M,)[, "difficult" (M,) bool]}``; labels 1..K.

* **VOC** (:func:`voc_evaluate`, py-faster-rcnn's ``voc_eval``): per class, detections from all
  images sorted by score; each takes the ground-truth box of its image and class with the largest
  IoU; a hit if that IoU is at least the threshold and the box is not taken yet (a "difficult"
  box neither counts nor penalises). AP is the area under the precision envelope
  (``method="area"``, VOC 2010+) or the 11-point mean (``"11point"``, VOC 2007). mAP averages the
  classes that have ground truth.
* **COCO** (:func:`coco_evaluate`): at each IoU threshold in 0.50, 0.55, ..., 0.95, detections
  (the ``max_detections`` best of each image) are matched greedily by score per image and class
  to the best still-free ground-truth box with IoU >= threshold; AP is the 101-point interpolated
  precision; mAP averages over classes and thresholds. No area ranges or crowd boxes.

IoU uses continuous coordinates (:func:`minicnn_detection.box_iou`; VOC's devkit adds 1 pixel).
"""

import numpy as np

from .boxes import box_iou


def average_precision(recall, precision, method="area"):
    """AP from a recall-precision curve (detections in decreasing score order)."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if method == "11point":
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    if method == "area":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    if method == "coco101":
        envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        thresholds = np.linspace(0, 1, 101)
        idx = np.searchsorted(recall, thresholds, side="left")
        return float(np.mean([envelope[i] if i < len(envelope) else 0.0 for i in idx]))
    raise ValueError(f"average_precision: method must be 'area', '11point' or 'coco101', got "
                     f"{method!r}")


def _as_arrays(entry, with_scores):
    boxes = np.asarray(entry["boxes"], np.float64).reshape(-1, 4)
    labels = np.asarray(entry["labels"], np.int64).reshape(-1)
    out = [boxes, labels]
    if with_scores:
        out.append(np.asarray(entry["scores"], np.float64).reshape(-1))
    else:
        out.append(np.asarray(entry.get("difficult", np.zeros(len(labels), bool)),
                              bool).reshape(-1))
    return out


def _classes(targets, num_classes):
    if num_classes is not None:
        return range(1, int(num_classes) + 1)
    labels = [np.asarray(t["labels"]).reshape(-1) for t in targets]
    found = np.unique(np.concatenate(labels)) if labels else np.zeros(0, np.int64)
    return [int(c) for c in found]


def _check(detections, targets):
    if len(detections) != len(targets):
        raise ValueError(f"detection metrics: {len(detections)} detection entries for "
                         f"{len(targets)} images")


def voc_evaluate(detections, targets, iou_threshold=0.5, method="area", num_classes=None):
    """VOC-style evaluation: ``{"map": float, "ap": {class: AP}, "recall": {class: final
    recall}, "precision": {class: precision at the final recall}}``; classes without ground truth
    are left out (AP undefined)."""
    _check(detections, targets)
    gts = [_as_arrays(t, False) for t in targets]
    dets = [_as_arrays(d, True) for d in detections]
    ap, final_recall, final_precision = {}, {}, {}
    for c in _classes(targets, num_classes):
        per_image, npos = [], 0
        for boxes, labels, difficult in gts:
            m = labels == c
            per_image.append((boxes[m], difficult[m], np.zeros(int(m.sum()), bool)))
            npos += int((~difficult[m]).sum())
        if npos == 0:
            continue
        image_of, scores, boxes_c = [], [], []
        for i, (boxes, labels, s) in enumerate(dets):
            m = labels == c
            image_of += [i] * int(m.sum())
            scores.append(s[m])
            boxes_c.append(boxes[m])
        scores = np.concatenate(scores) if scores else np.zeros(0)
        boxes_c = np.concatenate(boxes_c) if boxes_c else np.zeros((0, 4))
        order = np.argsort(-scores, kind="stable")
        tp = np.zeros(len(order))
        fp = np.zeros(len(order))
        for rank, d in enumerate(order):
            gt_boxes, difficult, taken = per_image[image_of[d]]
            if not len(gt_boxes):
                fp[rank] = 1
                continue
            overlaps = np.nan_to_num(box_iou(boxes_c[d:d + 1], gt_boxes)[0], nan=0.0)
            j = int(np.argmax(overlaps))
            if overlaps[j] >= iou_threshold:
                if difficult[j]:
                    continue
                if not taken[j]:
                    tp[rank] = 1
                    taken[j] = True
                else:
                    fp[rank] = 1
            else:
                fp[rank] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap[c] = average_precision(recall, precision, method)
        final_recall[c] = float(recall[-1]) if len(recall) else 0.0
        final_precision[c] = float(precision[-1]) if len(precision) else 0.0
    mean = float(np.mean(list(ap.values()))) if ap else float("nan")
    return {"map": mean, "ap": ap, "recall": final_recall, "precision": final_precision}


def coco_evaluate(detections, targets, iou_thresholds=None, max_detections=100,
                  num_classes=None):
    """COCO-style evaluation: ``{"map": mean over classes and IoU 0.5:0.95, "map50", "map75",
    "ap": {threshold: {class: AP}}}``."""
    _check(detections, targets)
    thresholds = np.round(np.linspace(0.5, 0.95, 10), 2) if iou_thresholds is None \
        else np.asarray(iou_thresholds, np.float64)
    gts = [_as_arrays(t, False) for t in targets]
    dets = []
    for d in detections:
        boxes, labels, scores = _as_arrays(d, True)
        top = np.argsort(-scores, kind="stable")[:max_detections]
        dets.append((boxes[top], labels[top], scores[top]))
    classes = [c for c in _classes(targets, num_classes)
               if sum(int((g[1] == c).sum()) for g in gts)]
    table = {float(t): {} for t in thresholds}
    for c in classes:
        per_image = []
        npos = 0
        for (gb, gl, _), (db, dl, ds) in zip(gts, dets, strict=True):
            g, d = gb[gl == c], db[dl == c]
            s = ds[dl == c]
            iou = np.nan_to_num(box_iou(d, g), nan=0.0) if len(d) and len(g) \
                else np.zeros((len(d), len(g)))
            per_image.append((s, iou))
            npos += len(g)
        for t in thresholds:
            scores, hits = [], []
            for s, iou in per_image:     # detections already in decreasing score order
                free = np.ones(iou.shape[1], bool)
                for k in range(len(s)):
                    cand = np.where(free & (iou[k] >= t), iou[k], -1.0)
                    j = int(np.argmax(cand)) if len(cand) else -1
                    hit = j >= 0 and cand[j] >= 0
                    if hit:
                        free[j] = False
                    scores.append(s[k])
                    hits.append(hit)
            order = np.argsort(-np.asarray(scores), kind="stable")
            hits = np.asarray(hits, np.float64)[order]
            tp = np.cumsum(hits)
            fp = np.cumsum(1 - hits)
            recall = tp / npos
            precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
            table[float(t)][c] = average_precision(recall, precision, "coco101")
    per_threshold = {t: (float(np.mean(list(v.values()))) if v else float("nan"))
                     for t, v in table.items()}
    return {"map": float(np.mean(list(per_threshold.values()))) if classes else float("nan"),
            "map50": per_threshold.get(0.5, float("nan")),
            "map75": per_threshold.get(0.75, float("nan")), "ap": table}
