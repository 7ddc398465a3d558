"""``minicnn check-plugin NAME``: the conformance suite (:mod:`minicnn.conformance`) on every
layer a plugin registers, with a table per layer; the exit code is 1 when a check fails.

NAME is a registered plugin (an entry-point name such as ``swish``, or a built-in module such as
``minicnn.layers.activation``), a distribution (``minicnn-swish`` or ``minicnn_swish``), an
installed entry point that was not loaded (``MINICNN_DISABLE_PLUGIN_AUTOLOAD=1``), or an importable
module that is not installed as a plugin yet (``my_package.plugin``), which is registered for the
check; a package whose hooks live in its ``plugin`` submodule may be named by the package
(``my_package``). See :func:`minicnn.conformance.resolve_plugin` for the order.

The devices compared with the CPU (``--device``, ``cuda`` by default) are enabled first where they
are available, so kernels a plugin loads with its device (``minicnn_device_kernels``) are listed
and checked; where a device is missing the ``cuda`` column says why it was not checked.
"""

import sys

from ..command import Command
from ..registry import get_registry, hookimpl


def _add_arguments(parser):
    parser.add_argument("name", metavar="NAME",
                        help="plugin name, distribution name, module path or package name "
                             "(e.g. swish, minicnn-swish, minicnn.layers.activation, "
                             "minicnn_swish)")
    parser.add_argument("--layer", action="append", default=None, metavar="TYPE",
                        help="check only this layer type (repeatable)")
    parser.add_argument("--device", action="append", default=None, metavar="DEVICE",
                        help="devices to compare with the CPU (default: cuda)")
    parser.add_argument("--strict", action="store_true",
                        help="also fail when a check could not be run (no cases, no reference, "
                             "no GPU kernel...)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the details of every check, passed ones included")


def run(args):
    from ..conformance import check_plugin
    registry = get_registry()
    report = check_plugin(args.name, registry, devices=tuple(args.device or ("cuda",)),
                          layers=args.layer)
    if args.layer:
        missing = sorted(set(args.layer) - {r.type_name for r in report.layers})
        if missing:
            print(f"minicnn check-plugin: plugin '{report.plugin}' has no layer type "
                  f"{', '.join(missing)}", file=sys.stderr)
            return 2
    print(report.format(verbose=args.verbose))
    if report.failed:
        return 1
    if args.strict:
        try:
            report.assert_ok(strict=True)
        except AssertionError:
            print("minicnn check-plugin: --strict: some checks were not run", file=sys.stderr)
            return 1
    return 0


@hookimpl
def minicnn_commands():
    return [Command("check-plugin", "run the conformance suite on every layer a plugin "
                    "registers (reference, gradcheck, shapes, state, errors, GPU parity)",
                    _add_arguments, run)]
