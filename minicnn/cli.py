"""The ``minicnn`` command: every subcommand comes from a plugin's ``minicnn_commands`` hook."""

import argparse
import sys

from .errors import MinicnnError
from .registry import get_registry


def build_parser(registry=None):
    registry = registry or get_registry()
    parser = argparse.ArgumentParser(prog="minicnn", description="minicnn: read, extend and trust "
                                     "every kernel of a convolutional neural network")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(registry.commands):
        command = registry.commands[name][0]
        command_parser = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(command_parser)
        command_parser.set_defaults(_run=command.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except MinicnnError as exc:
        print(f"minicnn {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
