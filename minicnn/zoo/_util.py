"""Helpers shared by the zoo's model files."""

from ..errors import ConfigError
from ..graph import Model
from ..symbolic import Input


def image_model(children, in_channels, size=None):
    """A functional Model applying ``children`` ((name, module) pairs) in turn to an image input of
    per-sample shape (in_channels, size, size); ``size=None`` leaves the spatial axes free."""
    x = Input((in_channels, size, size))
    out = x
    for name, child in children:
        out = child(out, name=name)
    return Model(x, out)


def check_positive(model, **values):
    """ConfigError naming the model unless every value is a positive int."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{model}: {name} must be a positive integer, got {value!r}")
