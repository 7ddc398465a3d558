"""CUDA kernels of Add and Concat: element-wise grid-stride loops over flat arrays.

Concat views every array as ``(outer, axis length * inner)``: input ``k`` lands at column offset
``start_k * inner`` of each output row; backward copies the same slice back (a gather: each
element written once). Add can apply a fused activation as it stores (``forward_fused``; the
residual ``relu(x + shortcut)`` of ResNets).
"""

from ..cuda_device import _add_kernel as add_kernel
from ..cuda_device import _copy_kernel as copy_kernel
from ..cuda_device import cuda, flat, launch
from ..kernel import Kernel
from ..registry import hookimpl
from .activation_cuda import NO_EPILOGUE, activate, activation_forward, epilogue_args


@cuda.jit
def add2_kernel(a, b, y, op, alpha, act_out):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        v = a[i] + b[i]
        y[i] = v
        if op != NO_EPILOGUE:     # a fused activation (Kernel.forward_fused) writes act_out too
            act_out[i] = activate(v, op, alpha)


@cuda.jit
def concat_slice(src, dst, row_src, row_dst, offset, to_dst):
    """to_dst: dst[r, offset + j] = src[r, j]; else src[r, j] = dst[r, offset + j] (flat arrays,
    rows of ``row_src`` / ``row_dst`` elements)."""
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        r = i // row_src
        j = i - r * row_src
        if to_dst:
            dst[r * row_dst + offset + j] = src[i]
        else:
            src[i] = dst[r * row_dst + offset + j]


class AddCUDA(Kernel):
    layer, device = "Add", "cuda"
    passes_gradient = True   # the executor hands gy on: backward runs only when called directly

    def forward(self, layer, xs, ys, ws):
        self.forward_fused(layer, xs, ys, ws, None, None)

    def forward_fused(self, layer, xs, ys, ws, act, out):
        y = flat(ys[0])
        op, alpha = epilogue_args(act if len(xs) == 2 else None)
        launch(add2_kernel, y.size, flat(xs[0]), flat(xs[1]), y, op, alpha,
               flat(out) if out is not None else y)
        for x in xs[2:]:
            launch(add_kernel, y.size, y, flat(x))
        if act is not None and len(xs) > 2:     # the activation after the last sum
            launch(activation_forward, y.size, y, flat(out), act[0], act[1])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        for gx in gxs:
            if gx is not None:
                launch(copy_kernel, gx.size, flat(gx), flat(gys[0]))


class ConcatCUDA(Kernel):
    layer, device = "Concat", "cuda"

    def _slices(self, layer, shapes, out_shape):
        axis = layer.axis(len(out_shape))
        inner = 1
        for d in out_shape[axis + 1:]:
            inner *= d
        start = 0
        for shape in shapes:
            yield shape[axis] * inner, out_shape[axis] * inner, start * inner
            start += shape[axis]

    def forward(self, layer, xs, ys, ws):
        y = flat(ys[0])
        for x, (row, row_out, offset) in zip(xs, self._slices(layer, [x.shape for x in xs],
                                                              ys[0].shape), strict=True):
            launch(concat_slice, x.size, flat(x), y, row, row_out, offset, True)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        gy = flat(gys[0])
        for gx, (row, row_out, offset) in zip(gxs, self._slices(layer, [x.shape for x in xs],
                                                                ys[0].shape), strict=True):
            if gx is not None:
                launch(concat_slice, gx.size, flat(gx), gy, row, row_out, offset, False)


@hookimpl
def minicnn_kernels():
    return [AddCUDA, ConcatCUDA]
