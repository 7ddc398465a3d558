"""Loop reference for dropout's counter-based mask and output (plain Python integers, float64)."""

import numpy as np

MASK32 = 0xFFFFFFFF


def lowbias32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def mask_bits(seed, j):
    """lowbias32(lowbias32(j_lo + seed_lo) ^ seed_hi ^ j_hi): the 32 bits of mask element j."""
    seed_lo, seed_hi = seed & MASK32, seed >> 32
    x = lowbias32(((j & MASK32) + seed_lo) & MASK32)
    return lowbias32(x ^ seed_hi ^ (j >> 32))


def dropout(x, p, seed, mask_shape):
    """x * keep / (1 - p) with one mask element per entry of ``mask_shape`` (a prefix of x.shape);
    element j (row-major) is kept when its bits are >= ceil(p * 2^32)."""
    threshold = min(int(np.ceil(p * 2.0 ** 32)), 2 ** 32)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        j = int(np.ravel_multi_index(idx[:len(mask_shape)], mask_shape))
        kept = mask_bits(int(seed), j) >= threshold
        out[idx] = float(x[idx]) * scale if kept else 0.0
    return out
