"""The plugin module minicnn loads from the entry point ``saliency`` (group ``minicnn``): the
``minicnn saliency`` command."""

import minicnn


@minicnn.hookimpl
def minicnn_commands():
    from .cli import command
    return [command()]
