"""The built-in layer families, in one list that ``minicnn.nn`` and ``minicnn.functional`` gather
their names from (a new family is added here and in the registry's BUILTIN_PLUGINS)."""

from .. import losses
from . import (
    activation,
    conv,
    conv_transpose,
    dropout,
    linear,
    merge,
    norm,
    pad,
    pool,
    shape,
    softmax,
)

FAMILIES = [activation, linear, shape, merge, conv, conv_transpose, pad, pool, norm, dropout,
            softmax, losses]
