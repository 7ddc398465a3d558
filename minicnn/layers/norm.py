"""Batch normalisation: BatchNorm1d, BatchNorm2d, BatchNorm3d (PyTorch semantics and names).

For each channel c, over the batch and every spatial position (M = N * spatial values):

    y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c

In training mode (or whenever ``track_running_stats=False``) mean and var are the batch statistics
(biased variance) and, when tracking, the running statistics are updated in place:

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)

and ``num_batches_tracked`` grows by one (``momentum=None`` gives the cumulative average
1 / num_batches_tracked, as PyTorch). In eval mode the running statistics are used and backward is
the gradient of the fixed affine map; in training mode backward goes through the batch statistics.
"""

import numpy as np

from ..errors import ConfigError, ShapeError
from ..layer import Layer
from ..registry import hookimpl
from .checks import positive_int


class _BatchNorm(Layer):
    ranks = (4,)           # accepted input ranks, batch axis included
    layout = "(N, C, H, W)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ConfigError(f"{name}: eps must be a number >= 0, got {eps!r}")
        if momentum is not None and (isinstance(momentum, bool)
                                     or not isinstance(momentum, (int, float))
                                     or not 0.0 <= momentum <= 1.0):
            raise ConfigError(f"{name}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.add_param("weight", np.ones(num_features, np.float32))
            self.add_param("bias", np.zeros(num_features, np.float32))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.add_buffer("running_mean", np.zeros(num_features, np.float32))
            self.add_buffer("running_var", np.ones(num_features, np.float32))
            self.add_buffer("num_batches_tracked", np.zeros((), np.int64))

    # Layer.add_buffer and Module.to pass buffers through np.ascontiguousarray, which turns a 0-d
    # array into shape (1,); PyTorch's num_batches_tracked is 0-d, so this property keeps it 0-d.
    @property
    def num_batches_tracked(self):
        return self._num_batches_tracked

    @num_batches_tracked.setter
    def num_batches_tracked(self, value):
        if isinstance(value, np.ndarray) and value.shape == (1,):
            value = value.reshape(())
        self._num_batches_tracked = value

    @property
    def frozen(self):
        """Frozen (``model.freeze``): weight and bias get no gradient, and the layer then also uses
        and keeps its running statistics in training mode, as fine-tuning recipes expect."""
        return self.affine and not any(p.requires_grad for p in self._own_params().values())

    def uses_batch_stats(self):
        """True when the next forward normalises with the batch statistics."""
        return (self.training and not self.frozen) or not self.track_running_stats

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        expected = " or ".join(self.layout.split("|"))
        if len(shape) not in self.ranks:
            raise ShapeError(f"{type(self).__name__} takes {expected} input",
                             expected=expected.replace("C", str(self.num_features)),
                             received=f"shape {shape}")
        if shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}: channel count (axis 1) != num_features",
                             expected=f"{self.num_features} channels",
                             received=f"{shape[1]} channels in shape {shape}")
        return [shape]

    def flops(self, in_shapes, out_shapes):
        n = int(np.prod(in_shapes[0]))
        return (7 if self.uses_batch_stats() else 2) * n

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per channel C."""

    ranks = (2, 3)
    layout = "(N, C)|(N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel C."""

    ranks = (4,)
    layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W) inputs, per channel C."""

    ranks = (5,)
    layout = "(N, C, D, H, W)"


@hookimpl
def minicnn_layers():
    return [BatchNorm1d, BatchNorm2d, BatchNorm3d]


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """PyTorch's ``F.batch_norm``: normalise ``x`` (N, C, ...) per channel.

    With ``training=True`` the batch statistics are used and ``running_mean``/``running_var``
    (when given) are updated in place with ``momentum``; with ``training=False`` they are required
    and used.
    """
    from .functional_util import build, run
    x = np.asarray(x)
    if x.ndim < 2:
        raise ShapeError("batch_norm takes (N, C, ...) input", expected="at least 2 axes",
                         received=f"shape {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ConfigError("batch_norm: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ConfigError("batch_norm: running_mean and running_var are required when "
                          "training=False")
    cls = {2: BatchNorm1d, 3: BatchNorm1d, 4: BatchNorm2d, 5: BatchNorm3d}.get(x.ndim)
    if cls is None:
        raise ShapeError("batch_norm takes 2 to 5 axes", expected="(N, C, ...) with 2 to 5 axes",
                         received=f"shape {x.shape}")
    channels = x.shape[1]
    affine = weight is not None or bias is not None
    tracking = running_mean is not None
    layer = build(cls, channels, eps=eps, momentum=momentum, affine=affine,
                  track_running_stats=tracking)
    layer.train(bool(training))
    if affine:
        layer.weight.data = np.ones(channels, x.dtype)
        layer.bias.data = np.zeros(channels, x.dtype)
    stats = []
    if tracking:
        for name, given in (("running_mean", running_mean), ("running_var", running_var)):
            array = np.ascontiguousarray(given, dtype=x.dtype)
            if array.shape != (channels,):
                raise ShapeError(f"batch_norm: {name} must have one value per channel",
                                 expected=f"({channels},)", received=f"shape {array.shape}")
            setattr(layer, name, array)
            stats.append((given, array))
    out = run(layer, [x], weight=None if weight is None else np.asarray(weight, x.dtype),
              bias=None if bias is None else np.asarray(bias, x.dtype))
    for given, array in stats:
        if array is not given:       # a converted copy was updated: write it back
            given[...] = array
    return out


FUNCTIONAL = ["batch_norm"]
