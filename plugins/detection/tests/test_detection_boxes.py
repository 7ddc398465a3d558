"""Anchors, IoU, NMS, box encoding and decoding against loop references (detection_reference.py),
with random boxes, boxes on the border, empty inputs and zero-area boxes."""

import detection_reference as ref
import numpy as np
import pytest
from minicnn import InputError

from minicnn_detection import (
    batched_nms,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    generate_anchors,
    grid_anchors,
    inside_anchors,
    nms,
    remove_small_boxes,
)

# py-faster-rcnn's nine anchors (its +1 pixel convention), as printed by its generate_anchors.py
PY_FASTER_RCNN_ANCHORS = [[-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
                          [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
                          [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]]


def random_boxes(n, seed, size=50.0, zero_area=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-5, size, (n, 2))
    wh = rng.uniform(0.5, size / 2, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    if zero_area:
        boxes[:zero_area, 2] = boxes[:zero_area, 0]          # zero width
    return boxes


def test_generate_anchors_are_py_faster_rcnns():
    anchors = generate_anchors()
    assert anchors.shape == (9, 4)
    np.testing.assert_array_equal(anchors, PY_FASTER_RCNN_ANCHORS)
    np.testing.assert_array_equal(generate_anchors(16, (0.5, 1, 2), (8, 16, 32)),
                                  ref.py_faster_rcnn_anchors())


@pytest.mark.parametrize("base, ratios, scales", [(8, (0.5, 1, 2), (2, 3, 4)),
                                                  (16, (1,), (8,)), (12, (0.25, 0.7, 3), (1, 5))])
def test_generate_anchors_other_settings(base, ratios, scales):
    np.testing.assert_array_equal(generate_anchors(base, ratios, scales),
                                  ref.py_faster_rcnn_anchors(base, ratios, scales))


def test_generate_anchors_rejects_nonsense():
    with pytest.raises(ValueError, match="base_size"):
        generate_anchors(0)
    with pytest.raises(ValueError, match="ratios and scales"):
        generate_anchors(16, (), (8,))
    with pytest.raises(ValueError, match="ratios and scales"):
        generate_anchors(16, (1,), (-8,))


def test_grid_anchors_order_and_border():
    base = generate_anchors(4, (1,), (1, 2))       # two anchors per position
    grid = grid_anchors(base, (2, 3), stride=4)
    assert grid.shape == (2 * 3 * 2, 4)
    # index (h * W + w) * A + a: position (1, 2) anchor 1
    np.testing.assert_array_equal(grid[(1 * 3 + 2) * 2 + 1], base[1] + [8, 4, 8, 4])
    inside = inside_anchors(grid, (8, 12))
    expected = [i for i, a in enumerate(grid)
                if a[0] >= 0 and a[1] >= 0 and a[2] < 12 and a[3] < 8]
    np.testing.assert_array_equal(inside, expected)


@pytest.mark.parametrize("n, m, zero", [(7, 5, 0), (12, 9, 3), (1, 1, 0)])
def test_box_iou_matches_reference(n, m, zero):
    a = random_boxes(n, 1, zero_area=zero)
    b = np.concatenate([random_boxes(m, 2), a[:2]])
    np.testing.assert_allclose(box_iou(a, b), ref.box_iou(a, b), rtol=1e-12, atol=1e-15)


def test_box_iou_degenerate_cases():
    assert box_iou(np.zeros((0, 4)), random_boxes(3, 0)).shape == (0, 3)
    assert box_iou(random_boxes(3, 0), []).shape == (3, 0)
    z = np.array([[2.0, 2, 2, 2]])
    iou = box_iou(np.concatenate([z, [[0, 0, 4, 4]]]), z)
    assert np.isnan(iou[0, 0]) and iou[1, 0] == 0.0              # 0 / 0 as torchvision
    np.testing.assert_allclose(box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]]), [[1 / 7]])
    with pytest.raises(InputError, match=r"box_iou: a: expected shape \(K, 4\)"):
        box_iou(np.zeros((3, 5)), np.zeros((1, 4)))
    with pytest.raises(InputError, match="finite"):
        box_iou([[0, 0, np.inf, 1]], [[0, 0, 1, 1]])


