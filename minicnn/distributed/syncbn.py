"""Synced batch norm: statistics over the global batch instead of each rank's shard.

With ``DataParallel(sync_batchnorm=True)`` the batch-norm nodes of a model run this kernel during
data-parallel training steps (in training mode, with batch statistics); everywhere else (eval
mode, frozen layers, calls outside a step) the ordinary kernel runs. Per channel c, with M the
number of values over every rank:

forward (two allreduces, the same two-pass variance as the single-process kernel)::

    mean_c = sum over ranks of sum(x) / M
    var_c  = sum over ranks of sum((x - mean_c)^2) / M
    running statistics updated with M (unbiased variance: var * M / (M - 1)), identically on every
    rank

backward (one allreduce of 2C values), g the output gradient, xhat = (x - mean) * invstd::

    gx = k * (g - sum(g) / M - xhat * sum(g * xhat) / M),   k = weight * invstd
    gweight, gbias = this rank's sums of g * xhat and g (the gradient allreduce adds them up)

Gradients arrive scaled so that the ranks' sums add up to the gradient of the global loss (see
:mod:`.data_parallel`), which is what the global sums above need. Sums are taken in float64. The
arithmetic is numpy: simple to check, and batch norm is a small part of a step.
"""

import numpy as np

from ..errors import InputError


def is_batchnorm(layer):
    from ..layers.norm import _BatchNorm
    return isinstance(layer, _BatchNorm)


_SYNCED = 2    # marker in the workspace's use_batch flag: forward used global statistics


class SyncBatchNormKernel:
    def __init__(self, plain, hooks, node):
        if plain.device != "cpu":
            raise NotImplementedError(f"synced batch norm runs on the CPU only; node '{node}' runs "
                                      f"on {plain.device}")
        self.plain, self.hooks, self.node = plain, hooks, node
        self.layer, self.device = plain.layer, plain.device

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return self.plain.workspace(layer, in_shapes, out_shapes, dtype)

    def forward(self, layer, xs, ys, ws):
        if not (self.hooks.in_step and layer.training and layer.uses_batch_stats()):
            self.plain.forward(layer, xs, ys, ws)
            return
        comm = self.hooks.comm
        self.hooks.synced_forwards += 1
        x = xs[0].reshape(xs[0].shape[0], xs[0].shape[1], -1)
        channels = x.shape[1]
        sums = np.empty(channels + 1)
        sums[:channels] = x.sum(axis=(0, 2), dtype=np.float64)
        sums[channels] = x.shape[0] * x.shape[2]
        comm.allreduce(sums, f"the batch statistics of node '{self.node}' (synced batch norm)")
        m = sums[channels]
        if m <= 1:
            raise InputError(f"{layer.type_name}: Expected more than 1 value per channel when "
                             f"training, got {m:g} over all ranks")
        mean = sums[:channels] / m
        d = x - mean[None, :, None]
        squares = np.einsum("ncs,ncs->c", d, d)
        comm.allreduce(squares, f"the batch variance of node '{self.node}' (synced batch norm)")
        var = squares / m
        if layer.track_running_stats:
            layer.num_batches_tracked[...] += 1
            factor = layer.momentum
            if factor is None:
                factor = 1.0 / float(layer.num_batches_tracked)
            rmean, rvar = layer.running_mean, layer.running_var
            rmean[...] = (1.0 - factor) * rmean + factor * mean
            rvar[...] = (1.0 - factor) * rvar + factor * (squares / (m - 1))
        invstd = 1.0 / np.sqrt(var + layer.eps)
        ws["mean"][...] = mean
        ws["invstd"][...] = invstd
        ws["sums"][2, 0] = m
        ws["use_batch"][0] = _SYNCED
        scale = invstd * layer.weight.data if layer.affine else invstd
        y = d * scale[None, :, None]
        if layer.affine:
            y += layer.bias.data[None, :, None]
        ys[0].reshape(x.shape)[...] = y

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if ws["use_batch"][0] != _SYNCED:
            self.plain.backward(layer, xs, ys, gys, gxs, ws, grads)
            return
        x = xs[0].reshape(xs[0].shape[0], xs[0].shape[1], -1)
        g = gys[0].reshape(x.shape)
        channels = x.shape[1]
        mean, invstd, m = ws["mean"], ws["invstd"], ws["sums"][2, 0]
        d = x - mean[None, :, None]
        local = np.empty(2 * channels)
        local[:channels] = g.sum(axis=(0, 2), dtype=np.float64)
        local[channels:] = np.einsum("ncs,ncs->c", g, d)
        gw, gb = grads.get("weight"), grads.get("bias")
        if gw is not None:
            gw[...] = local[channels:] * invstd
        if gb is not None:
            gb[...] = local[:channels]
        if gxs[0] is None:
            return
        total = self.hooks.comm.allreduce(local.copy(), f"the gradient sums of node "
                                                        f"'{self.node}' (synced batch norm)")
        k = invstd * layer.weight.data if layer.affine else invstd
        a = total[:channels] / m
        b = total[channels:] * invstd * invstd / m
        gx = k[None, :, None] * (g - a[None, :, None] - d * b[None, :, None])
        gxs[0].reshape(x.shape)[...] = gx

    def __repr__(self):
        return f"<synced {self.plain!r}>"
