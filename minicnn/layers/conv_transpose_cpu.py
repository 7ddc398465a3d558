"""CPU kernel of ConvTranspose2d: a GEMM into a column buffer, then col2im (reversed in backward).

Layouts (views of the executor's contiguous buffers), with G groups, Cig/Cog channels per group and
KK = kH * kW:

* x, gx: (N, G, Cig, H*W); y, gy: (N, G, Cog, OH, OW); weight: (G, Cig, Cog*KK);
* a column buffer per thread chunk: (Cog*KK, H*W), row (co*kH + kh)*kW + kw, column ih*W + iw, the
  contribution of input pixel (ih, iw) to output pixel (ih*S - P + kh*D, iw*S - P + kw*D).

Forward, per image: ``cols = W_g^T x_g`` then col2im adds each column entry into its output pixel
(out-of-range targets are cropped away by the padding). The batch is split into T = min(N, threads)
contiguous chunks, one per ``prange`` iteration, so each image (and its output) belongs to exactly
one thread: no races. Backward-data is a plain convolution of gy: im2col(gy) then ``gx_g = W_g
cols``; backward-weight adds ``x_g cols^T`` into the chunk's own partial sum, and the T partials
are summed in chunk order afterwards (deterministic for a given thread count). ``np.dot`` inside
njit is SciPy's BLAS pinned to one thread (``limit_blas_threads``). Layers under ``SERIAL_BELOW``
FLOPs use a single chunk and call the serial chunk function directly, skipping the parallel launch.
"""

import numba
import numpy as np
from numba import prange

from ..jit import cpu_kernel, limit_blas_threads
from ..kernel import Kernel
from ..registry import hookimpl


@cpu_kernel(parallel=False)
def _valid_range(size, stride, offset, out_size):
    """[lo, hi): the input indices i in [0, size) with 0 <= i*stride + offset < out_size."""
    lo = (-offset + stride - 1) // stride if offset < 0 else 0
    hi = (out_size - 1 - offset) // stride + 1
    lo = min(lo, size)
    hi = max(min(hi, size), lo)
    return lo, hi


@cpu_kernel(parallel=False)
def _col2im(col, out, H, W, KH, KW, sh, sw, ph, pw, dh, dw):
    # out: (Cog, OH, OW), already holding the bias; col: (Cog*KH*KW, H*W). Indices are made
    # unsigned (they are in range by construction): numba then skips its negative-index wrap-around,
    # which otherwise blocks vectorisation (2-3x slower here).
    cog, OH, OW = out.shape
    for co in range(cog):
        for i in range(KH):
            ih0, ih1 = _valid_range(H, sh, i * dh - ph, OH)
            for j in range(KW):
                iw0, iw1 = _valid_range(W, sw, j * dw - pw, OW)
                r = (co * KH + i) * KW + j
                off = j * dw - pw
                for ih in range(ih0, ih1):
                    oh = np.uint64(ih * sh - ph + i * dh)
                    base = ih * W
                    for iw in range(iw0, iw1):
                        out[co, oh, np.uint64(iw * sw + off)] += col[r, np.uint64(base + iw)]


@cpu_kernel(parallel=False)
def _im2col(img, col, H, W, KH, KW, sh, sw, ph, pw, dh, dw):
    # img: (Cog, OH, OW) (an output gradient); col: (Cog*KH*KW, H*W), zero where out of range
    cog, OH, OW = img.shape
    for co in range(cog):
        for i in range(KH):
            ih0, ih1 = _valid_range(H, sh, i * dh - ph, OH)
            for j in range(KW):
                iw0, iw1 = _valid_range(W, sw, j * dw - pw, OW)
                r = (co * KH + i) * KW + j
                off = j * dw - pw
                for ih in range(H):
                    base = ih * W
                    if ih < ih0 or ih >= ih1:
                        for iw in range(W):
                            col[r, base + iw] = 0.0
                        continue
                    oh = np.uint64(ih * sh - ph + i * dh)
                    for iw in range(iw0):
                        col[r, base + iw] = 0.0
                    for iw in range(iw0, iw1):
                        col[r, np.uint64(base + iw)] = img[co, oh, np.uint64(iw * sw + off)]
                    for iw in range(iw1, W):
                        col[r, base + iw] = 0.0


@cpu_kernel(parallel=False)
def forward_chunk(x, w, b, has_bias, y, col, n0, n1, H, W, KH, KW, sh, sw, ph, pw, dh, dw):
    """Images n0..n1-1: bias, then cols = W_g^T x_g and col2im, group by group."""
    G = x.shape[1]
    cog = y.shape[2]
    for n in range(n0, n1):
        for g in range(G):
            out = y[n, g]
            for co in range(cog):
                value = b[g * cog + co] if has_bias else 0.0
                out[co, :, :] = value
            np.dot(w[g].T, x[n, g], col)
            _col2im(col, out, H, W, KH, KW, sh, sw, ph, pw, dh, dw)