@pytest.mark.parametrize("seed, threshold", [(0, 0.5), (1, 0.7), (2, 0.3), (3, 0.0), (4, 1.0)])
def test_nms_matches_reference(seed, threshold):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(60, seed, size=30.0, zero_area=4)
    boxes[10:20] = boxes[0] + rng.uniform(-1, 1, (10, 4))   # a cluster around box 0
    scores = rng.random(60)
    scores[5:8] = scores[20]                                 # ties keep input order
    keep = nms(boxes, scores, threshold)
    assert keep.dtype == np.int64
    assert keep.tolist() == ref.nms(boxes, scores, threshold)
    assert (np.diff(scores[keep]) <= 0).all()


def test_nms_edge_cases():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    assert nms([[0, 0, 1, 1]], [0.3], 0.5).tolist() == [0]
    same = np.array([[0, 0, 10, 10]] * 3, np.float32)
    assert nms(same, np.array([0.1, 0.9, 0.5]), 0.5).tolist() == [1]
    # two identical zero-area boxes: IoU nan never suppresses (as torchvision)
    assert nms([[1, 1, 1, 1], [1, 1, 1, 1]], [0.9, 0.8], 0.1).tolist() == [0, 1]
    with pytest.raises(InputError, match=r"nms: scores must be one number per box"):
        nms(same, [0.1, 0.2], 0.5)
    with pytest.raises(InputError, match="NaN"):
        nms(same, [0.1, np.nan, 0.2], 0.5)


def test_batched_nms_is_nms_per_class():
    rng = np.random.default_rng(0)
    boxes = random_boxes(40, 5, size=20.0)
    scores = rng.random(40)
    idxs = rng.integers(0, 3, 40)
    keep = batched_nms(boxes, scores, idxs, 0.4)
    expected = []
    for c in range(3):
        members = np.flatnonzero(idxs == c)
        expected += [members[i] for i in ref.nms(boxes[members], scores[members], 0.4)]
    assert sorted(keep.tolist()) == sorted(expected)
    assert (np.diff(scores[keep]) <= 0).all()
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).shape == (0,)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_match_reference_and_invert(weights):
    ref_boxes = random_boxes(30, 1)
    gt = random_boxes(30, 2)
    deltas = encode_boxes(ref_boxes, gt, weights)
    np.testing.assert_allclose(deltas, ref.encode(ref_boxes, gt, weights), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(decode_boxes(ref_boxes, deltas, weights), gt, atol=1e-9)
    rng = np.random.default_rng(3)
    d = rng.standard_normal((30, 4)) * 3
    d[0, 2] = 50.0                                      # clamped at log(1000 / 16)
    np.testing.assert_allclose(decode_boxes(ref_boxes, d, weights),
                               ref.decode(ref_boxes, d, weights), rtol=1e-12, atol=1e-9)


def test_decode_several_boxes_per_reference():
    r = random_boxes(5, 0)
    d = np.random.default_rng(1).standard_normal((5, 12))
    out = decode_boxes(r, d, (10, 10, 5, 5))
    for j in range(3):
        np.testing.assert_allclose(out[:, 4 * j:4 * j + 4],
                                   decode_boxes(r, d[:, 4 * j:4 * j + 4], (10, 10, 5, 5)))


def test_encode_rejects_degenerate_boxes():
    with pytest.raises(InputError, match="positive width and height"):
        encode_boxes([[0, 0, 0, 5]], [[0, 0, 3, 3]])
    with pytest.raises(InputError, match="pair up"):
        encode_boxes(random_boxes(2, 0), random_boxes(3, 0))
    assert encode_boxes(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)
    assert decode_boxes(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)


def test_clip_and_remove_small():
    boxes = np.array([[-3, -2, 5, 50], [10, 10, 11, 30], [2, 2, 9, 9]], np.float64)
    np.testing.assert_array_equal(clip_boxes(boxes, (40, 20)),
                                  [[0, 0, 5, 40], [10, 10, 11, 30], [2, 2, 9, 9]])
    assert remove_small_boxes(boxes, 2).tolist() == [0, 2]
