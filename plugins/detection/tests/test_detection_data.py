"""Generated data, the VOC and COCO readers, batching through minicnn's DataLoader, flips,
drawing boxes."""

import json

import numpy as np
import pytest
from minicnn import DataFormatError, DatasetNotFoundError, InputError
from minicnn.data import DataLoader
from PIL import Image

from minicnn_detection import (
    COCODetection,
    DetDigits,
    DetShapes,
    RandomHorizontalFlip,
    VOCDetection,
    box_iou,
    detection_grid,
    draw_boxes,
    parse_voc_xml,
)
from minicnn_detection.datasets import check_target, default_mnist_dir


def test_detshapes_samples_and_boxes():
    data = DetShapes(24, 48, num_classes=3, seed=0, max_objects=3, min_size=10, max_size=20)
    assert len(data) == 24 and data.classes == ["__background__", "circle", "square",
                                                "triangle"]
    image, target = data[0]
    assert image.shape == (3, 48, 48) and image.dtype == np.float32
    for _, t in (data[i] for i in range(len(data))):
        b = t["boxes"]
        assert 1 <= len(b) <= 3 and set(t["labels"].tolist()) <= {1, 2, 3}
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 0] >= 0).all() and (b[:, 2] <= 48).all()
        # boxes are about the drawn size and barely overlap
        side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        assert (side >= 6).all() and (side <= 21).all()
        iou = box_iou(b, b) - np.eye(len(b))
        assert (iou <= 0.2).all()
    again = DetShapes(24, 48, num_classes=3, seed=0, max_objects=3, min_size=10, max_size=20)
    np.testing.assert_array_equal(again.images, data.images)
    other = DetShapes(24, 48, num_classes=3, seed=1, max_objects=3, min_size=10, max_size=20)
    assert not np.array_equal(other.images, data.images)


def test_tight_boxes_contain_the_shape():
    """The object's pixels differ from the background: the box must cover where they differ."""
    data = DetShapes(6, 40, num_classes=2, seed=3, max_objects=1, min_size=16, max_size=20,
                     noise=0.0)
    for i in range(len(data)):
        image, t = data[i]
        x1, y1, x2, y2 = t["boxes"][0]
        inside = image[:, int(np.ceil(y1)):int(y2), int(np.ceil(x1)):int(x2)]
        assert inside.size and np.ptp(inside) > 0.2    # the shape is in there


