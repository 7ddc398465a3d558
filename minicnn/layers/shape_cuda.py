"""CUDA kernel of Flatten: a device-to-device copy (the executor owns the output buffer)."""

from ..cuda_device import _copy_kernel as copy_kernel
from ..cuda_device import flat, launch
from ..kernel import Kernel
from ..registry import hookimpl


class FlattenCUDA(Kernel):
    layer, device = "Flatten", "cuda"
    output_is_view = True    # inside a graph the executor makes y a view of x
    passes_gradient = True   # the executor hands gy on: backward runs only when called directly

    def forward(self, layer, xs, ys, ws):
        launch(copy_kernel, ys[0].size, flat(ys[0]), flat(xs[0]))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            launch(copy_kernel, gxs[0].size, flat(gxs[0]), flat(gys[0]))


@hookimpl
def minicnn_kernels():
    return [FlattenCUDA]
