"""Shared helpers for the benchmarks (asv imports this module but finds no benchmarks in it)."""

import time

import numpy as np


def best_seconds(fn, repeat=5, number=1):
    """The best wall time of ``number`` calls of ``fn``, over ``repeat`` tries."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def rate(fn, work, repeat=5, number=1):
    """``work`` units (FLOPs, bytes, images) per second of ``fn``, from its best time."""
    return work / best_seconds(fn, repeat, number)


def data(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def cuda_device_or_skip():
    """The cuda device, or NotImplementedError (asv skips the benchmark): no GPU here, or numba's
    CUDA simulator, which is not timed."""
    import os
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise NotImplementedError("the CUDA simulator is not timed")
    from minicnn.device import get_device
    try:
        return get_device("cuda")
    except RuntimeError as exc:
        raise NotImplementedError(f"no CUDA GPU: {exc}") from None
