"""Readers of detection annotations on disk: Pascal VOC XML and COCO JSON.

Both give :class:`DetectionDataset` samples ``(image (3, H, W) float32, {"boxes", "labels",
"difficult"})`` in continuous pixel coordinates:

* **VOC** (:class:`VOCDetection`): ``Annotations/<id>.xml`` (``<object><name>``,
  ``<difficult>``, ``<bndbox>`` with 1-based inclusive pixel corners, converted to ``(xmin - 1,
  ymin - 1, xmax, ymax)``), ``JPEGImages/<id>.jpg`` and ``ImageSets/Main/<split>.txt``; classes
  are :data:`VOC_CLASSES` (labels 1..20) unless given;
* **COCO** (:class:`COCODetection`): an ``instances_*.json`` (``images``, ``annotations`` with
  ``bbox = [x, y, w, h]``, ``categories``) and an image folder; category ids map to labels 1..K in
  increasing id order; crowd annotations and boxes without area are skipped.

``size=S`` resizes every image to S x S (boxes scaled) so that batches stack. A missing file is a
:class:`minicnn.DatasetNotFoundError`, a malformed one a :class:`minicnn.DataFormatError`, each
naming the file.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from minicnn import DataFormatError, DatasetNotFoundError
from minicnn.data import load_image

from .datasets import DetectionDataset

VOC_CLASSES = ["__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def _resize(image, boxes, size):
    if size is None:
        return image, boxes
    from PIL import Image
    h, w = image.shape[1:]
    pic = Image.fromarray(np.rint(image.transpose(1, 2, 0) * 255).astype(np.uint8))
    pic = pic.resize((size, size), Image.BILINEAR)
    out = np.asarray(pic, np.float32).transpose(2, 0, 1) / np.float32(255)
    scale = np.array([size / w, size / h, size / w, size / h], np.float32)
    return np.ascontiguousarray(out), boxes * scale


def parse_voc_xml(path, classes=VOC_CLASSES):
    """``{"boxes", "labels", "difficult", "size": (h, w)}`` of one VOC annotation file."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable VOC annotation ({exc})") from None
    index = {name: i for i, name in enumerate(classes)}
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in index:
            raise DataFormatError(f"{path}: unknown class {name!r}; known: {classes[1:]}")
        box = obj.find("bndbox")
        try:
            x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise DataFormatError(f"{path}: an object without a numeric bndbox") from None
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        labels.append(index[name])
        difficult.append((obj.findtext("difficult") or "0").strip() == "1")
    size = root.find("size")
    hw = None
    if size is not None and size.findtext("height") and size.findtext("width"):
        hw = (int(float(size.findtext("height"))), int(float(size.findtext("width"))))
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4),
            "labels": np.array(labels, np.int64), "difficult": np.array(difficult, bool),
            "size": hw}


class VOCDetection(DetectionDataset):
    """Pascal VOC detection from ``root`` (the ``VOC2007`` folder, or one holding
    ``VOCdevkit/VOC2007``); ``split`` names ``ImageSets/Main/<split>.txt``."""

    def __init__(self, root, split="trainval", size=None, classes=VOC_CLASSES, transform=None,
                 keep_difficult=True):
        root = Path(root)
        for candidate in (root, root / "VOCdevkit" / "VOC2007", root / "VOCdevkit" / "VOC2012"):
            if (candidate / "Annotations").is_dir():
                root = candidate
                break
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        missing = [str(p) for p in (root / "Annotations", root / "JPEGImages", listing)
                   if not p.exists()]
        if missing:
            raise DatasetNotFoundError(f"VOCDetection: missing {', '.join(missing)}")
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        self.root, self.size, self.classes = root, size, list(classes)
        self.num_classes = len(self.classes) - 1
        self.transform, self.keep_difficult = transform, keep_difficult

    def __len__(self):
        return len(self.ids)

    def load(self, index):
        ident = self.ids[index]
        xml = self.root / "Annotations" / f"{ident}.xml"
        if not xml.exists():
            raise DatasetNotFoundError(f"VOCDetection: missing {xml}")
        ann = parse_voc_xml(xml, self.classes)
        keep = np.ones(len(ann["labels"]), bool) if self.keep_difficult else ~ann["difficult"]
        image = load_image(str(self.root / "JPEGImages" / f"{ident}.jpg"), mode="RGB")
        image, boxes = _resize(image, ann["boxes"][keep], self.size)
        return image, {"boxes": boxes, "labels": ann["labels"][keep],
                       "difficult": ann["difficult"][keep]}


class COCODetection(DetectionDataset):
    """COCO-format detection: ``annotations`` (a JSON file) and ``images`` (its image folder)."""

    def __init__(self, images, annotations, size=None, transform=None):
        ann_path, image_dir = Path(annotations), Path(images)
        for p in (ann_path, image_dir):
            if not p.exists():
                raise DatasetNotFoundError(f"COCODetection: missing {p}")
        try:
            doc = json.loads(ann_path.read_text())
            cats = sorted(doc["categories"], key=lambda c: c["id"])
            entries = {im["id"]: im for im in doc["images"]}
            anns = doc.get("annotations", [])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{ann_path}: not a COCO annotation file ({exc!r})") from None
        self.label_of = {c["id"]: k + 1 for k, c in enumerate(cats)}
        self.classes = ["__background__"] + [c.get("name", str(c["id"])) for c in cats]
        self.num_classes = len(cats)
        per_image = {i: ([], []) for i in entries}
        for a in anns:
            x, y, w, h = (float(v) for v in a["bbox"])
            if a.get("iscrowd", 0) or w <= 0 or h <= 0 or a["image_id"] not in per_image:
                continue
            if a["category_id"] not in self.label_of:
                raise DataFormatError(f"{ann_path}: annotation {a.get('id')} has unknown category "
                                      f"{a['category_id']}")
            per_image[a["image_id"]][0].append([x, y, x + w, y + h])
            per_image[a["image_id"]][1].append(self.label_of[a["category_id"]])
        self.ids = sorted(entries)
        self.entries, self.per_image = entries, per_image
        self.image_dir, self.size, self.transform = image_dir, size, transform

    def __len__(self):
        return len(self.ids)

    def load(self, index):
        ident = self.ids[index]
        boxes, labels = self.per_image[ident]
        image = load_image(str(self.image_dir / self.entries[ident]["file_name"]), mode="RGB")
        image, b = _resize(image, np.array(boxes, np.float32).reshape(-1, 4), self.size)
        return image, {"boxes": b, "labels": np.array(labels, np.int64)}
