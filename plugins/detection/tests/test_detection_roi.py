"""RoIPool and RoIAlign: forward and backward against torchvision-faithful loop references
(:mod:`minicnn_detection.references`, which the layers' ``reference_forward`` uses too), float64
gradchecks, bad input, layouts, determinism, degenerate boxes."""

import numba
import numpy as np
import pytest
from minicnn import ConfigError, InputError, ShapeError, testing

from minicnn_detection import RoIAlign, RoIPool, roi_align, roi_pool
from minicnn_detection import references as ref
from minicnn_detection.plugin import ensure_registered

ensure_registered()


def random_rois(n_images, height, width, count, seed, scale=1.0):
    """ROIs in image coordinates (the map is height x width cells at ``scale``): ordinary boxes,
    boxes across and on the border, tiny, zero-area and inverted (x2 < x1) boxes."""
    rng = np.random.default_rng(seed)
    H, W = height / scale, width / scale
    x1 = rng.uniform(-0.3 * W, W, count)
    y1 = rng.uniform(-0.3 * H, H, count)
    x2 = x1 + rng.uniform(0, 0.9 * W, count)
    y2 = y1 + rng.uniform(0, 0.9 * H, count)
    boxes = np.stack([x1, y1, x2, y2], axis=1)
    special = np.array([[0, 0, W, H],               # the whole image, edges on the border
                         [0, 0, W - 1, H - 1],
                         [W - 2, H - 2, W + 5, H + 5],
                         [3, 3, 3, 3],              # zero area
                         [2, 1, 2, 5],              # zero width
                         [5, 5, 4.2, 6],            # inverted
                         [-10, -10, -4, -4],        # fully outside
                         [1.3, 2.4, 1.9, 2.6]])     # tiny
    boxes = np.concatenate([boxes, special])
    batch = rng.integers(0, n_images, len(boxes)).astype(np.float64)
    return np.concatenate([batch[:, None], boxes], axis=1)


CASES = [  # (N, C, H, W, output_size, spatial_scale, sampling_ratio, aligned)
    (2, 3, 7, 9, (2, 2), 1.0, -1, True),
    (1, 2, 8, 6, (3, 2), 0.5, 2, False),
    (2, 2, 5, 5, (2, 3), 0.25, -1, False),
    (3, 1, 6, 7, (1, 1), 1.0, 0, True),
    (1, 2, 9, 9, (4, 4), 0.5, 1, True),
]


def _pool_ref(output_size, scale):
    def reference(layer, inputs):
        return [ref.roi_pool(inputs[0], inputs[1], output_size, scale)[0]]
    return reference


def _align_ref(output_size, scale, sampling_ratio, aligned):
    def reference(layer, inputs):
        return [ref.roi_align(inputs[0], inputs[1], output_size, scale, sampling_ratio, aligned)]
    return reference


@pytest.mark.parametrize("case", CASES)
def test_roi_pool_forward_and_backward_match_reference(case):
    n, c, h, w, out, scale, _, _ = case
    x = testing.tie_free((n, c, h, w), seed=1, dtype=np.float64)
    rois = random_rois(n, h, w, 12, seed=2, scale=scale)
    layer = RoIPool(out, scale)
    testing.check_forward(layer, [x, rois], _pool_ref(out, scale), atol=1e-12, rtol=1e-12)
    y = layer([x, rois])
    gy = np.random.default_rng(3).standard_normal(y.shape)
    gx = layer.backward(gy)[0]
    _, arg = ref.roi_pool(x, rois, out, scale)
    np.testing.assert_allclose(gx, ref.roi_pool_backward(x.shape, rois, gy, arg), atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_roi_align_forward_and_backward_match_reference(case):
    n, c, h, w, out, scale, sr, aligned = case
    x = np.random.default_rng(1).standard_normal((n, c, h, w))
    rois = random_rois(n, h, w, 12, seed=2, scale=scale)
    layer = RoIAlign(out, scale, sr, aligned)
    testing.check_forward(layer, [x, rois], _align_ref(out, scale, sr, aligned), atol=1e-12,
                          rtol=1e-10)
    y = layer([x, rois])
    gy = np.random.default_rng(3).standard_normal(y.shape)
    gx = layer.backward(gy)[0]
    want = ref.roi_align_backward(x.shape, rois, gy, out, scale, sr, aligned)
    np.testing.assert_allclose(gx, want, atol=1e-12, rtol=1e-10)


def test_float32_matches_float64():
    x = np.random.default_rng(0).standard_normal((2, 4, 10, 10))
    rois = random_rois(2, 10, 10, 20, seed=5, scale=0.5)
    for fn in (roi_align, roi_pool):
        a = fn(x, rois, 3, 0.5)
        b = fn(x.astype(np.float32), rois, 3, 0.5)
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, atol=1e-5)


@pytest.mark.parametrize("case", CASES[:3])
def test_gradcheck(case):
    n, c, h, w, out, scale, sr, aligned = case
    x = testing.tie_free((n, c, h, w), seed=4)
    rois = random_rois(n, h, w, 6, seed=6, scale=scale).astype(np.float32)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)      # hundreds of tiny calls: thread wake-ups would dominate
    try:
        testing.gradcheck(RoIPool(out, scale), [x, rois])
        testing.gradcheck(RoIAlign(out, scale, sr, aligned), [x, rois])
    finally:
        numba.set_num_threads(previous)


