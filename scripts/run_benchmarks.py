"""Run asv benchmark classes directly, without asv: for a machine where asv is not installed (the
GPU machine has no network) or for a quick look at a few numbers.

    python scripts/run_benchmarks.py bench_cuda                  # every class of one file
    python scripts/run_benchmarks.py bench_detection RoIOpsCUDA  # classes matching a regex
    python scripts/run_benchmarks.py bench_cuda --repeat 10

For each class and each combination of its ``params``: ``setup`` (a ``NotImplementedError``
there means skipped, as in asv), then every ``time_*`` method (the best of ``--repeat`` calls, in
ms) and every ``track_*`` method (its value and ``unit``), then ``teardown``. ``peakmem_`` and
``timeraw_`` benchmarks are left to asv. The numbers are comparable with asv's for the same
machine; asv's statistics (several processes, warm-up rounds) are more careful.
"""

import argparse
import importlib
import inspect
import itertools
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="a benchmark file's name, e.g. bench_cuda")
    parser.add_argument("classes", nargs="?", default=".", help="regex on class names")
    parser.add_argument("--repeat", type=int, default=5, help="calls per time_ method")
    return parser.parse_args()


def combinations(cls):
    params = getattr(cls, "params", None)
    if params is None:
        return [()]
    if not isinstance(params, tuple):    # asv: a single list is one parameter
        params = (params,)
    return list(itertools.product(*params))


def run_class(cls, repeat):
    names = getattr(cls, "param_names", [])
    methods = [m for m, _ in inspect.getmembers(cls, callable)
               if m.startswith(("time_", "track_"))]
    for combo in combinations(cls):
        label = ", ".join(f"{n}={v}" for n, v in zip(names, combo, strict=False)) or "-"
        bench = cls()
        try:
            if hasattr(bench, "setup"):
                bench.setup(*combo)
        except NotImplementedError as exc:
            print(f"{cls.__name__}({label}): skipped ({exc or 'setup raised NotImplementedError'})")
            continue
        try:
            for method in methods:
                fn = getattr(bench, method)
                if method.startswith("time_"):
                    best = float("inf")
                    for _ in range(repeat):
                        start = time.perf_counter()
                        fn(*combo)
                        best = min(best, time.perf_counter() - start)
                    print(f"{cls.__name__}.{method}({label}): {best * 1e3:.3f} ms")
                else:
                    unit = getattr(getattr(cls, method), "unit", "")
                    print(f"{cls.__name__}.{method}({label}): {fn(*combo):.4g} {unit}")
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*combo)


def main():
    args = parse()
    sys.path.insert(0, str(ROOT / "asv_bench"))
    sys.path.insert(0, str(ROOT))
    module = importlib.import_module(f"benchmarks.{args.module}")
    pattern = re.compile(args.classes)
    classes = [c for name, c in inspect.getmembers(module, inspect.isclass)
               if c.__module__ == module.__name__ and pattern.search(name)]
    if not classes:
        sys.exit(f"no benchmark class in {args.module} matches {args.classes!r}")
    for cls in classes:
        run_class(cls, args.repeat)


if __name__ == "__main__":
    main()