@cpu_kernel(parallel=False)
def backward_chunk(x, w, gy, gx, gw_acc, gw_tmp, gb_acc, col, need_gx, need_gw, need_gb, n0, n1,
                   H, W, KH, KW, sh, sw, ph, pw, dh, dw):
    """Images n0..n1-1: gx = W_g im2col(gy); gw_acc += x_g im2col(gy)^T; gb_acc += sums of gy."""
    G = x.shape[1]
    cog = gy.shape[2]
    gw_acc[...] = 0.0
    gb_acc[...] = 0.0
    for n in range(n0, n1):
        for g in range(G):
            if need_gx or need_gw:
                _im2col(gy[n, g], col, H, W, KH, KW, sh, sw, ph, pw, dh, dw)
            if need_gx:
                np.dot(w[g], col, gx[n, g])
            if need_gw:
                np.dot(x[n, g], col.T, gw_tmp)
                gw_acc[g] += gw_tmp
            if need_gb:
                for co in range(cog):
                    gb_acc[g * cog + co] += np.sum(gy[n, g, co])


@cpu_kernel
def conv_transpose_forward(x, w, b, has_bias, y, cols, H, W, KH, KW, sh, sw, ph, pw, dh, dw):
    N, T = x.shape[0], cols.shape[0]
    for t in prange(T):
        forward_chunk(x, w, b, has_bias, y, cols[t], t * N // T, (t + 1) * N // T,
                      H, W, KH, KW, sh, sw, ph, pw, dh, dw)


@cpu_kernel
def conv_transpose_backward(x, w, gy, gx, gw_part, gw_tmp, gb_part, cols, need_gx, need_gw,
                            need_gb, H, W, KH, KW, sh, sw, ph, pw, dh, dw):
    N, T = x.shape[0], cols.shape[0]
    for t in prange(T):
        backward_chunk(x, w, gy, gx, gw_part[t], gw_tmp[t], gb_part[t], cols[t], need_gx,
                       need_gw, need_gb, t * N // T, (t + 1) * N // T,
                       H, W, KH, KW, sh, sw, ph, pw, dh, dw)


SERIAL_BELOW = 1 << 22   # FLOPs: smaller layers run in one chunk without a parallel launch


def _geometry(layer, x_shape):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (layer.kernel_size, layer.stride, layer.padding,
                                              layer.dilation)
    return x_shape[2], x_shape[3], kh, kw, sh, sw, ph, pw, dh, dw


class ConvTranspose2dCPU(Kernel):
    layer, device = "ConvTranspose2d", "cpu"

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n, cin, h, w = in_shapes[0]
        g = layer.groups
        cog, kk = layer.out_channels // g, layer.kernel_size[0] * layer.kernel_size[1]
        serial = layer.flops(in_shapes, out_shapes) < SERIAL_BELOW
        chunks = 1 if serial else max(1, min(n, numba.get_num_threads()))
        return {"cols": ((chunks, cog * kk, h * w), dtype),
                "gw_part": ((chunks, g, cin // g, cog * kk), dtype),
                "gw_tmp": ((chunks, cin // g, cog * kk), dtype),
                "gb_part": ((chunks, layer.out_channels), np.float64)}

    @staticmethod
    def _views(layer, x, y):
        n, cin, h, w = x.shape
        g = layer.groups
        x4 = x.reshape(n, g, cin // g, h * w)
        y5 = y.reshape(n, g, layer.out_channels // g, y.shape[2], y.shape[3])
        w3 = layer.weight.data.reshape(g, cin // g, -1)
        return x4, y5, w3

    def forward(self, layer, xs, ys, ws):
        limit_blas_threads()
        x4, y5, w3 = self._views(layer, xs[0], ys[0])
        bias = layer.bias.data if layer.bias is not None else np.zeros(layer.out_channels,
                                                                       xs[0].dtype)
        geometry = _geometry(layer, xs[0].shape)
        if ws["cols"].shape[0] == 1:
            forward_chunk(x4, w3, bias, layer.bias is not None, y5, ws["cols"][0], 0, x4.shape[0],
                          *geometry)
        else:
            conv_transpose_forward(x4, w3, bias, layer.bias is not None, y5, ws["cols"], *geometry)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        gw, gb = grads.get("weight"), grads.get("bias")
        if gxs[0] is None and gw is None and gb is None:
            return
        limit_blas_threads()
        x4, gy5, w3 = self._views(layer, xs[0], gys[0])
        gx4 = x4 if gxs[0] is None else gxs[0].reshape(x4.shape)   # x4: placeholder, not written
        flags = (gxs[0] is not None, gw is not None, gb is not None)
        geometry = _geometry(layer, xs[0].shape)
        if ws["cols"].shape[0] == 1:
            backward_chunk(x4, w3, gy5, gx4, ws["gw_part"][0], ws["gw_tmp"][0], ws["gb_part"][0],
                           ws["cols"][0], *flags, 0, x4.shape[0], *geometry)
        else:
            conv_transpose_backward(x4, w3, gy5, gx4, ws["gw_part"], ws["gw_tmp"], ws["gb_part"],
                                    ws["cols"], *flags, *geometry)
        if gw is not None:      # fixed-order sum of the per-chunk partials
            np.sum(ws["gw_part"], axis=0, out=gw.reshape(ws["gw_part"].shape[1:]))
        if gb is not None:
            gb[...] = np.sum(ws["gb_part"], axis=0)


@hookimpl
def minicnn_kernels():
    return [ConvTranspose2dCPU]
