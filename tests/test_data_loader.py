"""DataLoader: order, reproducibility, batching, prefetching threads, errors."""

import gc
import threading
import time
import traceback

import numpy as np
import pytest

import minicnn
from minicnn.data import ArrayDataset, DataLoader, Subset
from minicnn.data import transforms as T


def _dataset(n=10, transform=None):
    x = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32)
    return ArrayDataset(x, np.arange(n) % 4, transform=transform)


def _ids(batches):
    return [b[0][:, 0, 0, 0].astype(int).tolist() for b in batches]


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("minicnn-data")]


def _wait_no_threads(timeout=5.0):
    end = time.monotonic() + timeout
    while _prefetch_threads() and time.monotonic() < end:
        gc.collect()
        time.sleep(0.02)
    return _prefetch_threads()


@pytest.mark.parametrize("prefetch,workers", [(0, 0), (2, 0), (1, 2)])
def test_len_order_and_drop_last(prefetch, workers):
    ds = _dataset(10)
    loader = DataLoader(ds, batch_size=3, seed=0, prefetch=prefetch, num_workers=workers)
    assert len(loader) == 4
    batches = list(loader)
    assert _ids(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    x, y = batches[0]
    assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == (3, 1, 2, 2)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2]
    dropped = DataLoader(ds, batch_size=3, drop_last=True, seed=0, prefetch=prefetch,
                         num_workers=workers)
    assert len(dropped) == 3 and _ids(dropped) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(DataLoader(ds, batch_size=20, drop_last=True)) == 0
    assert list(DataLoader(ds, batch_size=20, drop_last=True)) == []


def test_shuffle_per_epoch_is_reproducible():
    ds = _dataset(12)
    a = DataLoader(ds, batch_size=5, shuffle=True, seed=7)
    epoch0, epoch1 = _ids(a), _ids(a)
    flat0 = sum(epoch0, [])
    assert sorted(flat0) == list(range(12)) and flat0 != list(range(12))
    assert epoch0 != epoch1                                      # a new order each epoch
    b = DataLoader(ds, batch_size=5, shuffle=True, seed=7, prefetch=0)
    assert _ids(b) == epoch0 and _ids(b) == epoch1               # same seed, same epochs
    b.set_epoch(1)
    assert _ids(b) == epoch1
    assert _ids(DataLoader(ds, batch_size=5, shuffle=True, seed=8)) != epoch0
    assert b.batch_indices(0)[0].tolist() == epoch0[0]


def test_augmented_batches_are_bit_identical_across_prefetch_and_workers():
    aug = T.Compose([T.RandomCrop(2, padding=1), T.RandomHorizontalFlip(), T.ColorJitter(0.5)])
    rng = np.random.default_rng(0)
    ds = ArrayDataset(rng.random((23, 3, 2, 2), dtype=np.float32), np.arange(23) % 3)
    runs = []
    for prefetch, workers, batch_size in [(0, 0, 4), (3, 0, 4), (2, 2, 4), (0, 0, 23)]:
        loader = DataLoader(ds, batch_size=batch_size, shuffle=True, seed=5, transform=aug,
                            prefetch=prefetch, num_workers=workers)
        loader.set_epoch(2)
        x = np.concatenate([b[0] for b in loader])
        order = np.concatenate(loader.batch_indices(2))
        runs.append(x[np.argsort(order)])                        # by dataset index
    for other in runs[1:]:
        np.testing.assert_array_equal(other, runs[0])
    # ... and the augmentation really is random: another epoch differs
    loader = DataLoader(ds, batch_size=23, seed=5, transform=aug)
    assert not np.array_equal(next(iter(loader))[0], next(iter(loader))[0])


def test_dataset_and_loader_transforms_share_the_sample_generator():
    calls = []

    def record(tag):
        def transform(image, rng):
            calls.append((tag, int(image[0, 0, 0]), rng, rng.random()))
            return image
        return transform

    ds = _dataset(3, transform=record("dataset"))
    loader = DataLoader(Subset(ds, [2, 0]), batch_size=2, seed=1, transform=record("loader"))
    next(iter(loader))
    for sample in (2, 0):
        (first, _, rng_a, draw_a), (second, _, rng_b, draw_b) = [c for c in calls if c[1] == sample]
        assert (first, second) == ("dataset", "loader")     # the dataset's transform draws first
        assert rng_a is rng_b and draw_a != draw_b           # ... then the loader's, same stream
    streams = {id(c[2]) for c in calls}
    assert len(streams) == 2                                  # one generator per sample


def test_duck_typed_dataset():
    class Plain:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), i, dtype=np.float64), np.int32(i)

    loader = DataLoader(Plain(), batch_size=2, seed=0, transform=T.RandomHorizontalFlip(1.0))
    batches = list(loader)
    assert _ids(batches) == [[0, 1], [2, 3], [4]]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64


class _Failing:
    def __init__(self, bad):
        self.bad = bad

    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == self.bad:
            raise KeyError(f"sample {i} is broken")
        return np.zeros((1, 1, 1), np.float32), 0


@pytest.mark.parametrize("prefetch,workers", [(0, 0), (2, 0), (2, 2)])
def test_exception_reraised_with_original_traceback(prefetch, workers):
    loader = DataLoader(_Failing(13), batch_size=4, seed=0, prefetch=prefetch,
                        num_workers=workers)
    seen = 0
    with pytest.raises(KeyError, match="sample 13 is broken") as info:
        for _ in loader:
            seen += 1
    assert seen == 3
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "__getitem__" in frames                               # where it really happened
    assert not _wait_no_threads()


def test_early_break_stops_the_thread():
    ds = _dataset(200)
    loader = DataLoader(ds, batch_size=2, seed=0, prefetch=2)
    for k, _ in enumerate(loader):
        if k == 1:
            break
    assert not _wait_no_threads(), "the prefetch thread outlived the loop"
    it = iter(DataLoader(ds, batch_size=2, seed=0, prefetch=2, num_workers=2))
    next(it)
    it.close()
    assert not _wait_no_threads()
    unused = iter(loader)                                     # dropped before its first batch
    del unused
    assert not _wait_no_threads()


def test_unseeded_loader_follows_manual_seed():
    minicnn.manual_seed(3)
    a = DataLoader(_dataset(), shuffle=True)
    minicnn.manual_seed(3)
    b = DataLoader(_dataset(), shuffle=True)
    assert a.seed == b.seed and _ids(a) == _ids(b)


def test_validation():
    ds = _dataset()
    for kwargs in ({"batch_size": 0}, {"batch_size": 2.5}, {"prefetch": -1},
                   {"num_workers": -2}, {"batch_size": True}):
        with pytest.raises(ValueError, match="DataLoader"):
            DataLoader(ds, **kwargs)
    with pytest.raises(TypeError, match="transform"):
        DataLoader(ds, transform=3)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(42)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(ds, seed=-1)
    with pytest.raises(ValueError, match="epoch"):
        DataLoader(ds).set_epoch(-1)