def test_batches_through_minicnns_loader_and_flip():
    data = DetShapes(10, 32, seed=2, min_size=8, max_size=14)
    x, targets = next(iter(DataLoader(data, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and len(targets) == 4
    np.testing.assert_array_equal(targets[1]["boxes"], data[1][1]["boxes"])
    flip = RandomHorizontalFlip(p=1.0)
    image, target = data[0]
    fimage, ftarget = flip(image, target, np.random.default_rng(0))
    np.testing.assert_array_equal(fimage, image[..., ::-1])
    np.testing.assert_allclose(ftarget["boxes"][:, [0, 2]], 32 - target["boxes"][:, [2, 0]])
    flipped = DetShapes(10, 32, seed=2, min_size=8, max_size=14, transform=flip)
    xf, tf = next(iter(DataLoader(flipped, batch_size=4)))
    np.testing.assert_array_equal(xf, x[..., ::-1])


def test_bad_arguments_and_targets():
    with pytest.raises(ValueError, match="num_classes"):
        DetShapes(4, num_classes=9)
    with pytest.raises(ValueError, match="min_size <= max_size"):
        DetShapes(4, 32, min_size=20, max_size=10)
    with pytest.raises(InputError, match="x2 > x1"):
        check_target({"boxes": [[5, 5, 5, 9]], "labels": [1]})
    with pytest.raises(InputError, match="labels must be >= 1"):
        check_target({"boxes": [[0, 0, 5, 9]], "labels": [0]})


@pytest.mark.skipif(default_mnist_dir() is None, reason="../shared/data/mnist is absent")
def test_digits_on_a_canvas():
    data = DetDigits(6, 56, seed=0, max_objects=2, min_size=16, max_size=24)
    image, target = data[0]
    assert image.shape == (3, 56, 56) and len(data.classes) == 11
    assert set(target["labels"].tolist()) <= set(range(1, 11))


def test_digits_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte"):
        DetDigits(2, root=tmp_path)


VOC_XML = """<annotation><size><width>40</width><height>30</height><depth>3</depth></size>
<object><name>dog</name><difficult>0</difficult>
<bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>
<object><name>cat</name><difficult>1</difficult>
<bndbox><xmin>21</xmin><ymin>2</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
</annotation>"""


def _voc_tree(root):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    (root / "Annotations" / "000001.xml").write_text(VOC_XML)
    Image.new("RGB", (40, 30), (10, 200, 30)).save(root / "JPEGImages" / "000001.jpg")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n")


def test_voc_reader(tmp_path):
    _voc_tree(tmp_path / "VOCdevkit" / "VOC2007")
    ann = parse_voc_xml(tmp_path / "VOCdevkit" / "VOC2007" / "Annotations" / "000001.xml")
    np.testing.assert_array_equal(ann["boxes"], [[2, 3, 20, 25], [20, 1, 40, 30]])
    assert ann["labels"].tolist() == [12, 8] and ann["difficult"].tolist() == [False, True]
    assert ann["size"] == (30, 40)
    data = VOCDetection(tmp_path, size=20)
    image, target = data[0]
    assert image.shape == (3, 20, 20)
    np.testing.assert_allclose(target["boxes"][0], [1, 2, 10, 50 / 3], rtol=1e-6)
    assert len(VOCDetection(tmp_path, keep_difficult=False)[0][1]["labels"]) == 1


def test_voc_reader_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Annotations"):
        VOCDetection(tmp_path)
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><object><name>unicorn</name></object></annotation>")
    with pytest.raises(DataFormatError, match="unknown class 'unicorn'"):
        parse_voc_xml(bad)
    bad.write_text("<annotation><object>")
    with pytest.raises(DataFormatError, match="bad.xml"):
        parse_voc_xml(bad)


def test_coco_reader(tmp_path):
    Image.new("RGB", (50, 40), (0, 0, 0)).save(tmp_path / "a.png")
    doc = {"images": [{"id": 7, "file_name": "a.png", "width": 50, "height": 40}],
           "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
           "annotations": [
               {"id": 1, "image_id": 7, "category_id": 18, "bbox": [5, 6, 10, 20], "iscrowd": 0},
               {"id": 2, "image_id": 7, "category_id": 3, "bbox": [1, 1, 4, 4], "iscrowd": 1},
               {"id": 3, "image_id": 7, "category_id": 3, "bbox": [1, 1, 0, 4]}]}
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    data = COCODetection(tmp_path, tmp_path / "instances.json")
    assert data.classes == ["__background__", "car", "dog"] and len(data) == 1
    image, target = data[0]
    assert image.shape == (3, 40, 50)
    np.testing.assert_array_equal(target["boxes"], [[5, 6, 15, 26]])
    assert target["labels"].tolist() == [2]
    (tmp_path / "broken.json").write_text("{\"images\": 3}")
    with pytest.raises(DataFormatError, match="broken.json"):
        COCODetection(tmp_path, tmp_path / "broken.json")


def test_drawing_boxes():
    image = np.zeros((3, 20, 30), np.float32)
    pic = draw_boxes(image, [[2, 3, 12, 15]], [1], [0.9], ["bg", "thing"], scale=2)
    assert pic.size == (60, 40)
    a = np.asarray(pic)
    assert a[6, 10:20].any() and not a[27, 10:20].any()      # the top edge; inside: nothing
    grid = detection_grid([image, image], [{"boxes": [[1, 1, 5, 5]], "scores": [0.8],
                                            "labels": [1]}] * 2,
                          [{"boxes": [[1, 1, 6, 6]], "labels": [1]}] * 2, scale=2, nrow=2)
    assert grid.size[0] > 120
