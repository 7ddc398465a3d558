"""draw_boxes and detection_grid on bad input (from a fuzzing pass): huge or NaN coordinates,
wrong shapes, counts, scales and canvas sizes."""

import signal
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from minicnn_detection import detection_grid, draw_boxes

BLANK = np.zeros((3, 40, 60), np.float32)


@contextmanager
def deadline(seconds):
    """Fail instead of hanging (the unclipped 1e10 box never finished)."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_draw_boxes_clips_huge_coordinates():
    with deadline(10):
        a = np.asarray(draw_boxes(BLANK, [[0, 0, 1e10, 1e10]], [1]))
        b = np.asarray(draw_boxes(BLANK, [[-1e300, 5, 1e300, 1e300]], [1], scale=2))
    assert a[0, 30].any() and a[20, 0].any()          # the top and left edges show
    assert not a[20, 30].any() and not a[39, 59].any()  # inside, and edges off the canvas: not
    assert b[10, 60].any() and not b[79, 60].any()


def test_draw_boxes_skips_non_finite_boxes():
    pic = np.asarray(draw_boxes(BLANK, [[np.nan, 0, 10, 10], [0, 0, np.inf, 5], [20, 20, 30, 30]],
                                [1, 1, 2], [0.5, 0.6, 0.7]))
    only = np.asarray(draw_boxes(BLANK, [[20, 20, 30, 30]], [2], [0.7]))
    np.testing.assert_array_equal(pic, only)


def test_draw_boxes_wants_m_by_4_boxes():
    boxes = np.array([[2, 2, 10, 10], [5, 5, 15, 15], [1, 1, 3, 3]])
    with pytest.raises(ValueError, match=r"draw_boxes: boxes must be \(M, 4\).*\(4, 3\)"):
        draw_boxes(BLANK, boxes.T)
    with pytest.raises(ValueError, match=r"draw_boxes: boxes must be \(M, 4\).*\(1, 8\)"):
        draw_boxes(BLANK, np.zeros((1, 8)))
    one = np.asarray(draw_boxes(BLANK, [2, 2, 10, 10]))
    np.testing.assert_array_equal(one, np.asarray(draw_boxes(BLANK, [[2, 2, 10, 10]])))
    assert draw_boxes(BLANK, np.zeros((0, 4))).size == (60, 40)
    assert draw_boxes(BLANK, []).size == (60, 40)


@pytest.mark.parametrize("scale", [1.5, 2.0, 0, -1, True])
def test_draw_boxes_scale_is_a_positive_int(scale):
    for image in (BLANK, Image.new("RGB", (20, 20))):
        with pytest.raises(ValueError, match="draw_boxes: scale must be a positive int"):
            draw_boxes(image, [[0, 0, 20, 20]], scale=scale)


def test_draw_boxes_refuses_a_huge_canvas():
    with pytest.raises(ValueError, match="draw_boxes: a 10000x10000 picture"):
        draw_boxes(Image.new("RGB", (20, 20)), [[0, 0, 5, 5]], scale=500)


def test_draw_boxes_negative_label_is_not_the_last_class_name():
    names = ["bg", "circle", "square"]
    named = np.asarray(draw_boxes(BLANK, [[2, 12, 30, 30]], [-1], class_names=names, scale=3))
    plain = np.asarray(draw_boxes(BLANK, [[2, 12, 30, 30]], [-1], scale=3))
    np.testing.assert_array_equal(named, plain)       # "-1", not "square"


def test_draw_boxes_wants_one_label_and_score_per_box():
    boxes = [[0, 0, 10, 10], [5, 5, 20, 20]]
    with pytest.raises(ValueError, match="draw_boxes: 1 labels for 2 boxes"):
        draw_boxes(BLANK, boxes, [1])
    with pytest.raises(ValueError, match="draw_boxes: 3 scores for 2 boxes"):
        draw_boxes(BLANK, boxes, [1, 2], [0.1, 0.2, 0.3])


def test_detection_grid_checks_its_input():
    image = np.zeros((3, 20, 20), np.float32)
    det = {"boxes": [[1, 1, 5, 5]], "scores": [0.8], "labels": [1]}
    with pytest.raises(ValueError, match="detection_grid: 1 detections for 2 images"):
        detection_grid([image, image], [det])
    with pytest.raises(ValueError, match="detection_grid: 1 targets for 2 images"):
        detection_grid([image, image], [det, det], [det])
    with pytest.raises(ValueError, match="detection_grid: 2 scores for 1 boxes"):
        detection_grid([image], [{"boxes": [[1, 1, 5, 5]], "scores": [0.8, 0.9],
                                  "labels": [1]}])
    with pytest.raises(ValueError, match=r"detection_grid: boxes must be \(M, 4\)"):
        detection_grid([image], [{"boxes": np.zeros((1, 8)), "scores": [0.8], "labels": [1]}])
    with pytest.raises(ValueError, match="detection_grid: scale must be a positive int"):
        detection_grid([image], [det], scale=1.5)
    with pytest.raises(ValueError, match="detection_grid: no images"):
        detection_grid([], [])
    with pytest.raises(ValueError, match="detection_grid: a 20008x20008 picture"):
        detection_grid([image], [det], scale=1000)
    with pytest.raises(ValueError, match="detection_grid: a 80020x80020 picture"):
        detection_grid([image] * 16, [det] * 16, scale=1000)
    huge = {"boxes": [[0, 0, 1e10, np.nan]], "scores": [0.9], "labels": [1]}
    assert detection_grid([image], [huge]).size == (68, 68)
