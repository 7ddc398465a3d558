"""ArrayDataset, Subset, random_split, the Dataset base class and the plugin registration."""

import numpy as np
import pytest

import minicnn
from minicnn.data import ArrayDataset, Dataset, Subset, random_split
from minicnn.registry import Registry


def _arrays(n=10, dtype=np.float32):
    x = np.arange(n * 2 * 3 * 3).reshape(n, 2, 3, 3)
    return x.astype(dtype), np.arange(n) % 3


def test_array_dataset_float_and_uint8():
    x, y = _arrays()
    ds = ArrayDataset(x / 1000, y)
    image, label = ds[4]
    assert image.dtype == np.float32 and image.shape == (2, 3, 3)
    np.testing.assert_array_equal(image, (x[4] / 1000).astype(np.float32))
    assert label == 1 and isinstance(label, int)
    assert ds[-1][1] == int(y[-1]) and len(ds) == 10
    u8 = ArrayDataset((x % 256).astype(np.uint8), y)
    np.testing.assert_array_equal(u8[2][0], (x[2] % 256).astype(np.float32) / np.float32(255))
    xb, yb = u8.get_batch([3, 1])
    assert xb.dtype == np.float32 and xb.flags.c_contiguous and yb.dtype == np.int64
    np.testing.assert_array_equal(xb[1], u8[1][0])
    assert yb.tolist() == [int(y[3]), int(y[1])]


def test_array_dataset_validation():
    x, y = _arrays()
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        ArrayDataset(x, y[:9])
    with pytest.raises(ValueError, match="labels must be a 1-D integer"):
        ArrayDataset(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ArrayDataset(np.zeros(3), np.zeros(3, int))
    with pytest.raises(TypeError, match="transform"):
        ArrayDataset(x, y, transform="flip")
    ds = ArrayDataset(x, y)
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    with pytest.raises(TypeError, match="integers"):
        ds[1.5]


@pytest.mark.parametrize("result,received", [(None, "dtype object, shape ()"),
                                             ("ab", "dtype <U2, shape ()"),
                                             (np.float32(1), "dtype float32, shape ()")])
def test_a_transform_that_returns_no_image_is_named(result, received):
    x, y = _arrays()
    ds = ArrayDataset(x, y, transform=lambda image, rng: result)
    with pytest.raises(minicnn.InputError, match=r"ArrayDataset: sample 0 .*not an image array of "
                                                 r"numbers \(it has " + received.replace("(", r"\(")
                                                 .replace(")", r"\)")):
        ds.get_batch([0, 1])


def test_transform_gets_a_reproducible_generator():
    x, y = _arrays()
    seen = []

    def noise(image, rng):
        seen.append(rng)
        return image + rng.random()

    ds = ArrayDataset(x, y, transform=noise)
    a, b = ds[3][0], ds[3][0]
    np.testing.assert_array_equal(a, b)                   # same index, same draw
    assert not np.array_equal(a - x[3], ds[4][0] - x[4])  # another index, another draw
    assert isinstance(seen[0], np.random.Generator)
    explicit = ds.get(3, np.random.default_rng(123))[0]
    np.testing.assert_allclose(explicit - x[3], np.random.default_rng(123).random(), atol=1e-5)


def test_subset_and_nesting():
    x, y = _arrays()
    ds = ArrayDataset(x, y)
    sub = Subset(ds, [7, 2, -1])
    assert len(sub) == 3
    np.testing.assert_array_equal(sub[0][0], x[7])
    np.testing.assert_array_equal(sub[2][0], x[9])
    inner = Subset(sub, [2, 0])
    np.testing.assert_array_equal(inner[0][0], x[9])
    xb, yb = inner.get_batch([0, 1])
    np.testing.assert_array_equal(xb, x[[9, 7]])
    with pytest.raises(IndexError):
        Subset(ds, [10])
    with pytest.raises(TypeError):
        Subset(ds, [0.5])


def test_random_split():
    x, y = _arrays(20)
    ds = ArrayDataset(x, y)
    a, b = random_split(ds, [15, 5], seed=3)
    assert len(a) == 15 and len(b) == 5
    together = np.concatenate([a.indices, b.indices])
    assert sorted(together.tolist()) == list(range(20))
    a2, _ = random_split(ds, [15, 5], seed=3)
    np.testing.assert_array_equal(a.indices, a2.indices)
    a3, _ = random_split(ds, [15, 5], seed=4)
    assert not np.array_equal(a.indices, a3.indices)
    parts = random_split(ds, [0.5, 0.3, 0.2], seed=0)
    assert [len(p) for p in parts] == [10, 6, 4]
    assert [len(p) for p in random_split(ArrayDataset(*_arrays(7)), [0.5, 0.5], seed=0)] == [4, 3]
    with pytest.raises(ValueError, match="sum to"):
        random_split(ds, [10, 5], seed=0)
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.2], seed=0)


def test_random_split_without_seed_follows_manual_seed():
    ds = ArrayDataset(*_arrays(30))
    minicnn.manual_seed(42)
    first = random_split(ds, [20, 10])[0].indices
    minicnn.manual_seed(42)
    np.testing.assert_array_equal(random_split(ds, [20, 10])[0].indices, first)


def test_dataset_subclasses():
    class Squares(Dataset):
        def __len__(self):
            return 4

        def load(self, index):
            return np.full((1, 2, 2), index * index, np.float32), index

    class Legacy(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return np.zeros((1, 1, 1), np.float32), index

    sq = Squares()
    assert sq[3][0][0, 0, 0] == 9 and sq[-1][1] == 3
    assert [label for _, label in sq] == [0, 1, 2, 3]
    x, y = sq.get_batch([1, 2])
    assert x.shape == (2, 1, 2, 2) and y.tolist() == [1, 2]
    assert Legacy().get(1, np.random.default_rng(0))[1] == 1
    with pytest.raises(NotImplementedError, match="load"):
        type("Empty", (Dataset,), {"__len__": lambda self: 1})()[0]


def test_plugin_registers_the_datasets():
    registry = Registry(load_entry_points=False)
    names = {"shapes", "mnist", "cifar10", "image_folder"}
    assert names <= set(registry.datasets)
    for name in names:
        assert registry.datasets[name][1] == "minicnn.data.plugin"
    shapes = registry.datasets["shapes"][0](n=12, seed=1)
    assert len(shapes) == 12 and shapes[0][0].shape == (1, 28, 28)
