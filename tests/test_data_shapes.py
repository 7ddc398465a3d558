"""The generated Shapes dataset: determinism, balance, value ranges, and not linearly easy."""

import numpy as np
import pytest

from minicnn.data import Shapes
from minicnn.data.generated import CLASSES, generate_shapes


def test_same_seed_bit_identical_without_the_cache():
    a_x, a_y = generate_shapes(300, seed=5)
    b_x, b_y = generate_shapes(300, seed=5)
    np.testing.assert_array_equal(a_x, b_x)
    np.testing.assert_array_equal(a_y, b_y)
    ds1, ds2 = Shapes(300, seed=5), Shapes(300, seed=5)
    np.testing.assert_array_equal(ds1.images, a_x)
    np.testing.assert_array_equal(ds2[17][0], ds1[17][0])


def test_different_seed_or_split_differs():
    x0, y0 = generate_shapes(200, seed=0)
    x1, y1 = generate_shapes(200, seed=1)
    xt, _ = generate_shapes(200, seed=0, train=False)
    assert not np.array_equal(x0, x1) and not np.array_equal(y0, y1)
    assert not np.array_equal(x0, xt)
    # not merely a permutation of the same images
    sums0, sums1 = np.sort(x0.reshape(200, -1).sum(1)), np.sort(x1.reshape(200, -1).sum(1))
    assert not np.array_equal(sums0, sums1)


@pytest.mark.parametrize("n,num_classes", [(1003, 10), (50, 4)])
def test_class_balance(n, num_classes):
    ds = Shapes(n, seed=2, num_classes=num_classes)
    counts = np.bincount(ds.labels, minlength=num_classes)
    assert len(counts) == num_classes and counts.max() - counts.min() <= 1
    assert ds.classes == CLASSES[:num_classes]
    assert not np.array_equal(ds.labels, np.arange(n) % num_classes)    # shuffled, not cyclic


def test_samples_shapes_and_ranges():
    ds = Shapes(64, size=32, channels=3, seed=0)
    image, label = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    assert isinstance(label, int) and 0 <= label < 10
    x, y = ds.arrays()
    assert x.shape == (64, 3, 32, 32) and y.dtype == np.int64
    assert 0 <= x.min() and x.max() <= 1
    # every image shows a shape: bright foreground pixels over a darker background
    gray = x.mean(axis=1).reshape(64, -1)
    assert (np.percentile(gray, 99, axis=1) - np.percentile(gray, 25, axis=1) > 0.2).all()


def test_noise_free_shapes_are_centred_in_the_frame():
    x, y = generate_shapes(200, seed=3, noise=0.0)
    assert x.dtype == np.uint8
    # no shape touches the border: the outermost ring of pixels is pure background
    border = np.concatenate([x[:, 0, 0], x[:, 0, -1], x[:, 0, :, 0], x[:, 0, :, -1]], axis=1)
    assert (border.max(axis=1) == border.min(axis=1)).all()


def test_linear_classifier_stays_well_below_a_cnn():
    """Ridge regression on pixels (the best linear fit, in closed form) must stay well below the
    >95% that LeNet-5 reaches, yet far above chance: the task is learnable but not linear."""
    xtr, ytr = generate_shapes(2000, seed=11)
    xte, yte = generate_shapes(1000, seed=11, train=False)

    def features(x):
        f = x.reshape(len(x), -1).astype(np.float64) / 255
        return np.hstack([f, np.ones((len(f), 1))])

    a, b = features(xtr), features(xte)
    gram, rhs = a.T @ a, a.T @ np.eye(10)[ytr]
    best = 0.0
    for lam in (1.0, 10.0, 100.0):
        w = np.linalg.solve(gram + lam * np.eye(len(gram)), rhs)
        best = max(best, float((np.argmax(b @ w, axis=1) == yte).mean()))
    assert 0.3 < best < 0.85, best


def test_validation():
    for kwargs, match in [({"n": 0}, "n must"), ({"size": 4}, "size"),
                          ({"channels": 2}, "channels"),
                          ({"num_classes": 11}, "num_classes"), ({"num_classes": 1}, "num_classes"),
                          ({"max_rotation": 45}, "max_rotation"), ({"noise": -1}, "noise"),
                          ({"seed": -3}, "seed")]:
        with pytest.raises(ValueError, match=match):
            Shapes(**{"n": 10, **kwargs})
    with pytest.raises(TypeError, match="seed"):
        Shapes(10, seed=1.5)


def test_cached_arrays_are_read_only():
    ds = Shapes(20, seed=9)
    assert Shapes(20, seed=9).images is ds.images
    with pytest.raises(ValueError):
        ds.images[0, 0, 0, 0] = 1
    image, _ = ds[0]
    image += 1                                      # samples are copies: the cache is untouched
    assert ds[0][0].max() <= 1


# -- minicnn.data.polygons: the unit polygons Shapes and the plugins' scene generators draw -------

def test_unit_polygons_have_the_documented_geometry():
    from minicnn.data.polygons import ngon, rect, star
    tri = ngon(3)
    np.testing.assert_allclose(np.hypot(*tri.T), 1.0)
    np.testing.assert_allclose(tri[0], [0.0, -1.0], atol=1e-12)       # first vertex up (y down)
    np.testing.assert_allclose(np.hypot(*ngon(6, radius=0.5).T), 0.5)
    box = rect(0.5, 0.25)
    np.testing.assert_array_equal(box, [[-0.5, -0.25], [0.5, -0.25], [0.5, 0.25], [-0.5, 0.25]])
    turned = rect(0.5, 0.25, degrees=90)                               # a quarter turn
    np.testing.assert_allclose(turned, [[0.25, -0.5], [0.25, 0.5], [-0.25, 0.5], [-0.25, -0.5]],
                               atol=1e-12)
    radii = np.hypot(*star(points=4, inner=0.3).T)
    np.testing.assert_allclose(radii, [1.0, 0.3] * 4)
