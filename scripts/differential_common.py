"""What the differential scripts share: the mismatch they report and the closeness test."""

import numpy as np


class Mismatch(Exception):
    pass


def _close(what, got, want, rtol=1e-8, atol=1e-10):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise Mismatch(f"{what}: shape {got.shape}, PyTorch {want.shape}")
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
        raise Mismatch(f"{what}: max difference {np.nanmax(np.abs(got - want)):.3g}")
