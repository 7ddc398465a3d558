"""The detector end to end: shapes, gradient flow to the backbone, a quick run that learns,
saving and loading, other backbones and presets, localisation."""

import minicnn
import numpy as np
import pytest

from minicnn_detection import (
    DetShapes,
    FasterRCNN,
    cut,
    evaluate_detector,
    evaluate_localizer,
    faster_rcnn,
    load_detector,
    localizer,
    preset,
    save_detector,
    small_backbone,
    train_detector,
    train_localizer,
)
from minicnn_detection.persist import combined_graph
from minicnn_detection.training import cpu_threads


@pytest.fixture(scope="module")
def trained():
    """A small one-class detector trained briefly on 48x48 images (120 steps; shared by the
    tests below). The full target (mAP@0.5 >= 0.9 on three classes) is examples/train_target.py."""
    minicnn.manual_seed(0)
    train = DetShapes(320, 48, num_classes=1, seed=0, max_objects=2, min_size=12, max_size=24)
    val = DetShapes(60, 48, num_classes=1, seed=1, max_objects=2, min_size=12, max_size=24)
    det = faster_rcnn(1, widths=(8, 16, 32, 32), head_hidden=(64, 64))
    history = train_detector(det, train, val, epochs=3, batch_size=8, lr=3e-3, progress=False,
                             log=None, num_threads=1, warmup=10)
    return det, history, val


def test_quick_training_learns(trained):
    det, history, val = trained
    assert len(history) == 3
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    maps = [h["val_map50"] for h in history]
    # an untrained detector scores about 0; this run reached 0.53 (the full run 0.99)
    assert maps[-1] > 0.3 and maps[-1] > maps[0], maps
    again = evaluate_detector(det, val, num_threads=1)
    assert again["map50"] == pytest.approx(history[-1]["val_map50"])
    assert 0 <= again["coco_map"] <= again["map50"]


def test_detections_have_the_documented_form(trained):
    det, _, val = trained
    x, _ = val.get_batch(np.arange(3))
    with cpu_threads(1):
        out = det.detect(x)
    assert len(out) == 3
    for d in out:
        assert d["boxes"].shape == (len(d["scores"]), 4) and d["labels"].dtype == np.int64
        assert (np.diff(d["scores"]) <= 0).all() and (d["scores"] > 0.05).all()
        assert (d["boxes"] >= 0).all() and (d["boxes"] <= 48).all()
        assert set(d["labels"].tolist()) <= {1}


def test_save_and_load_give_the_same_detections(trained, tmp_path):
    det, _, val = trained
    path = save_detector(det, tmp_path / "detector.mcnn")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detector.mcnn"]   # one file
    stored = minicnn.io.read_metadata(path)["minicnn_detection"]
    assert stored["version"] == 1 and stored["config"]["num_classes"] == 1
    assert stored["config"]["anchor_ratios"] == list(det.config.anchor_ratios)
    again = load_detector(tmp_path)
    assert again.config == det.config and again is not det
    x, _ = val.get_batch(np.arange(4))
    with cpu_threads(1):
        a, b = det.detect(x), again.detect(x)
    for da, db in zip(a, b, strict=True):
        np.testing.assert_array_equal(da["boxes"], db["boxes"])
        np.testing.assert_array_equal(da["labels"], db["labels"])
    graph = minicnn.load(str(path))           # plain minicnn reads the graph
    assert [n.name for n in graph.nodes] == ["backbone", "rpn", "head"]


def test_load_detector_refuses_files_that_are_not_detectors(tmp_path):
    minicnn.manual_seed(0)
    det = faster_rcnn(2, widths=(4, 8, 8, 8), head_hidden=(16,), class_names=("bg", "a", "b"))
    plain = tmp_path / "plain.mcnn"                    # the same graph, saved without settings
    minicnn.save(combined_graph(det), plain)
    with pytest.raises(minicnn.ModelFormatError, match="not a detector file") as info:
        load_detector(plain)
    assert str(plain) in str(info.value)
    other = tmp_path / "other.mcnn"                    # a classifier, with other metadata
    minicnn.save(minicnn.nn.Linear(2, 3), other, metadata={"classes": ["x", "y", "z"]})
    with pytest.raises(minicnn.ModelFormatError, match="not a detector file"):
        load_detector(other)
    bad = tmp_path / "bad.mcnn"                        # detector settings of the wrong form
    minicnn.save(combined_graph(det), bad,
                 metadata={"minicnn_detection": {"version": 99, "config": {}}})
    with pytest.raises(minicnn.ModelFormatError, match="'version' 1"):
        load_detector(bad)
    wrong = tmp_path / "wrong.mcnn"                    # settings on a graph that is not one
    minicnn.save(minicnn.nn.Linear(2, 3), wrong,
                 metadata={"minicnn_detection": {"version": 1, "config": det.config.to_dict()}})
    with pytest.raises(minicnn.ModelFormatError, match="not a detector graph"):
        load_detector(wrong)
    good = save_detector(det, tmp_path / "good.mcnn")
    assert load_detector(good).class_names == ("bg", "a", "b")


