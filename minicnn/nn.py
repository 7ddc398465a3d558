"""Layers, containers and losses, as ``minicnn.nn.<Name>`` (PyTorch's ``torch.nn`` names).

Built-in classes are listed here; a layer a plugin registered is found through the registry as well
(``nn.Swish`` once the plugin is installed).
"""

from .graph import Model, Sequential
from .layer import Layer, Loss, Module, Param
from .layers.families import FAMILIES as _FAMILIES

for _family in _FAMILIES:
    for _name in dir(_family):
        _obj = getattr(_family, _name)
        if isinstance(_obj, type) and issubclass(_obj, Layer) and not _name.startswith("_") \
                and _obj.__module__ == _family.__name__:
            globals()[_name] = _obj
del _family, _name, _obj


def __getattr__(name):
    from .registry import get_registry
    entry = get_registry().layers.get(name)
    if entry is None:
        raise AttributeError(f"minicnn.nn has no layer {name!r} (no installed plugin registers it)")
    return entry[0]


__all__ = ["Layer", "Loss", "Model", "Module", "Param", "Sequential"]
