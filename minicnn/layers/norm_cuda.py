"""CUDA kernels of batch normalisation (BatchNorm1d/2d/3d), the CPU kernel's arithmetic.

The input is viewed as (N, C, S), each channel's M = N S values as one run. Statistics and the
backward sums are block reductions: channel c's run is cut into ``splits`` chunks, one block per
(channel, chunk); each block's threads sum strided values in float64 and combine them in a fixed
tree in shared memory, and the last block of a channel to finish (an integer counter per
channel says which) merges the channel's chunks in order: the mean and variance with Chan's
pairwise formula (each chunk's variance is two-pass), the gradient sums by plain addition. The
merge order is fixed whichever block does it, so the bits depend on the shape and the launch
settings only; the only atomics are the integer counters (no float atomics). Merging in the last
block, not in a second kernel, saves two launches per batch-norm layer and step (42 of a
ResNet-20 step's 250).
(One thread per channel walking all M values, as before, took 586 ms of a 607 ms ResNet-20 step
at batch 256 on an H100.) The element-wise parts (normalise, input gradient) run one
thread per element from per-channel coefficients kept in float64 workspace arrays. Nothing is
copied to the host: ``num_batches_tracked`` is incremented on the device, ``momentum=None``
(cumulative average) reads it there, and whether forward used the batch statistics is kept in
device memory for backward. The normalising kernel can apply a fused activation as it stores
(``forward_fused``; ``minicnn/fusion.py``).
"""

import math

import numpy as np
from numba import float64

from .. import cuda_device
from ..cuda_device import cuda, flat, launch, launch_blocks, zeroed_once
from ..cuda_reduce import MAX_SPLITS, TREE, block_shape, block_sum, chunk_of
from ..errors import InputError
from ..kernel import Kernel
from ..registry import hookimpl
from .activation_cuda import NO_EPILOGUE, activate, epilogue_args


@cuda.jit(device=True)
def _last_of_channel(done, c, splits):
    """Thread 0 of a block whose chunk of channel c is written: True for the channel's last
    block, which then merges (the counter is reset for the next launch)."""
    cuda.threadfence()        # this block's partials are visible before it is counted
    if cuda.atomic.add(done, c, 1) == splits - 1:
        done[c] = 0
        cuda.threadfence()
        return True
    return False


@cuda.jit
def batchnorm_partial_stats(x, part, done, n_batch, channels, spatial, splits, running_mean,
                            running_var, count, mean_ws, invstd_ws, eps, momentum, update):
    """part[3 b : 3 b + 3] = (count, mean, sum of squared deviations) of block b's chunk; the
    channel's last block merges them (``_merge_stats``)."""
    tree = cuda.shared.array(TREE, float64)
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    m = n_batch * spatial
    for block in range(cuda.blockIdx.x, channels * splits, cuda.gridDim.x):
        c, first, stop = chunk_of(block, splits, m)
        acc = 0.0
        for j in range(first + t, stop, threads):
            n = j // spatial
            acc += x[(n * channels + c) * spatial + j - n * spatial]
        count_c = stop - first
        total = block_sum(tree, acc, t, threads)
        mean = total / count_c if count_c > 0 else 0.0
        acc = 0.0
        for j in range(first + t, stop, threads):
            n = j // spatial
            d = x[(n * channels + c) * spatial + j - n * spatial] - mean
            acc += d * d
        m2 = block_sum(tree, acc, t, threads)
        if t == 0:
            part[3 * block] = count_c
            part[3 * block + 1] = mean
            part[3 * block + 2] = m2
            if _last_of_channel(done, c, splits):
                _merge_stats(c, part, splits, running_mean, running_var, count, mean_ws,
                             invstd_ws, eps, momentum, update)


@cuda.jit(device=True)
def _merge_stats(c, part, splits, running_mean, running_var, count, mean_ws, invstd_ws, eps,
                 momentum, update):
    seen = 0.0
    mean = 0.0
    m2 = 0.0
    for k in range(splits):    # Chan et al.'s merge, chunk by chunk in order
        b = 3 * (c * splits + k)
        size = part[b]
        if size == 0.0:
            continue
        total = seen + size
        delta = part[b + 1] - mean
        mean += delta * (size / total)
        m2 += part[b + 2] + delta * delta * (seen * size / total)
        seen = total
    if update:
        # count: batches tracked before this one (the normalising kernel, launched after this
        # one, adds it: no thread here may see it change)
        factor = momentum if momentum >= 0.0 else 1.0 / (count[0] + 1)
        running_mean[c] = (1.0 - factor) * running_mean[c] + factor * mean
        running_var[c] = (1.0 - factor) * running_var[c] + factor * (m2 / (seen - 1))
    mean_ws[c] = mean
    invstd_ws[c] = 1.0 / math.sqrt(m2 / seen + eps)


