"""CPU kernels of batch normalisation.

The input is viewed as (N, C, S) with S the product of the spatial axes (1 for (N, C) input).
Both kernels run one channel per thread (``prange`` over C): each channel's sums are taken by one
thread in a fixed order, so results are deterministic. Statistics and gradient sums use float64
accumulators even for float32 data; the variance is two-pass (mean first, then the mean of squared
deviations), which does not cancel catastrophically when |mean| >> std.

(N, C) input (S = 1) would make that walk stride C through memory, so there tasks take blocks of
64 channels and walk the rows, accumulating each channel in the workspace (still one thread per
channel, rows in order).

Inner loops run over 1-D row views ``x[n, c]`` (unit stride: LLVM vectorises them; indexing the
3-D array inside the loop was 2 to 3 times slower). Forward saves the mean and 1/sqrt(var + eps)
actually used (batch or running) in float64 workspace arrays, and whether they were batch
statistics, for backward.
"""

import math

import numpy as np
from numba import prange

from ..errors import InputError
from ..jit import cpu_kernel
from ..kernel import Kernel
from ..registry import hookimpl

CBLOCK = 64   # channels per parallel task for (N, C) input


@cpu_kernel
def batchnorm_forward(x, y, weight, bias, running_mean, running_var, mean_ws, invstd_ws, eps,
                      factor, use_batch, update, affine):
    n_batch, channels, spatial = x.shape
    m = n_batch * spatial
    if spatial == 1:
        # (N, C): a channel's values are C apart; tasks take blocks of channels and walk the
        # rows, summing each channel into mean_ws / invstd_ws (one thread per channel, n in order)
        x2 = x.reshape(n_batch, channels)
        y2 = y.reshape(n_batch, channels)
        for blk in prange((channels + CBLOCK - 1) // CBLOCK):
            c0 = blk * CBLOCK
            c1 = min(c0 + CBLOCK, channels)
            w = c1 - c0
            mw = mean_ws[c0:c1]
            iw = invstd_ws[c0:c1]
            if use_batch:
                for j in range(w):
                    mw[j] = 0.0
                    iw[j] = 0.0
                for n in range(n_batch):
                    xr = x2[n, c0:c1]
                    for j in range(w):
                        mw[j] += xr[j]
                for j in range(w):
                    mw[j] /= m
                for n in range(n_batch):
                    xr = x2[n, c0:c1]
                    for j in range(w):
                        d = xr[j] - mw[j]
                        iw[j] += d * d
                for j in range(w):
                    c = c0 + j
                    if update:
                        running_mean[c] = (1.0 - factor) * running_mean[c] + factor * mw[j]
                        running_var[c] = ((1.0 - factor) * running_var[c]
                                          + factor * (iw[j] / (m - 1)))
                    iw[j] = 1.0 / math.sqrt(iw[j] / m + eps)
            else:
                for j in range(w):
                    mw[j] = running_mean[c0 + j]
                    iw[j] = 1.0 / math.sqrt(np.float64(running_var[c0 + j]) + eps)
            for n in range(n_batch):
                xr = x2[n, c0:c1]
                yr = y2[n, c0:c1]
                if affine:
                    wr = weight[c0:c1]
                    br = bias[c0:c1]
                    for j in range(w):
                        yr[j] = (xr[j] - mw[j]) * (iw[j] * wr[j]) + br[j]
                else:
                    for j in range(w):
                        yr[j] = (xr[j] - mw[j]) * iw[j]
        return
    for c in prange(channels):
        if use_batch:
            acc = 0.0
            for n in range(n_batch):
                xr = x[n, c]
                for s in range(spatial):
                    acc += xr[s]
            mean = acc / m
            acc = 0.0
            for n in range(n_batch):
                xr = x[n, c]
                for s in range(spatial):
                    d = xr[s] - mean
                    acc += d * d
            var = acc / m
            if update:
                running_mean[c] = (1.0 - factor) * running_mean[c] + factor * mean
                running_var[c] = (1.0 - factor) * running_var[c] + factor * (acc / (m - 1))
        else:
            mean = np.float64(running_mean[c])
            var = np.float64(running_var[c])
        invstd = 1.0 / math.sqrt(var + eps)
        mean_ws[c] = mean
        invstd_ws[c] = invstd
        scale = invstd * weight[c] if affine else invstd
        shift = bias[c] if affine else 0.0
        for n in range(n_batch):
            xr, yr = x[n, c], y[n, c]
            for s in range(spatial):
                yr[s] = (xr[s] - mean) * scale + shift


@cpu_kernel
def batchnorm_backward(x, gy, gx, weight, mean_ws, invstd_ws, sums, gweight, gbias, use_batch,
                       affine, need_gx, need_gw, need_gb):
    n_batch, channels, spatial = x.shape
    m = n_batch * spatial
    if spatial == 1:
        # (N, C): blocks of channels as in forward; sums (3, C) holds the per-channel sums, then
        # the coefficients of gx = k * gy + kb * (x - mean) + ka
        x2 = x.reshape(n_batch, channels)
        g2 = gy.reshape(n_batch, channels)
        gx2 = gx.reshape(n_batch, channels)
        for blk in prange((channels + CBLOCK - 1) // CBLOCK):
            c0 = blk * CBLOCK
            c1 = min(c0 + CBLOCK, channels)
            w = c1 - c0
            mw = mean_ws[c0:c1]
            sk = sums[0, c0:c1]
            skb = sums[1, c0:c1]
            ska = sums[2, c0:c1]
            for j in range(w):
                sk[j] = 0.0
                skb[j] = 0.0
            for n in range(n_batch):
                xr = x2[n, c0:c1]
                gr = g2[n, c0:c1]
                for j in range(w):
                    sk[j] += gr[j]
                    skb[j] += gr[j] * (xr[j] - mw[j])
            for j in range(w):
                c = c0 + j
                invstd = invstd_ws[c]
                sum_g = sk[j]
                sum_gxhat = skb[j] * invstd
                if need_gw:
                    gweight[c] = sum_gxhat
                if need_gb:
                    gbias[c] = sum_g
                k = invstd * weight[c] if affine else invstd
                sk[j] = k
                skb[j] = -k * sum_gxhat / m * invstd if use_batch else 0.0
                ska[j] = -k * sum_g / m if use_batch else 0.0
            if need_gx:
                for n in range(n_batch):
                    xr = x2[n, c0:c1]
                    gr = g2[n, c0:c1]
                    out = gx2[n, c0:c1]
                    for j in range(w):
                        out[j] = sk[j] * gr[j] + skb[j] * (xr[j] - mw[j]) + ska[j]
        return
    for c in prange(channels):
        mean = mean_ws[c]
        invstd = invstd_ws[c]
        sum_g = 0.0
        sum_gd = 0.0     # sum of gy * (x - mean)
        for n in range(n_batch):
            xr, gr = x[n, c], gy[n, c]
            for s in range(spatial):
                g = gr[s]
                sum_g += g
                sum_gd += g * (xr[s] - mean)
        sum_gxhat = sum_gd * invstd
        if need_gw:
            gweight[c] = sum_gxhat
        if need_gb:
            gbias[c] = sum_g
        if need_gx:
            k = invstd * weight[c] if affine else invstd
            if use_batch:
                # gx = k * (gy - mean(gy) - xhat * mean(gy * xhat)), xhat = (x - mean) * invstd
                a = sum_g / m
                b = sum_gxhat / m * invstd
                for n in range(n_batch):
                    xr, gr, out = x[n, c], gy[n, c], gx[n, c]
                    for s in range(spatial):
                        out[s] = k * (gr[s] - a - (xr[s] - mean) * b)
            else:
                for n in range(n_batch):
                    gr, out = gy[n, c], gx[n, c]
                    for s in range(spatial):
                        out[s] = k * gr[s]


def _view(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


class BatchNormCPU(Kernel):
    device = "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        c = in_shapes[0][1]
        return {"mean": ((c,), np.float64), "invstd": ((c,), np.float64),
                "sums": ((3, c), np.float64), "use_batch": ((1,), np.int64)}

    def forward(self, layer, xs, ys, ws):
        x = _view(xs[0])
        use_batch = layer.uses_batch_stats()
        update = use_batch and layer.training and layer.track_running_stats
        if use_batch and x.shape[0] * x.shape[2] <= 1:
            raise InputError(f"{layer.type_name}: Expected more than 1 value per channel when "
                             f"training, got input of shape {tuple(xs[0].shape)}")
        empty = np.empty(0, x.dtype)
        factor = 0.0
        if update:
            layer.num_batches_tracked[...] += 1
            factor = layer.momentum
            if factor is None:     # cumulative moving average
                factor = 1.0 / float(layer.num_batches_tracked)
        if layer.track_running_stats:
            rmean, rvar = layer.running_mean, layer.running_var
        else:
            rmean = rvar = empty
        weight = layer.weight.data if layer.affine else empty
        bias = layer.bias.data if layer.affine else empty
        batchnorm_forward(x, _view(ys[0]), weight, bias, rmean, rvar, ws["mean"], ws["invstd"],
                          layer.eps, factor, use_batch, update, layer.affine)
        ws["use_batch"][0] = use_batch

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        x = _view(xs[0])
        gw, gb = grads.get("weight"), grads.get("bias")
        need_gx = gxs[0] is not None
        if not (need_gx or gw is not None or gb is not None):
            return
        empty = np.empty(0, x.dtype)
        gx = _view(gxs[0]) if need_gx else x    # x is never written when need_gx is False
        batchnorm_backward(x, _view(gys[0]), gx,
                           layer.weight.data if layer.affine else empty,
                           ws["mean"], ws["invstd"], ws["sums"],
                           empty if gw is None else gw, empty if gb is None else gb,
                           bool(ws["use_batch"][0]), layer.affine,
                           need_gx, gw is not None, gb is not None)


class BatchNorm1dCPU(BatchNormCPU):
    layer = "BatchNorm1d"


class BatchNorm2dCPU(BatchNormCPU):
    layer = "BatchNorm2d"


class BatchNorm3dCPU(BatchNormCPU):
    layer = "BatchNorm3d"


@hookimpl
def minicnn_kernels():
    return [BatchNorm1dCPU, BatchNorm2dCPU, BatchNorm3dCPU]
