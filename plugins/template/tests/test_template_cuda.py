"""The GPU kernels under the CUDA simulator, against the CPU kernel.

The simulator must be switched on before numba.cuda is imported, so each check runs in a fresh
process (``NUMBA_ENABLE_CUDASIM=1``), on tiny shapes with few threads per block (minicnn's
``cuda_device.set_launch``, which the plugin's launches follow) so that the grid has several
blocks and the beta reduction runs its whole tree, for a power of two and for an odd-sized tree.
The first checks that the GPU kernel is registered when the device is enabled
(``minicnn_device_kernels``), then calls the kernel class directly on numba device arrays; the
second runs the conformance suite on the registered plugin, whose ``cuda`` check compares whole
forward and backward passes through minicnn's executor on both devices.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import config
    import minicnn
    from minicnn import testing
    from minicnn.device import get_device
    from minicnn.registry import Registry, set_registry
    from minicnn_swish import Swish, plugin

    assert config.ENABLE_CUDASIM
    registry = Registry(load_entry_points=False)
    registry.register(plugin, name="swish")
    set_registry(registry)
    assert registry.kernel("Swish", "cuda") is None
    get_device("cuda")                    # minicnn's CUDA device sets numba.cuda up first
    registry.enable_device("cuda")        # what model.to("cuda") does: the device hooks run
    from minicnn_swish import swish_cuda
    from numba import cuda
    assert isinstance(registry.kernel("Swish", "cuda"), swish_cuda.SwishCUDA)
    assert registry.devices_for("Swish") == ["cpu", "cuda"]
    from minicnn import cuda_device
    kernel = swish_cuda.SwishCUDA()
    for threads, dtype, tol in ((4, np.float64, 1e-12), (4, np.float32, 1e-5),
                                (6, np.float64, 1e-12)):
        cuda_device.set_launch(threads_per_block=threads, max_blocks=2)
        layer = Swish(2, beta=(0.5, 2.0)).astype(dtype)
        x = testing.tie_free((3, 2, 5), seed=1, high=3.0, dtype=dtype)
        gy = testing.tie_free((3, 2, 5), seed=2, dtype=dtype)
        y_cpu = layer(x).copy()
        gx_cpu = layer.backward(gy).copy()
        gbeta_cpu = layer.beta.grad.copy()

        gpu_layer = Swish(2, beta=(0.5, 2.0)).astype(dtype)
        gpu_layer.beta.data = cuda.to_device(layer.beta.data)
        d_x, d_gy = cuda.to_device(x), cuda.to_device(gy)
        d_y = cuda.device_array(x.shape, dtype)
        d_gx = cuda.device_array(x.shape, dtype)
        d_gbeta = cuda.device_array((2,), dtype)
        kernel.forward(gpu_layer, [d_x], [d_y], {})
        kernel.backward(gpu_layer, [d_x], [d_y], [d_gy], [d_gx], {}, {"beta": d_gbeta})
        np.testing.assert_allclose(d_y.copy_to_host(), y_cpu, rtol=tol, atol=tol)
        np.testing.assert_allclose(d_gx.copy_to_host(), gx_cpu, rtol=tol, atol=tol)
        np.testing.assert_allclose(d_gbeta.copy_to_host(), gbeta_cpu, rtol=tol, atol=tol)

        # gradients nobody needs are skipped: a frozen beta, an unneeded input gradient
        d_gx2 = cuda.to_device(np.full(x.shape, 7, dtype))
        kernel.backward(gpu_layer, [d_x], [d_y], [d_gy], [d_gx2], {}, {"beta": None})
        np.testing.assert_allclose(d_gx2.copy_to_host(), gx_cpu, rtol=tol, atol=tol)
        d_gbeta2 = cuda.to_device(np.full(2, 7, dtype))
        kernel.backward(gpu_layer, [d_x], [d_y], [d_gy], [None], {}, {"beta": d_gbeta2})
        np.testing.assert_allclose(d_gbeta2.copy_to_host(), gbeta_cpu, rtol=tol, atol=tol)

    # the beta reduction's shared array holds MAX_THREADS partial sums: a larger block is refused
    cuda_device.set_launch(threads_per_block=swish_cuda.MAX_THREADS + 1)
    try:
        kernel.backward(gpu_layer, [d_x], [d_y], [d_gy], [None], {}, {"beta": d_gbeta2})
    except ValueError as exc:
        assert f"at most {swish_cuda.MAX_THREADS} threads per block" in str(exc), exc
    else:
        raise AssertionError("a block larger than MAX_THREADS was accepted")
    print("simulated GPU kernels match the CPU kernel")
""")


def test_gpu_kernels_match_the_cpu_kernel_in_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", MINICNN_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "simulated GPU kernels match the CPU kernel" in done.stdout


SUITE = textwrap.dedent("""
    import minicnn.cuda_device
    from minicnn import conformance
    from minicnn.registry import Registry
    from minicnn_swish import plugin

    minicnn.cuda_device.set_launch(threads_per_block=4)
    registry = Registry(load_entry_points=False)
    registry.register(plugin, name="swish")
    report = conformance.check_plugin("swish", registry)
    print(report.format(verbose=True))
    report.assert_ok(strict=True)
    print("conformance with the cuda kernel: ok")
""")


def test_registered_gpu_kernel_passes_the_conformance_suite_in_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", MINICNN_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", SUITE], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "conformance with the cuda kernel: ok" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("Swish "))
    assert row.split()[3:] == ["cpu,cuda"] + ["ok"] * 9