@cuda.jit
def batchnorm_running_stats(running_mean, running_var, mean_ws, invstd_ws, channels, eps):
    """Evaluation with running statistics: their mean and 1/std, per channel."""
    for c in range(cuda.grid(1), channels, cuda.gridsize(1)):
        mean_ws[c] = np.float64(running_mean[c])
        invstd_ws[c] = 1.0 / math.sqrt(np.float64(running_var[c]) + eps)


@cuda.jit
def batchnorm_normalize(x, y, weight, bias, mean_ws, invstd_ws, channels, spatial, affine,
                        op, alpha, act_out, count, flags, use_batch):
    if cuda.grid(1) == 0:     # bookkeeping for the statistics kernel's successors
        if count.size > 0:
            count[0] += 1     # num_batches_tracked
        flags[0] = use_batch  # what backward must differentiate
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (i // spatial) % channels
        if affine:
            y[i] = (x[i] - mean_ws[c]) * (invstd_ws[c] * weight[c]) + bias[c]
        else:
            y[i] = (x[i] - mean_ws[c]) * invstd_ws[c]
        if op != NO_EPILOGUE:     # a fused activation (Kernel.forward_fused) writes act_out too
            act_out[i] = activate(y[i], op, alpha)


@cuda.jit
def batchnorm_partial_grad_sums(x, gy, mean_ws, part, done, n_batch, channels, spatial, splits,
                                weight, invstd_ws, flags, coef, gweight, gbias, affine, need_gw,
                                need_gb):
    """part[2 b : 2 b + 2] = (sum gy, sum gy (x - mean)) over block b's chunk; the channel's last
    block adds them up (``_merge_grad_sums``)."""
    tree = cuda.shared.array(TREE, float64)
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    m = n_batch * spatial
    for block in range(cuda.blockIdx.x, channels * splits, cuda.gridDim.x):
        c, first, stop = chunk_of(block, splits, m)
        mean = mean_ws[c]
        acc_g = 0.0
        acc_gd = 0.0
        for j in range(first + t, stop, threads):
            n = j // spatial
            i = (n * channels + c) * spatial + j - n * spatial
            g = np.float64(gy[i])
            acc_g += g
            acc_gd += g * (x[i] - mean)
        sum_g = block_sum(tree, acc_g, t, threads)
        sum_gd = block_sum(tree, acc_gd, t, threads)
        if t == 0:
            part[2 * block] = sum_g
            part[2 * block + 1] = sum_gd
            if _last_of_channel(done, c, splits):
                _merge_grad_sums(c, part, splits, weight, invstd_ws, flags, coef, gweight, gbias,
                                 m, channels, affine, need_gw, need_gb)


@cuda.jit(device=True)
def _merge_grad_sums(c, part, splits, weight, invstd_ws, flags, coef, gweight, gbias, m,
                     channels, affine, need_gw, need_gb):
    use_batch = flags[0] != 0
    invstd = invstd_ws[c]
    sum_g = 0.0
    sum_gd = 0.0
    for k in range(splits):
        sum_g += part[2 * (c * splits + k)]
        sum_gd += part[2 * (c * splits + k) + 1]
    sum_gxhat = sum_gd * invstd
    if need_gw:
        gweight[c] = sum_gxhat
    if need_gb:
        gbias[c] = sum_g
    k = invstd * weight[c] if affine else invstd
    coef[c] = k
    coef[channels + c] = sum_g / m if use_batch else 0.0
    coef[2 * channels + c] = sum_gxhat / m * invstd if use_batch else 0.0


@cuda.jit
def batchnorm_grad_input(x, gy, gx, mean_ws, coef, channels, spatial):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (i // spatial) % channels
        k = coef[c]
        a = coef[channels + c]
        b = coef[2 * channels + c]
        gx[i] = k * (gy[i] - a - (x[i] - mean_ws[c]) * b)


class BatchNormCUDA(Kernel):
    device = "cuda"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        c = in_shapes[0][1]
        return {"mean": ((c,), np.float64), "invstd": ((c,), np.float64),
                "coef": ((3 * c,), np.float64), "flags": ((1,), np.int64),
                "part": ((3 * MAX_SPLITS * c,), np.float64), "done": ((c,), np.int32),
                "none": ((1,), dtype), "nocount": ((0,), np.int64)}

    @staticmethod
    def _dims(x, ws):
        """(N, C, S) of the input, worked out once per plan step (its shape is fixed)."""
        dims = ws.get("dims")
        if dims is None:
            spatial = 1
            for d in x.shape[2:]:
                spatial *= d
            dims = ws["dims"] = (x.shape[0], x.shape[1], spatial)
        return dims

    def forward(self, layer, xs, ys, ws):
        self.forward_fused(layer, xs, ys, ws, None, None)

    def forward_fused(self, layer, xs, ys, ws, act, out):
        n_batch, channels, spatial = self._dims(xs[0], ws)
        use_batch = layer.uses_batch_stats()
        update = use_batch and layer.training and layer.track_running_stats
        if use_batch and n_batch * spatial <= 1:
            raise InputError(f"{layer.type_name}: Expected more than 1 value per channel when "
                             f"training, got input of shape {tuple(xs[0].shape)}")
        none = ws["none"]
        count = flat(layer.num_batches_tracked) if update else ws["nocount"]
        rmean = layer.running_mean if layer.track_running_stats else none
        rvar = layer.running_var if layer.track_running_stats else none
        momentum = -1.0 if layer.momentum is None else float(layer.momentum)
        if use_batch:
            threads, splits = block_shape(channels, n_batch * spatial)
            launch_blocks(batchnorm_partial_stats, min(channels * splits, cuda_device.MAX_BLOCKS),
                          threads, flat(xs[0]), ws["part"], zeroed_once(ws, "done"), n_batch,
                          channels, spatial, splits, rmean, rvar,
                          count if update else ws["flags"], ws["mean"], ws["invstd"],
                          float(layer.eps), momentum, update)
        else:
            launch(batchnorm_running_stats, channels, rmean, rvar, ws["mean"], ws["invstd"],
                   channels, float(layer.eps))
        weight = layer.weight.data if layer.affine else none
        bias = layer.bias.data if layer.affine else none
        op, alpha = epilogue_args(act)
        launch(batchnorm_normalize, xs[0].size, flat(xs[0]), flat(ys[0]), weight, bias,
               ws["mean"], ws["invstd"], channels, spatial, layer.affine, op, alpha,
               flat(out) if out is not None else flat(ys[0]), count, ws["flags"], int(use_batch))

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        gw, gb = grads.get("weight"), grads.get("bias")
        if gxs[0] is None and gw is None and gb is None:
            return
        n_batch, channels, spatial = self._dims(xs[0], ws)
        none = ws["none"]
        weight = layer.weight.data if layer.affine else none
        threads, splits = block_shape(channels, n_batch * spatial)
        launch_blocks(batchnorm_partial_grad_sums, min(channels * splits, cuda_device.MAX_BLOCKS),
                      threads, flat(xs[0]), flat(gys[0]), ws["mean"], ws["part"],
                      zeroed_once(ws, "done"), n_batch, channels, spatial, splits, weight,
                      ws["invstd"], ws["flags"], ws["coef"], none if gw is None else gw,
                      none if gb is None else gb, layer.affine, gw is not None, gb is not None)
        if gxs[0] is not None:
            launch(batchnorm_grad_input, xs[0].size, flat(xs[0]), flat(gys[0]), flat(gxs[0]),
                   ws["mean"], ws["coef"], channels, spatial)


class BatchNorm1dCUDA(BatchNormCUDA):
    layer = "BatchNorm1d"


class BatchNorm2dCUDA(BatchNormCUDA):
    layer = "BatchNorm2d"


class BatchNorm3dCUDA(BatchNormCUDA):
    layer = "BatchNorm3d"


@hookimpl
def minicnn_kernels():
    return [BatchNorm1dCUDA, BatchNorm2dCUDA, BatchNorm3dCUDA]
