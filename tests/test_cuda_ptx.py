"""Every CUDA kernel signature the layer and optimiser tests launch also compiles to PTX with
``numba.cuda.compile_ptx`` (no GPU needed, only NVVM): the simulator runs kernels as Python and
misses typing errors. The tiled convolution kernels are compiled at their real tile sizes (float32)
and must keep their register blocks out of local memory and read them with 128-bit shared loads.
Skips when NVVM is not installed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import Param, optim, testing

from .cuda_sim import cuda_or_skip, small_launches  # noqa: F401 - the fixture is autouse
from .test_cuda_layers import CASES, CHUNKED_CONVS, build
from .test_cuda_tiled import record_tiled_launches

cuda_device = cuda_or_skip()
from minicnn.layers import conv_tiled_cuda as tiled  # noqa: E402 - after the simulator choice

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cuda_ptx.py"


def _record():
    cuda_device.RECORD = set()
    try:
        for case_id, _, _ in CASES:
            module, inputs = build(case_id)
            testing.check_parity(module, inputs, device="cuda", atol=1e-3, rtol=1e-3)
        dev = cuda_device.CUDADevice()
        for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                     lambda p: optim.Adam(p, lr=0.1)):
            p = Param(dev.asarray(np.ones(3, np.float32)))
            p.grad = dev.asarray(np.ones(3, np.float32))
            make([p]).step()
            optim.clip_grad_norm_([p], 0.1)
        for dtype in (np.float32, np.float64):    # the dtype gradchecks run in
            layer = build("conv2d")[0].to("cuda").astype(dtype)
            layer(np.ones((1, 2, 3, 3), dtype))
            layer.backward(np.ones((1, 2, 2, 2), dtype))
            _, make, shape = CHUNKED_CONVS[0]       # a weight gradient summed in chunks
            layer = make().to("cuda").astype(dtype)
            y = layer(np.ones(shape, dtype))
            layer.backward(np.ones(y.shape, dtype))
        return sorted(set(cuda_device.RECORD) | set(record_tiled_launches()))
    finally:
        cuda_device.RECORD = None


def test_every_launched_kernel_compiles_to_ptx(tmp_path):
    records = _record()
    assert len(records) > 40
    path = tmp_path / "signatures.json"
    path.write_text(json.dumps([list(r) for r in records]))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    # the tiled convolutions at the real tiles read their register groups as 128-bit shared loads
    vector = []
    for tile in tiled.all_tiles():
        vector += ["--require-ptx", "[float32;" + ",".join(map(str, tile)) + "]=ld.shared.v4.f32"]
    # batch norm's last block of a channel merges: a fence before the integer count it takes
    merge = ["--require-ptx", "batchnorm_partial=membar.gl", "--require-ptx",
             "batchnorm_partial=atom.global.add"]
    result = subprocess.run([sys.executable, str(SCRIPT), str(path), "--forbid-local",
                             "[float32;", *vector, *merge],
                            capture_output=True, text=True, env=env, timeout=600)
    if result.returncode == 2:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
