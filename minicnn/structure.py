"""A version number for the shape of module trees: any container edit or device/dtype move bumps it,
and executors rebuild their plans when it changed (cheaper and safer than tracking which tree
changed)."""

_version = 0


def changed():
    global _version
    _version += 1


def version():
    return _version


_flags_version = 0


def flags_changed():
    """A parameter was frozen or unfrozen (``Param.requires_grad`` was set to a new value)."""
    global _flags_version
    _flags_version += 1


def flags_version():
    return _flags_version
