"""What the example scripts share: the command line (``--out DIR``, ``--small``), paths, timing."""

import argparse
import time
from pathlib import Path

import numba

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"     # real data beside the checkout, when present


class _Formatter(argparse.HelpFormatter):
    """Shows an option's default when it has one and its help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if not (default is None or default is False or default == argparse.SUPPRESS) \
                and "default" not in text:
            text += " (default: %(default)s)"
        return text


def parser(description):
    """An argument parser with the options every example takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=_Formatter)
    p.add_argument("--out", default=".", help="folder for the PNGs (created if missing)")
    p.add_argument("--small", action="store_true",
                   help="tiny sizes that finish in seconds (what the tests run)")
    p.add_argument("--threads", type=int,
                   help="Numba threads (default: all cores; 1 can be much faster on a machine "
                        "busy with other work)")
    return p


def out_dir(args):
    """Apply ``--threads`` and create the output folder; returns it as a Path."""
    if getattr(args, "threads", None):
        numba.set_num_threads(args.threads)
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Timer:
    """``with Timer() as t: ...``; then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
