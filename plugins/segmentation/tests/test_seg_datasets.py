"""SegShapes (determinism, ranges, ignore borders) and batching with minicnn's DataLoader."""

import numpy as np
import pytest
from minicnn.data import DataLoader, Subset
from PIL import Image, ImageFilter

from minicnn_segmentation import (
    SHAPE_CLASSES,
    RandomHorizontalFlip,
    SegShapes,
    as_mask_dataset,
    make_loader,
)


def test_samples_types_and_ranges():
    ds = SegShapes(12, size=32, num_classes=4, seed=3)
    assert len(ds) == 12 and ds.classes == SHAPE_CLASSES[:4]
    image, mask = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    assert mask.shape == (32, 32) and mask.dtype == np.int64
    x, y = ds.arrays()
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) <= {0, 1, 2, 3}
    assert set(np.unique(y)) == {0, 1, 2, 3}     # 12 images with 1 to 3 shapes: every class
    assert (y == 0).mean() > 0.5                  # mostly background, every image has a shape
    assert all((y[i] > 0).any() for i in range(12))


def test_deterministic_by_seed_and_independent_of_n():
    a = SegShapes(6, size=32, seed=5, noise=0.05)
    b = SegShapes(6, size=32, seed=5, noise=0.05)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    longer = SegShapes(9, size=32, seed=5, noise=0.05)
    np.testing.assert_array_equal(longer.images[:6], a.images)     # sample i depends on (seed, i)
    other = SegShapes(6, size=32, seed=6, noise=0.05)
    assert not np.array_equal(other.masks, a.masks)


def test_more_classes_and_validation():
    ds = SegShapes(40, size=32, num_classes=7, seed=0)
    assert set(np.unique(ds.masks)) == set(range(7))
    for bad in (dict(n=0), dict(size=4), dict(num_classes=1), dict(num_classes=8),
                dict(min_scale=0.3, max_scale=0.2), dict(ignore_border=-1), dict(seed=-1)):
        with pytest.raises(ValueError, match="SegShapes"):
            SegShapes(**{"n": 2, **bad})


def test_ignore_border_marks_only_class_boundaries():
    plain = SegShapes(8, size=32, seed=2).masks
    bordered = SegShapes(8, size=32, seed=2, ignore_border=1).masks
    ignored = bordered == 255
    assert ignored.any()
    np.testing.assert_array_equal(bordered[~ignored], plain[~ignored])
    for m, ign in zip(plain, ignored, strict=True):
        # a pixel is ignored iff its 3x3 neighbourhood in the plain mask holds two classes
        image = Image.fromarray(m.astype(np.uint8))
        mixed = (np.asarray(image.filter(ImageFilter.MaxFilter(3)))
                 != np.asarray(image.filter(ImageFilter.MinFilter(3))))
        np.testing.assert_array_equal(ign, mixed)


def test_shapes_are_visible_against_the_background():
    # the mean colour inside each shape differs from the mean colour of the background
    x, y = SegShapes(20, size=32, seed=1, noise=0.0).arrays()
    for image, mask in zip(x, y, strict=True):
        for cls in np.unique(mask[mask > 0]):
            inside = image[:, mask == cls].mean(axis=1)
            outside = image[:, mask == 0].mean(axis=1)
            assert np.abs(inside - outside).max() > 0.05


def test_stock_dataloader_batches_masks():
    ds = SegShapes(10, size=32, seed=0)
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=1)
    batches = list(loader)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (4, 32, 32) and y.dtype == np.int64
    order = loader.batch_indices(0)[0]
    np.testing.assert_array_equal(y, ds.masks[order])
    # Subsets of a MaskDataset batch through the parent's get_batch
    sub = Subset(ds, [3, 1])
    xs, ys = next(iter(DataLoader(sub, batch_size=2)))
    np.testing.assert_array_equal(ys, ds.masks[[3, 1]])


def test_plain_sequences_need_as_mask_dataset():
    ds = SegShapes(4, size=16, seed=0)
    pairs = [ds[i] for i in range(4)]
    with pytest.raises(TypeError, match="label must be an integer"):
        next(iter(DataLoader(pairs, batch_size=2)))      # the gap: (N,) int labels only
    x, y = next(iter(make_loader(pairs, batch_size=4)))
    np.testing.assert_array_equal(y, ds.masks)
    np.testing.assert_allclose(x, ds.images / 255.0, atol=1e-6)


def test_joint_flip_moves_mask_with_image():
    ds = SegShapes(6, size=16, seed=0, transform=RandomHorizontalFlip(p=1.0))
    plain = SegShapes(6, size=16, seed=0)
    x, y = next(iter(DataLoader(ds, batch_size=6, seed=0)))
    np.testing.assert_array_equal(y, plain.masks[:, :, ::-1])
    np.testing.assert_allclose(x, plain.images[..., ::-1] / 255.0, atol=1e-6)
    flip = as_mask_dataset([plain[0]], transform=RandomHorizontalFlip(p=0.0))
    np.testing.assert_array_equal(flip[0][1], plain.masks[0])


def test_batches_of_different_sizes_are_refused():
    a, b = SegShapes(1, size=16, seed=0)[0], SegShapes(1, size=24, seed=0)[0]
    with pytest.raises(ValueError, match="give the dataset a size"):
        next(iter(make_loader([a, b], batch_size=2)))