def test_gradient_reaches_every_parameter():
    minicnn.manual_seed(1)
    det = faster_rcnn(2, widths=(4, 8, 8, 8), head_hidden=(16,))
    data = DetShapes(2, 48, num_classes=2, seed=3)
    x, targets = data.get_batch([0, 1])
    with cpu_threads(1):
        losses = det.forward_backward(x, targets)
    assert set(losses) >= {"loss", "rpn_cls", "rpn_box", "cls", "box"}
    for name, p in det.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad).all(), name
    conv1 = det.backbone["conv1"].weight.grad
    assert np.abs(conv1).sum() > 0


def test_head_gradient_to_features_matches_finite_differences():
    """The Fast R-CNN head's gradient with respect to the feature map (through ROI Align)."""
    minicnn.manual_seed(2)
    det = faster_rcnn(2, widths=(4, 4, 4, 4), head_hidden=(8,)).double()
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 4, 6, 6))
    rois = np.array([[0, 3, 5, 30, 40], [1, 10, 2, 44, 20], [1, 0, 0, 48, 48]], float)
    minicnn.testing.gradcheck(det.head, [features, rois], max_elements=40)


def test_backbone_cut_from_a_zoo_model():
    zoo = minicnn.zoo.resnet20(num_classes=10, in_channels=3)
    backbone = cut(zoo, "layer2")                       # stride 2, 32 channels
    config = preset("small", feature_stride=2, anchor_base_size=2, anchor_scales=(4, 8),
                    head_hidden=(16,))
    det = FasterRCNN(2, backbone, config)
    data = DetShapes(2, 32, num_classes=2, seed=0, min_size=8, max_size=16)
    x, targets = data.get_batch([0, 1])
    with cpu_threads(1):
        det.forward_backward(x, targets)
        assert len(det.detect(x)) == 2
    with pytest.raises(ValueError, match="stride is 2, the config says feature_stride=8"):
        FasterRCNN(2, backbone, preset("small"))


def test_presets_reproduce_the_published_defaults():
    py = preset("py-faster-rcnn")
    assert (py.rpn_positive_iou, py.rpn_negative_iou, py.rpn_batch_size) == (0.7, 0.3, 256)
    assert (py.rpn_pre_nms_top_n_train, py.rpn_post_nms_top_n_train) == (12000, 2000)
    assert (py.rpn_pre_nms_top_n_test, py.rpn_post_nms_top_n_test, py.nms_thresh) == \
        (6000, 300, 0.3)
    assert (py.roi_batch_size, py.roi_fg_fraction, py.roi_bg_iou_lo, py.pooling) == \
        (128, 0.25, 0.1, "pool")
    assert (py.rpn_sigma, py.head_sigma, py.lr, py.weight_decay) == (3.0, 1.0, 0.001, 5e-4)
    tv = preset("torchvision")
    assert (tv.roi_batch_size, tv.nms_thresh, tv.rpn_post_nms_top_n_test) == (512, 0.5, 1000)
    assert (tv.pooling, tv.sampling_ratio, tv.aligned, tv.rpn_allowed_border) == \
        ("align", 2, False, None)
    with pytest.raises(ValueError, match="unknown detector preset"):
        preset("yolo")
    with pytest.raises(ValueError, match="unknown settings"):
        preset("small", anchor_size=3)
    det = FasterRCNN(20, small_backbone(3, (8, 8, 8, 8, 8)), preset("py-faster-rcnn",
                                                                    head_hidden=(32, 32)))
    assert det.base_anchors.shape == (9, 4) and det.head["roi_pool"].type_name == "RoIPool"


def test_localizer_learns_single_objects():
    minicnn.manual_seed(0)
    train = DetShapes(1024, 32, num_classes=3, seed=0, max_objects=1, min_size=14, max_size=28)
    val = DetShapes(128, 32, num_classes=3, seed=1, max_objects=1, min_size=14, max_size=28)
    model = localizer(3, widths=(16, 32, 32))
    history = train_localizer(model, train, val, epochs=4, log=None, num_threads=1)
    final = history[-1]
    assert final["loss"] < 0.7 * history[0]["loss"]
    # chance: accuracy 1/3, IoU of a constant box about 0.2; this run: 0.50 and 0.71
    assert final["val_accuracy"] > 0.42 and final["val_mean_iou"] > 0.55, final
    assert evaluate_localizer(model, val)["accuracy"] == pytest.approx(final["val_accuracy"])
    with pytest.raises(ValueError, match="needs exactly one"):
        evaluate_localizer(model, DetShapes(4, 32, seed=5, max_objects=3, min_size=8,
                                            max_size=10))
