"""A subcommand of the ``minicnn`` command line, as plugins return it from ``minicnn_commands``."""

from dataclasses import dataclass
from typing import Callable


@dataclass
class Command:
    name: str
    help: str
    add_arguments: Callable   # add_arguments(parser: argparse.ArgumentParser) -> None
    run: Callable             # run(args: argparse.Namespace) -> int (exit code)
