"""Saving and loading a :class:`FasterRCNN`.

``save_detector(detector, "detector.mcnn")`` writes two files:

* ``detector.mcnn``: a minicnn model file (:func:`minicnn.save`) of one graph that wires the three
  parts together, ``[image, rois] -> [rpn objectness, rpn deltas, class scores, box deltas]``,
  with nodes ``backbone``, ``rpn`` and ``head``: the architecture and the weights, loadable by
  plain :func:`minicnn.load` (and ``minicnn summary``) where the plugin is installed;
* ``detector.json`` beside it: the :class:`DetectorConfig` (anchors, thresholds, class names).

:func:`load_detector` reads both back.
"""

import json
from pathlib import Path

import minicnn
from minicnn import Input, Model

from .config import DetectorConfig
from .plugin import ensure_registered


def _config_path(path):
    return Path(path).with_suffix(".json")


def combined_graph(detector):
    """The detector's three graphs wired into one minicnn Model (sharing their layers)."""
    backbone = detector.backbone
    channels = backbone.inputs[0].shape[0] if isinstance(backbone, Model) else 3
    image = Input((channels, None, None))
    rois = Input((5,))
    features = backbone(image, name="backbone")
    logits, deltas = detector.rpn(features, name="rpn")
    scores, boxes = detector.head([features, rois], name="head")
    return Model([image, rois], [logits, deltas, scores, boxes])


def save_detector(detector, path):
    """Write ``path`` (the graph and weights) and ``path`` with suffix ``.json`` (the config)."""
    path = Path(path)
    minicnn.save(combined_graph(detector), str(path))
    doc = {"format": "minicnn-detection", "version": 1,
           "config": detector.config.to_dict()}
    _config_path(path).write_text(json.dumps(doc, indent=1))
    return path


def load_detector(path):
    """The :class:`FasterRCNN` saved by :func:`save_detector` (``path`` is the ``.mcnn`` file or
    a directory holding ``detector.mcnn``)."""
    from .model import FasterRCNN
    ensure_registered()
    path = Path(path)
    if path.is_dir():
        path = path / "detector.mcnn"
    cfg_file = _config_path(path)
    if not cfg_file.exists():
        raise FileNotFoundError(f"load_detector: {cfg_file} (the detector's settings, written "
                                f"beside {path.name} by save_detector) is missing")
    doc = json.loads(cfg_file.read_text())
    if doc.get("format") != "minicnn-detection":
        raise ValueError(f"load_detector: {cfg_file} is not a minicnn-detection settings file")
    config = DetectorConfig.from_dict(doc["config"])
    graph = minicnn.load(str(path))
    detector = FasterRCNN.__new__(FasterRCNN)
    minicnn.Module.__init__(detector)
    detector._assemble(graph["backbone"], graph["rpn"], graph["head"], config)
    return detector
