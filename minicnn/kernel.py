"""The kernel contract: the code that runs one layer type on one device.

A kernel never allocates its outputs: the executor hands it arrays to overwrite. ``forward`` writes
every ``ys[i]``; ``backward`` writes every ``gxs[i]`` that is not ``None`` and every parameter
gradient in ``grads`` that is not ``None`` (a frozen parameter's gradient, or an input gradient
nobody needs, is passed as ``None`` and must not be computed). Kernels overwrite; the executor sums
where a value feeds several nodes.

Scratch and saved state (a dropout mask, pooling arg-max indices, batch statistics) are declared by
``workspace`` and allocated by the executor on the kernel's device, once per input shape.

Fusion (optional, see ``minicnn/fusion.py``). A kernel that can apply an element-wise activation as
it stores its output defines ``forward_fused(layer, xs, ys, ws, act, out)``: it writes ``ys`` as
``forward`` does and also ``out``, the activation of ``ys[0]``, where ``act`` is what the activation
kernel's ``epilogue(layer)`` returned (an activation kernel that can be fused defines that method).
The executor then skips the activation's own forward; its backward runs as usual.

Pass-through gradients (optional). A kernel of a layer without parameters whose every input
gradient is its output gradient, reshaped to the input's shape (Add, Flatten, Identity), sets
``passes_gradient = True``: the executor then hands the output gradient on as the inputs'
gradients (read-only, copying only where it must) and never calls ``backward``, which saves a
copy per input (a launch each on the GPU; 18 per ResNet-20 step).

Views (optional). A one-input kernel whose output is its input reshaped (Flatten) sets
``output_is_view = True``: inside a graph (neither the model's input nor its output) the
executor makes the output buffer a reshaped view of the input's and never calls ``forward``.
"""


class Kernel:
    """Base class of all kernels. Subclasses set ``layer`` and ``device`` and implement the
    methods."""

    layer: str = ""          # the layer's type_name
    device: str = "cpu"      # "cpu" or "cuda"
    override: bool = False   # replace another plugin's kernel for the same (layer, device)
    passes_gradient: bool = False   # every input's gradient is the output's (see above)
    output_is_view: bool = False    # the output is the input reshaped (see above)

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        """Arrays this kernel needs besides inputs and outputs: ``{name: (shape, dtype)}``."""
        return {}

    def forward(self, layer, xs, ys, ws):
        """Compute ``ys`` from ``xs`` (lists of arrays); ``layer.training`` says which mode."""
        raise NotImplementedError

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        """Given output gradients ``gys``, write input gradients ``gxs`` and parameter gradients
        ``grads``.

        ``grads`` maps each parameter name of the layer to its gradient array, or ``None`` when
        frozen.
        """
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.layer}@{self.device}>"
