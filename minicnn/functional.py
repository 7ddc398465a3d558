"""numpy in, numpy out: one-shot forms of every layer, like ``torch.nn.functional``.

``F.conv2d(x, w, b, stride=1, padding=0, dilation=1, groups=1)``, ``F.relu(x)``, ``F.max_pool2d(x,
2)``... Each builds the layer with the given parameters and runs it once; for repeated use build the
layer. The names are defined next to their layers (each family lists them in ``FUNCTIONAL``) and
gathered here.
"""

from .layers.families import FAMILIES as _FAMILIES

__all__ = []
for _family in _FAMILIES:
    for _name in _family.FUNCTIONAL:
        globals()[_name] = getattr(_family, _name)
        __all__.append(_name)
del _family, _name
