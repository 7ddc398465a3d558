"""A version number for the shape of module trees: any container edit or device/dtype move bumps it,
and executors rebuild their plans when it changed (cheaper and safer than tracking which tree
changed)."""

_version = 0


def changed():
    global _version
    _version += 1


def version():
    return _version
