"""Compile every recorded CUDA kernel signature to PTX with ``numba.cuda.compile_ptx`` (no GPU
needed, only NVVM): catches the typing errors numba's simulator cannot see.

    python scripts/cuda_ptx.py signatures.json [--cc 8.0] [--forbid-local TEXT]
        [--require-ptx TEXT=PTX ...] [--ptxas] [--jobs N]

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


def compile_all(records, cc=(8, 0), forbid_local=None, require=(), ptxas=False, jobs=1):
    """[(module, name, argument types, error or None, ptxas line or None)] for every record, in
    order; with ``forbid_local`` (a substring of kernel names), such kernels that use local memory
    count as failures; with ``require`` ((name substring, PTX substring) pairs) such kernels whose
    PTX lacks the text; with ``ptxas``, each kernel's ``ptxas -v`` resources. ``jobs`` > 1 shares
    the records among that many processes (each signature takes NVVM about a second)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise RuntimeError("compile_ptx needs the real numba.cuda: unset NUMBA_ENABLE_CUDASIM")
    options = (cc, forbid_local, tuple(require), ptxas)
    jobs = max(1, min(jobs, len(records)))
    if jobs == 1:
        return _compile_serial(records, *options)
    import concurrent.futures
    import multiprocessing
    # interleaved shares: the costly tiled kernels are recorded next to each other
    shares = [records[i::jobs] for i in range(jobs)]
    context = multiprocessing.get_context("spawn")    # no fork of a process that loaded LLVM
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        done = list(pool.map(_compile_serial, shares, *([option] * jobs for option in options)))
    out = [None] * len(records)
    for i, share in enumerate(done):
        out[i::jobs] = share
    return out


def _compile_serial(records, cc, forbid_local, require, ptxas):
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
            resources = (ptxas_report(ptx, cc) or "ptxas not found") if ptxas else None
            out.append((module_name, qualname, argtypes, error, resources))
        except Exception as exc:   # report every failing kernel, not just the first
            out.append((module_name, qualname, argtypes, f"{type(exc).__name__}: {exc}", None))
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
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8),
                        help="processes compiling at once (default: the CPU count, at most 8)")
    args = parser.parse_args(argv)
    cc = tuple(int(v) for v in args.cc.split("."))
    if not nvvm_available(cc):
        print("numba.cuda cannot compile PTX here (libNVVM or NVRTC missing)")
        return 2
    with open(args.signatures) as f:
        records = [tuple(r) for r in json.load(f)]
    require = [tuple(item.split("=", 1)) for item in args.require_ptx]
    results = compile_all(records, cc, args.forbid_local, require, args.ptxas, args.jobs)
    if args.ptxas:
        for _, qualname, _, _, resources in results:
            print(f"{qualname}: {resources}")
    failed = [r for r in results if r[3] is not None]
    for module_name, qualname, argtypes, error, _ in failed:
        print(f"FAILED {module_name}.{qualname}{tuple(tuple(t) for t in argtypes)}: {error}")
    print(f"compiled {len(results)} signatures, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
