"""The template plugin's Swish kernels on the CPU and (when present) the GPU: time, GB/s, GFLOP/s.

The plugin is a separate distribution (``plugins/template``, package ``minicnn-swish``); this file
puts it on the path so the benchmarks run from a checkout without installing it, and registers it
in its own registry (installed or not). Forward reads x and writes y; forward + backward also
reads x and gy and writes gx (the beta gradient's per-row sums are negligible). The ``cuda``
variants are skipped on a machine without a GPU.
"""

import sys
from pathlib import Path

from minicnn.registry import Registry, set_registry

_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "template"
if str(_PLUGIN) not in sys.path:
    sys.path.insert(0, str(_PLUGIN))

from minicnn_swish import Swish, plugin  # noqa: E402

from ._util import data, rate  # noqa: E402


def _registry():
    registry = Registry(load_entry_points=False)
    registry.register(plugin, name="swish")
    return registry


def _sync(device):
    if device == "cuda":
        from numba import cuda
        cuda.synchronize()


class SwishKernels:
    params = ([(32, 64, 56, 56), (256, 1024)], [True, False], ["cpu", "cuda"])
    param_names = ["shape", "learnable", "device"]

    def setup(self, shape, learnable, device):
        self.previous = set_registry(_registry())
        self.device = device
        self.layer = Swish(shape[1], beta=1.0, learnable=learnable)
        self.x = data(shape)
        self.gy = data(shape, seed=1)
        self.nbytes = self.x.nbytes
        if device != "cpu":
            try:
                from minicnn.device import get_device
                dev = get_device(device)
            except Exception as exc:
                set_registry(self.previous)
                raise NotImplementedError(f"device '{device}' not available: {exc}") from exc
            self.layer.to(device)
            self.x, self.gy = dev.asarray(self.x), dev.asarray(self.gy)
        self._step()                  # compile and allocate outside the timing
        self.flops = self.layer.flops([shape], [shape])

    def teardown(self, shape, learnable, device):
        set_registry(self.previous)

    def _forward(self):
        self.layer(self.x)
        _sync(self.device)

    def _step(self):
        self.layer(self.x)
        self.layer.backward(self.gy)
        _sync(self.device)

    def time_forward(self, shape, learnable, device):
        self._forward()

    def time_forward_backward(self, shape, learnable, device):
        self._step()

    def track_forward_gbytes_per_s(self, shape, learnable, device):
        return rate(self._forward, 2 * self.nbytes) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"

    def track_forward_backward_gbytes_per_s(self, shape, learnable, device):
        return rate(self._step, 5 * self.nbytes) / 1e9

    track_forward_backward_gbytes_per_s.unit = "GB/s"

    def track_forward_gflops(self, shape, learnable, device):
        return rate(self._forward, self.flops) / 1e9

    track_forward_gflops.unit = "GFLOP/s"
