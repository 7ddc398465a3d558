"""Every error minicnn raises on purpose. Each names what it is about: a node, a layer, a plugin, a
file."""


class MinicnnError(Exception):
    """Base class of minicnn's own errors."""


class ShapeError(MinicnnError, ValueError):
    """A layer received inputs whose shapes it cannot take.

    Layers raise it from ``infer_shapes`` with what they expected and what came; the executor adds
    the node's name and type, so the message always says where in the graph it happened.
    """

    def __init__(self, message, *, expected=None, received=None, node=None, layer_type=None):
        self.detail = message
        self.expected = expected
        self.received = received
        self.node = node
        self.layer_type = layer_type
        super().__init__(self._format())

    def _format(self):
        where = ""
        if self.node is not None or self.layer_type is not None:
            where = f"node '{self.node}' ({self.layer_type}): "
        text = where + self.detail
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.received is not None:
            text += f", received {self.received}"
        return text

    def at_node(self, node, layer_type):
        """The same error, now naming the node it happened at."""
        return ShapeError(self.detail, expected=self.expected, received=self.received,
                          node=node, layer_type=layer_type)


class InputError(MinicnnError, ValueError):
    """Bad data handed to a layer or model: wrong dtype, empty batch, NaN where checks were asked
    for."""


class ConfigError(MinicnnError, ValueError):
    """A layer's hyper-parameters are invalid (stride 0, negative padding, channels not
    divisible...)."""


class PluginError(MinicnnError):
    """A plugin failed to import, raised inside a hook, or registered a name that is already
    taken."""

    def __init__(self, message, *, plugin=None, hook=None):
        self.plugin = plugin
        self.hook = hook
        prefix = ""
        if plugin is not None:
            prefix += f"plugin '{plugin}'"
        if hook is not None:
            prefix += f", hook '{hook}'"
        super().__init__(f"{prefix}: {message}" if prefix else message)


class KernelMissingError(MinicnnError):
    """A graph was built for a device on which some of its layers have no kernel."""


class NonFiniteError(MinicnnError, FloatingPointError):
    """A NaN or Inf appeared where finiteness checks were asked for; names the first node that made
    it."""

    def __init__(self, message, *, node=None):
        self.node = node
        super().__init__(message)


class ModelFormatError(MinicnnError, ValueError):
    """A model, weights or checkpoint file is malformed, truncated or hostile; names the file and
    what is wrong. Loading never executes code from a file (no pickle, no eval)."""

    def __init__(self, message, *, path=None):
        self.path = path
        super().__init__(f"{path}: {message}" if path is not None else message)
