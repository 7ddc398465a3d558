"""CPU kernel of Flatten: a copy through a reshaped view (the executor owns the output buffer)."""

from ..kernel import Kernel
from ..registry import hookimpl


class FlattenCPU(Kernel):
    layer, device = "Flatten", "cpu"
    output_is_view = True    # inside a graph the executor makes y a view of x
    passes_gradient = True   # the executor hands gy on: backward runs only when called directly

    def forward(self, layer, xs, ys, ws):
        ys[0][...] = xs[0].reshape(ys[0].shape)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            gxs[0][...] = gys[0].reshape(gxs[0].shape)


@hookimpl
def minicnn_kernels():
    return [FlattenCPU]
