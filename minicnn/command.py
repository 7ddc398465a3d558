"""A subcommand of the ``minicnn`` command line, as plugins return it from ``minicnn_commands``."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Command:
    name: str
    help: str
    add_arguments: Callable   # add_arguments(parser: argparse.ArgumentParser) -> None
    run: Callable             # run(args: argparse.Namespace) -> int (exit code)