def test_degenerate_boxes_have_documented_results():
    x = np.arange(2 * 6 * 6, dtype=np.float64).reshape(1, 2, 6, 6) + 1
    rois = np.array([[0, 3, 3, 3, 3], [0, 4, 4, 2, 2], [0, -20, -20, -10, -10]], np.float64)
    # aligned ROI Align: no samples in a zero-size or inverted box, zeros
    np.testing.assert_array_equal(roi_align(x, rois[:2], 2, aligned=True), 0.0)
    # without the alignment the box is at least one cell: the value around (3, 3)
    y = roi_align(x, rois[:1], 1, aligned=False, sampling_ratio=1)
    np.testing.assert_allclose(y[0, :, 0, 0], x[0, :, 3, 3] * 0.25 + x[0, :, 3, 4] * 0.25
                               + x[0, :, 4, 3] * 0.25 + x[0, :, 4, 4] * 0.25)
    # ROI pool rounds a zero-area box to one cell; a box fully outside has empty bins: 0
    np.testing.assert_array_equal(roi_pool(x, rois[:1], 1)[0, :, 0, 0], x[0, :, 3, 3])
    np.testing.assert_array_equal(roi_pool(x, rois[2:], 2), 0.0)


def test_no_rois_gives_an_empty_result():
    x = np.ones((2, 3, 5, 5), np.float32)
    for fn in (roi_align, roi_pool):
        y = fn(x, np.zeros((0, 5)), (2, 4))
        assert y.shape == (0, 3, 2, 4) and y.dtype == np.float32
        assert fn(x, [np.zeros((0, 4)), np.zeros((0, 4))], 2).shape == (0, 3, 2, 2)


def test_per_image_box_lists_are_accepted():
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    boxes = [np.array([[1, 1, 5, 5.]]), np.array([[0, 2, 7, 6.], [2, 2, 3, 3.]])]
    rois = np.array([[0, 1, 1, 5, 5], [1, 0, 2, 7, 6], [1, 2, 2, 3, 3]], np.float64)
    np.testing.assert_array_equal(roi_align(x, boxes, 2), roi_align(x, rois, 2))


def test_functional_matches_layer_and_layout_does_not_matter():
    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    rois = random_rois(2, 8, 8, 5, seed=1).astype(np.float32)
    layer = RoIAlign((2, 3), 1.0, 2, True)
    np.testing.assert_array_equal(layer([x, rois]), roi_align(x, rois, (2, 3), 1.0, 2, True))
    np.testing.assert_array_equal(RoIPool(2)([x, rois]), roi_pool(x, rois, 2))
    testing.check_noncontiguous(layer, [x, rois])
    testing.check_noncontiguous(RoIPool(2, 0.5), [x, rois])


def test_backward_is_deterministic_across_thread_counts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 20, 12, 12)).astype(np.float32)
    rois = random_rois(2, 12, 12, 64, seed=3)
    rois[:, 1:] = np.abs(rois[:, 1:]) % 10           # heavily overlapping boxes
    rois = rois.astype(np.float32)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS, 1):
            numba.set_num_threads(threads)
            for layer in (RoIAlign(3, 1.0), RoIPool(3, 1.0)):
                y = layer([x, rois])
                results.append(layer.backward(np.ones_like(y))[0].copy())
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(results[:2], results[2:4], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(results[:2], results[4:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_rois_get_no_gradient():
    x = np.random.default_rng(0).random((1, 2, 6, 6))
    rois = np.array([[0, 1, 1, 4, 4.]])
    layer = RoIAlign(2)
    layer([x, rois])
    gx, grois = layer.backward(np.ones((1, 2, 2, 2)))
    assert grois is None and gx.shape == x.shape


@pytest.mark.parametrize("make, match", [
    (lambda: RoIAlign(0), "RoIAlign: output_size"),
    (lambda: RoIAlign((2, 2, 2)), "RoIAlign: output_size"),
    (lambda: RoIPool(2, spatial_scale=0), "RoIPool: spatial_scale"),
    (lambda: RoIPool(2, spatial_scale=float("nan")), "RoIPool: spatial_scale"),
    (lambda: RoIAlign(2, sampling_ratio=1.5), "RoIAlign: sampling_ratio"),
    (lambda: RoIAlign(2, aligned="yes"), "RoIAlign: aligned"),
])
def test_bad_hyper_parameters(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_shapes_name_the_layer():
    layer = RoIAlign(2)
    with pytest.raises(ShapeError, match=r"RoIAlign.*features \(N, C, H, W\).*expected 4 axes"):
        layer([np.ones((2, 5, 5)), np.zeros((1, 5))])
    with pytest.raises(ShapeError, match=r"RoIAlign: rois must be \(K, 5\).*received shape"):
        layer([np.ones((1, 2, 5, 5)), np.zeros((3, 4))])


@pytest.mark.parametrize("fix, match", [
    ((0, 0, 2.0), r"batch index 2\.0; expected a whole number in \[0, 2\)"),
    ((1, 0, -1.0), r"batch index -1\.0"),
    ((0, 0, 0.5), r"batch index 0\.5"),
    ((2, 3, np.nan), r"rois\[2\] .* is not finite"),
])
def test_bad_rois_are_clear_errors(fix, match):
    x = np.ones((2, 1, 5, 5))
    rois = np.array([[0, 0, 0, 3, 3], [1, 1, 1, 4, 4], [0, 2, 2, 3, 3]], np.float64)
    rois[fix[0], fix[1]] = fix[2]
    for layer in (RoIAlign(2), RoIPool(2)):
        with pytest.raises(InputError, match=rf"\({layer.type_name}\): .*{match}"):
            layer([x, rois])
