"""Optimiser steps on 10M float32 parameters split in a few arrays: time and memory throughput."""

import numpy as np

from minicnn import Param, optim

from ._util import data, rate

SIZES = (4_000_000, 3_000_000, 2_000_000, 1_000_000)   # 10M parameters in four arrays

# bytes moved per parameter element and step (float32): read and write of each array touched
_TRAFFIC = {"SGD": 4 * 5,    # read p, g, momentum; write p, momentum
            "Adam": 4 * 7}   # read p, g, m, v; write p, m, v


class OptimizerStep:
    params = (["SGD", "Adam"],)
    param_names = ["optimizer"]

    def setup(self, name):
        self.params_ = [Param(data((n,), seed=i)) for i, n in enumerate(SIZES)]
        for i, p in enumerate(self.params_):
            p.grad = data(p.shape, seed=100 + i) * np.float32(1e-3)
        if name == "SGD":
            self.opt = optim.SGD(self.params_, lr=1e-3, momentum=0.9)
        else:
            self.opt = optim.Adam(self.params_, lr=1e-4)
        self.opt.step()   # compile, allocate the state outside the timing

    def time_step(self, name):
        self.opt.step()

    def track_step_gbytes_per_s(self, name):
        return rate(self.opt.step, _TRAFFIC[name] * sum(SIZES)) / 1e9

    track_step_gbytes_per_s.unit = "GB/s"


class ClipGradNorm:
    def setup(self):
        self.params_ = [Param(data((n,), seed=i)) for i, n in enumerate(SIZES)]
        for i, p in enumerate(self.params_):
            p.grad = data(p.shape, seed=100 + i)
        optim.clip_grad_norm_(self.params_, 1e9)   # compile outside the timing

    def time_clip_grad_norm(self):
        optim.clip_grad_norm_(self.params_, 1e9)   # measures the norm; never rescales
