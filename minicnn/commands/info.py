"""``minicnn plugins``: the registered plugins, layers (with the devices that have kernels), losses,
models, datasets and commands."""

from ..command import Command
from ..registry import get_registry, hookimpl


def describe_registry(registry):
    """The registry as text: what each plugin registered."""
    lines = ["plugins:"]
    for name in registry.plugin_names():
        lines.append(f"  {name}")
    lines.append("layers (devices with kernels):")
    for type_name in sorted(registry.layers):
        cls, owner = registry.layers[type_name]
        devices = ", ".join(registry.devices_for(type_name)) or "no kernels"
        kind = " [loss]" if type_name in registry.losses else ""
        lines.append(f"  {type_name:<22} {devices:<12} {owner}{kind}")
    orphans = sorted({t for t, _ in registry.kernels} - set(registry.layers))
    if orphans:
        lines.append(f"kernels for unregistered layer types: {', '.join(orphans)}")
    for title, table in (("models", registry.models), ("datasets", registry.datasets),
                         ("commands", registry.commands)):
        lines.append(f"{title}:")
        for key in sorted(table):
            lines.append(f"  {key:<22} {table[key][1]}")
    return "\n".join(lines)


def _run(args):
    print(describe_registry(get_registry()))
    return 0


@hookimpl
def minicnn_commands():
    return [Command("plugins", "list plugins, layers and the devices they have kernels for",
                    lambda parser: None, _run)]
