"""Compile every recorded CUDA kernel signature to PTX with ``numba.cuda.compile_ptx`` (no GPU
needed, only NVVM): catches the typing errors numba's simulator cannot see.

    python scripts/cuda_ptx.py signatures.json [--cc 8.0] [--forbid-local TEXT]
        [--require-ptx TEXT=PTX ...] [--ptxas]

``signatures.json`` is a list of ``[module, kernel name, argument types]`` as recorded by
``minicnn.cuda_device.RECORD`` during a simulated run (``scripts/gpu_check.py --record`` or
``tests/test_cuda_ptx.py`` write one). A kernel built by a factory (the tiled convolution kernels
of ``minicnn.layers.conv_tiled_cuda``, one per direction, dtype and tile) is recorded under a name
such as ``forward[float32;64,128,8,8,8]`` that its module's ``kernel_by_name`` resolves.

``--require-ptx TEXT=PTX`` fails kernels whose name contains TEXT and whose PTX lacks PTX (the
tiled convolutions' 128-bit shared loads, ``ld.shared.v4.f32``, for instance). ``--ptxas``
assembles each kernel with ``ptxas -v`` (when on PATH) and prints its registers, spills and shared
memory: what decides occupancy, readable on a machine with no GPU.

Run it WITHOUT ``NUMBA_ENABLE_CUDASIM``. Prints one line per failure and ``compiled N
signatures, F failed``; exit status 2 when NVVM is unavailable.
"""

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def numba_type(spec):
    import numpy as np
    from numba import from_dtype, types
    kind = spec[0]
    if kind == "array":
        return types.Array(from_dtype(np.dtype(spec[1])), int(spec[2]), "C")
    if kind == "scalar":
        return from_dtype(np.dtype(spec[1]))
    return {"bool": types.boolean, "int64": types.int64, "float64": types.float64}[kind]


def local_bytes(ptx):
    """Bytes of per-thread local memory a PTX kernel declares (spills, or a register block that
    did not stay in registers: slow)."""
    return sum(int(n) for n in re.findall(r"__local_depot\d+\[(\d+)\]", ptx))


def ptxas_report(ptx, cc):
    """``ptxas -v``'s resource line of a PTX text ("Used 223 registers, ..."), or None without
    ptxas."""
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        done = subprocess.run([ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", src, "-o",
                               os.path.join(tmp, "kernel.cubin")], capture_output=True, text=True)
    lines = [line.split(":", 1)[-1].strip() for line in done.stderr.splitlines()
             if "registers" in line or "spill" in line]
    return "; ".join(lines) if lines else done.stderr.strip()[-200:]


def compile_all(records, cc=(8, 0), forbid_local=None, require=(), report=None):
    """[(module, name, argument types, error or None)] for every record; with ``forbid_local`` (a
    substring of kernel names), such kernels that use local memory count as failures; with
    ``require`` ((name substring, PTX substring) pairs) such kernels whose PTX lacks the text;
    ``report(name, ptx)`` sees every compiled kernel."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise RuntimeError("compile_ptx needs the real numba.cuda: unset NUMBA_ENABLE_CUDASIM")
    from numba import cuda

    import minicnn.cuda_device  # noqa: F401 - applies the numpy row_stack shim first
    _fake_device(cc)
    out = []
    for module_name, qualname, argtypes in records:
        sig = tuple(numba_type(t) for t in argtypes)
        try:
            kernel = resolve(module_name, qualname)
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
            spilled = local_bytes(ptx)
            error = None
            if spilled and forbid_local and forbid_local in qualname:
                error = f"uses {spilled} bytes of local memory per thread"
            for name_part, ptx_part in require:
                if name_part in qualname and ptx_part not in ptx:
                    error = f"its PTX has no {ptx_part!r}"
            if report is not None:
                report(qualname, ptx)
            out.append((module_name, qualname, argtypes, error))
        except Exception as exc:   # report every failing kernel, not just the first
            out.append((module_name, qualname, argtypes, f"{type(exc).__name__}: {exc}"))
    return out


def resolve(module_name, qualname):
    """The kernel a record names: a module attribute, or a factory-built kernel the module's
    ``kernel_by_name`` rebuilds."""
    module = importlib.import_module(module_name)
    kernel = getattr(module, qualname, None)
    if kernel is None and hasattr(module, "kernel_by_name"):
        kernel = module.kernel_by_name(qualname)
    if kernel is None:
        raise LookupError(f"{module_name} has no kernel {qualname!r}")
    return kernel


def _fake_device(cc):
    """numba compiles device functions called from a kernel (builtins such as min/max on floats
    included) for "the current device", which needs a driver; without a GPU, answer with ``cc``."""
    import numba.cuda.dispatcher as dispatcher

    class FakeDevice:
        compute_capability = cc

    if hasattr(dispatcher, "get_current_device"):
        dispatcher.get_current_device = lambda: FakeDevice()


def _trivial(a):
    a[0] = 1.0


def nvvm_available(cc=(8, 0)):
    """Whether this numba.cuda can compile PTX here (NVVM, and NVRTC for numba-cuda)."""
    try:
        importlib.import_module("minicnn.cuda_device")   # numpy 2.5 needs its row_stack shim
        from numba import cuda, types
        cuda.compile_ptx(_trivial, (types.float32[::1],), cc=cc)
        return True
    except Exception:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("signatures")
    parser.add_argument("--cc", default="8.0", help="compute capability, e.g. 8.0 or 9.0")
    parser.add_argument("--forbid-local", metavar="TEXT",
                        help="fail kernels whose name contains TEXT and that use local memory")
    parser.add_argument("--require-ptx", metavar="TEXT=PTX", action="append", default=[],
                        help="fail kernels whose name contains TEXT and whose PTX lacks PTX")
    parser.add_argument("--ptxas", action="store_true",
                        help="print ptxas -v's registers and spills of every kernel")
    args = parser.parse_args(argv)
    cc = tuple(int(v) for v in args.cc.split("."))
    if not nvvm_available(cc):
        print("numba.cuda cannot compile PTX here (libNVVM or NVRTC missing)")
        return 2
    with open(args.signatures) as f:
        records = [tuple(r) for r in json.load(f)]
    require = [tuple(item.split("=", 1)) for item in args.require_ptx]

    def report(name, ptx):
        print(f"{name}: {ptxas_report(ptx, cc) or 'ptxas not found'}")

    results = compile_all(records, cc, args.forbid_local, require,
                          report if args.ptxas else None)
    failed = [r for r in results if r[3] is not None]
    for module_name, qualname, argtypes, error in failed:
        print(f"FAILED {module_name}.{qualname}{tuple(tuple(t) for t in argtypes)}: {error}")
    print(f"compiled {len(results)} signatures, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
