"""Saving and loading a :class:`FasterRCNN`: one file.

``save_detector(detector, "detector.mcnn")`` writes a minicnn model file (:func:`minicnn.save`)
of one graph that wires the three parts together, ``[image, rois] -> [rpn objectness, rpn
deltas, class scores, box deltas]``, with nodes ``backbone``, ``rpn`` and ``head``: the
architecture and the weights, loadable by plain :func:`minicnn.load` (and ``minicnn summary``)
where the plugin is installed. The :class:`DetectorConfig` (anchors, thresholds, class names)
goes into the same file's user metadata, under the key ``"minicnn_detection"``
(``minicnn.io.read_metadata(path)["minicnn_detection"]["config"]``).

:func:`load_detector` reads it back; a minicnn model file without that entry is refused as not a
detector file.
"""

from pathlib import Path

import minicnn
from minicnn import Input, Model, ModelFormatError
from minicnn.io import read_metadata

from .config import DetectorConfig
from .plugin import ensure_registered

METADATA_KEY = "minicnn_detection"
METADATA_VERSION = 1
NODES = ("backbone", "rpn", "head")


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
    """Write ``path``: the graph, the weights and the :class:`DetectorConfig`, in one file
    (atomically). Returns ``path`` as a Path."""
    path = Path(path)
    metadata = {METADATA_KEY: {"version": METADATA_VERSION,
                               "config": detector.config.to_dict()}}
    minicnn.save(combined_graph(detector), str(path), metadata=metadata)
    return path


def _config(path):
    """The DetectorConfig stored in ``path``; ModelFormatError when it is not a detector file."""
    entry = read_metadata(path).get(METADATA_KEY)
    if entry is None:
        raise ModelFormatError("not a detector file: this minicnn file has no detector settings "
                               f"(metadata entry {METADATA_KEY!r}); save detectors with "
                               "minicnn_detection.save_detector or 'minicnn detect train'",
                               path=str(path))
    if not isinstance(entry, dict) or entry.get("version") != METADATA_VERSION \
            or not isinstance(entry.get("config"), dict):
        raise ModelFormatError(f"the detector settings (metadata entry {METADATA_KEY!r}) must be "
                               f"an object with 'version' {METADATA_VERSION} and a 'config' "
                               f"object", path=str(path))
    try:
        return DetectorConfig.from_dict(entry["config"])
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"the detector settings are invalid: {exc}", path=str(path)) \
            from None


def load_detector(path):
    """The :class:`FasterRCNN` saved by :func:`save_detector` (``path`` is the ``.mcnn`` file or
    a directory holding ``detector.mcnn``). A file that is not a detector saved this way is a
    :class:`minicnn.ModelFormatError` naming it."""
    from .model import FasterRCNN
    ensure_registered()
    path = Path(path)
    if path.is_dir():
        path = path / "detector.mcnn"
    config = _config(path)
    graph = minicnn.load(str(path))
    names = [node.name for node in getattr(graph, "nodes", ())]
    if names != list(NODES):
        raise ModelFormatError(f"not a detector graph: nodes {names}, expected {list(NODES)}",
                               path=str(path))
    detector = FasterRCNN.__new__(FasterRCNN)
    minicnn.Module.__init__(detector)
    detector._assemble(graph["backbone"], graph["rpn"], graph["head"], config)
    return detector
