"""What the example scripts share: the command line (``--out DIR``, ``--small``), paths, timing."""

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"     # real data beside the checkout, when present


def parser(description):
    """An argument parser with the options every example takes."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=".", help="folder for the PNGs (created if missing)")
    p.add_argument("--small", action="store_true",
                   help="tiny sizes that finish in seconds (what the tests run)")
    return p


def out_dir(args):
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
