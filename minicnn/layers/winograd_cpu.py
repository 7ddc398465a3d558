"""Winograd F(2x2, 3x3) CPU kernels for 3x3 stride-1 convolutions (forward, input gradient through
the forward kernel with flipped weights, weight gradient), used by ``conv_cpu`` where they apply.

A 4x4 input patch d and a 3x3 filter g give a 2x2 output tile  Y = A^T [(G g G^T) * (B^T d B)] A.
The elementwise product summed over input channels is, for each of the 16 positions xi = 4*i + j,
one GEMM  M[xi] (Og, tiles) = U[xi] (Og, Cg) @ V[xi] (Cg, tiles). The transform matrices hold only
0, +-1 and +-1/2, so float32 results stay within a few ulps of the direct sum. Work is split into
contiguous ranges of output tiles (over all images), processed in batches of ``mt`` tiles.
"""

import numpy as np
from numba import prange

from ..jit import cpu_kernel

WINO_PAD = 48          # elements between Winograd's 16 planes (keeps their addresses off 4 KiB)


@cpu_kernel(parallel=False)
def _wino_load(xf, base, h, w, H, W):
    """x at (h, w) of the plane starting at flat index ``base``; zero outside the plane."""
    if h < 0 or h >= H or w < 0 or w >= W:
        return 0.0
    return xf[np.uint64(base + h * W + w)]


@cpu_kernel(parallel=False)
def _wino_input(x, s, e, per_img, TW, ph, pw, vf, vs):
    """vf[xi*vs + c*m + t - s] = (B^T d B)[xi] for the tiles t in [s, e) (m = e - s); d is the 4x4
    patch of x[n, c] whose corner is (2*th - ph, 2*tw - pw), zero outside the input. The plane
    stride vs is kept off multiples of 4 KiB: 16 store streams 4 KiB apart would thrash L1 sets."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xf = x.reshape(-1)
    m = e - s
    cm = vs
    n0 = s // per_img
    th0 = (s - n0 * per_img) // TW
    tw0 = s - n0 * per_img - th0 * TW
    for c in range(C):
        n, th, tw = n0, th0, tw0
        for j in range(m):
            plane = (n * C + c) * H * W
            h0 = 2 * th - ph
            w0 = 2 * tw - pw
            if h0 >= 0 and h0 + 4 <= H and w0 >= 0 and w0 + 4 <= W:
                b0 = plane + h0 * W + w0
                r0 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
                b0 += W
                r1 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
                b0 += W
                r2 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
                b0 += W
                r3 = xf[np.uint64(b0)], xf[np.uint64(b0 + 1)], xf[np.uint64(b0 + 2)], \
                    xf[np.uint64(b0 + 3)]
            else:
                r0 = (_wino_load(xf, plane, h0, w0, H, W), _wino_load(xf, plane, h0, w0 + 1, H, W),
                      _wino_load(xf, plane, h0, w0 + 2, H, W),
                      _wino_load(xf, plane, h0, w0 + 3, H, W))
                r1 = (_wino_load(xf, plane, h0 + 1, w0, H, W),
                      _wino_load(xf, plane, h0 + 1, w0 + 1, H, W),
                      _wino_load(xf, plane, h0 + 1, w0 + 2, H, W),
                      _wino_load(xf, plane, h0 + 1, w0 + 3, H, W))
                r2 = (_wino_load(xf, plane, h0 + 2, w0, H, W),
                      _wino_load(xf, plane, h0 + 2, w0 + 1, H, W),
                      _wino_load(xf, plane, h0 + 2, w0 + 2, H, W),
                      _wino_load(xf, plane, h0 + 2, w0 + 3, H, W))
                r3 = (_wino_load(xf, plane, h0 + 3, w0, H, W),
                      _wino_load(xf, plane, h0 + 3, w0 + 1, H, W),
                      _wino_load(xf, plane, h0 + 3, w0 + 2, H, W),
                      _wino_load(xf, plane, h0 + 3, w0 + 3, H, W))
            d00, d01, d02, d03 = r0
            d10, d11, d12, d13 = r1
            d20, d21, d22, d23 = r2
            d30, d31, d32, d33 = r3
            # T = B^T d (rows of d combined), then V = T B (columns of T combined)
            t00, t01, t02, t03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
            t10, t11, t12, t13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
            t20, t21, t22, t23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
            t30, t31, t32, t33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
            k = c * m + j
            vf[np.uint64(k)] = t00 - t02
            vf[np.uint64(cm + k)] = t01 + t02
            vf[np.uint64(2 * cm + k)] = t02 - t01
            vf[np.uint64(3 * cm + k)] = t01 - t03
            vf[np.uint64(4 * cm + k)] = t10 - t12
            vf[np.uint64(5 * cm + k)] = t11 + t12
            vf[np.uint64(6 * cm + k)] = t12 - t11
            vf[np.uint64(7 * cm + k)] = t11 - t13
            vf[np.uint64(8 * cm + k)] = t20 - t22
            vf[np.uint64(9 * cm + k)] = t21 + t22
            vf[np.uint64(10 * cm + k)] = t22 - t21
            vf[np.uint64(11 * cm + k)] = t21 - t23
            vf[np.uint64(12 * cm + k)] = t30 - t32
            vf[np.uint64(13 * cm + k)] = t31 + t32
            vf[np.uint64(14 * cm + k)] = t32 - t31
            vf[np.uint64(15 * cm + k)] = t31 - t33
            tw += 1
            if tw == TW:
                tw = 0
                th += 1
                if th * TW == per_img:
                    th = 0
                    n += 1


@cpu_kernel(parallel=False)
def _wino_output(mf, ms, b, s, e, per_img, TW, y):
    """y[n, o, 2*th + i, 2*tw + j] = (A^T M A)[i, j] + b[o] for the tiles t in [s, e) (clipped at
    the output's edge); mf[xi*ms + o*m + t - s] holds the 4x4 transformed products of tile t."""
    O, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    yf = y.reshape(-1)
    m = e - s
    om = ms
    n0 = s // per_img
    th0 = (s - n0 * per_img) // TW
    tw0 = s - n0 * per_img - th0 * TW
    has_bias = b.size > 0
    for o in range(O):
        bo = b[o] if has_bias else 0.0
        n, th, tw = n0, th0, tw0
        for j in range(m):
            k = o * m + j
            m00, m01 = mf[np.uint64(k)], mf[np.uint64(om + k)]
            m02, m03 = mf[np.uint64(2 * om + k)], mf[np.uint64(3 * om + k)]
            m10, m11 = mf[np.uint64(4 * om + k)], mf[np.uint64(5 * om + k)]
            m12, m13 = mf[np.uint64(6 * om + k)], mf[np.uint64(7 * om + k)]
            m20, m21 = mf[np.uint64(8 * om + k)], mf[np.uint64(9 * om + k)]
            m22, m23 = mf[np.uint64(10 * om + k)], mf[np.uint64(11 * om + k)]
            m30, m31 = mf[np.uint64(12 * om + k)], mf[np.uint64(13 * om + k)]
            m32, m33 = mf[np.uint64(14 * om + k)], mf[np.uint64(15 * om + k)]
            # R = A^T M (two rows), then Y = R A
            r00, r01, r02, r03 = m00 + m10 + m20, m01 + m11 + m21, m02 + m12 + m22, m03 + m13 + m23
            r10, r11, r12, r13 = m10 - m20 - m30, m11 - m21 - m31, m12 - m22 - m32, m13 - m23 - m33
            h = 2 * th
            w = 2 * tw
            base = ((n * O + o) * OH + h) * OW + w
            yf[np.uint64(base)] = r00 + r01 + r02 + bo
            if w + 1 < OW:
                yf[np.uint64(base + 1)] = r01 - r02 - r03 + bo
            if h + 1 < OH:
                yf[np.uint64(base + OW)] = r10 + r11 + r12 + bo
                if w + 1 < OW:
                    yf[np.uint64(base + OW + 1)] = r11 - r12 - r13 + bo
            tw += 1
            if tw == TW:
                tw = 0
                th += 1
                if th * TW == per_img:
                    th = 0
                    n += 1


@cpu_kernel
def winograd_conv3x3(x, u, b, y, vbuf, mbuf, ph, pw, mt):
    """y (N, O, OH, OW) = the stride-1 3x3 cross-correlation of x (N, C, H, W), padded by (ph, pw)
    at the top/left (any integer; zeros wherever the patch leaves x), with u (G, 16, Og, Cg) =
    G w G^T, plus b (O,) (empty: no bias). Each chunk owns a contiguous range of output tiles."""
    N, C = x.shape[0], x.shape[1]
    O, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    G, Og, Cg = u.shape[0], u.shape[2], u.shape[3]
    TW = (OW + 1) // 2
    per_img = ((OH + 1) // 2) * TW
    total = N * per_img
    nchunks = vbuf.shape[0]
    for chunk in prange(nchunks):
        t0 = chunk * total // nchunks
        t1 = (chunk + 1) * total // nchunks
        for s in range(t0, t1, mt):
            e = min(t1, s + mt)
            m = e - s
            vs = C * m + WINO_PAD
            ms = O * m + WINO_PAD
            vf = vbuf[chunk]
            mf = mbuf[chunk]
            _wino_input(x, s, e, per_img, TW, ph, pw, vf, vs)
            for g in range(G):
                for xi in range(16):
                    v0 = xi * vs + g * Cg * m
                    m0 = xi * ms + g * Og * m
                    np.dot(u[g, xi], vf[v0:v0 + Cg * m].reshape((Cg, m)),
                           mf[m0:m0 + Og * m].reshape((Og, m)))
            _wino_output(mf, ms, b, s, e, per_img, TW, y)


@cpu_kernel(parallel=False)
def _wino_gy(gy, s, e, per_img, TW, mf, ms):
    """mf[xi*ms + o*m + t - s] = (A gY A^T)[xi] for the tiles t in [s, e): gY the 2x2
    output-gradient tile of gy[n, o] at (2*th, 2*tw), zero past the output's edge (the adjoint of
    _wino_output)."""
    O, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    gf = gy.reshape(-1)
    m = e - s
    n0 = s // per_img
    th0 = (s - n0 * per_img) // TW
    tw0 = s - n0 * per_img - th0 * TW
    for o in range(O):
        n, th, tw = n0, th0, tw0
        for j in range(m):
            h = 2 * th
            w = 2 * tw
            base = ((n * O + o) * OH + h) * OW + w
            y00 = gf[np.uint64(base)]
            y01 = gf[np.uint64(base + 1)] if w + 1 < OW else 0.0
            y10 = gf[np.uint64(base + OW)] if h + 1 < OH else 0.0
            y11 = gf[np.uint64(base + OW + 1)] if w + 1 < OW and h + 1 < OH else 0.0
            # rows of A gY: (y0, y0 + y1, y0 - y1, -y1); row (p, q) times A^T: (p, p+q, p-q, -q)
            k = o * m + j
            for i in range(4):
                if i == 0:
                    p, q = y00, y01
                elif i == 1:
                    p, q = y00 + y10, y01 + y11
                elif i == 2:
                    p, q = y00 - y10, y01 - y11
                else:
                    p, q = -y10, -y11
                row = 4 * i * ms + k
                mf[np.uint64(row)] = p
                mf[np.uint64(row + ms)] = p + q
                mf[np.uint64(row + 2 * ms)] = p - q
                mf[np.uint64(row + 3 * ms)] = -q
            tw += 1
            if tw == TW:
                tw = 0
                th += 1
                if th * TW == per_img:
                    th = 0
                    n += 1


@cpu_kernel
def winograd_grad_weight3x3(x, gy, gu, gus, gwt, vbuf, mbuf, ph, pw, mt):
    """gu (G, 16, Og, Cg) = sum over tiles of (A gY A^T) * (B^T d B), the gradient of U = G w G^T;
    the weight gradient is then G^T gu G (``_wino_weights_grad``). Partial sums per chunk in gus
    (nchunks, G, 16, Og, Cg), added in chunk order at the end (bit-reproducible)."""
    N, C = x.shape[0], x.shape[1]
    O, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    G, Og, Cg = gu.shape[0], gu.shape[2], gu.shape[3]
    TW = (OW + 1) // 2
    per_img = ((OH + 1) // 2) * TW
    total = N * per_img
    nchunks = vbuf.shape[0]
    for chunk in prange(nchunks):
        gus[chunk] = 0.0
        tw_ = gwt[chunk].reshape(-1)[:Og * Cg].reshape((Og, Cg))
        t0 = chunk * total // nchunks
        t1 = (chunk + 1) * total // nchunks
        for s in range(t0, t1, mt):
            e = min(t1, s + mt)
            m = e - s
            vs = C * m + WINO_PAD
            ms = O * m + WINO_PAD
            vf = vbuf[chunk]
            mf = mbuf[chunk]
            _wino_input(x, s, e, per_img, TW, ph, pw, vf, vs)
            _wino_gy(gy, s, e, per_img, TW, mf, ms)
            for g in range(G):
                for xi in range(16):
                    v0 = xi * vs + g * Cg * m
                    m0 = xi * ms + g * Og * m
                    np.dot(mf[m0:m0 + Og * m].reshape((Og, m)),
                           vf[v0:v0 + Cg * m].reshape((Cg, m)).T, tw_)
                    acc = gus[chunk, g, xi]
                    for a in range(Og):
                        for b in range(Cg):
                            acc[a, b] += tw_[a, b]
    guf = gu.reshape(-1)
    gusf = gus.reshape((nchunks, guf.size))
    for i in prange(guf.size):
        t = gusf[0, i]
        for c in range(1, nchunks):
            t += gusf[c, i]
        guf[i] = t


@cpu_kernel(parallel=False)
def winograd_weights_grad(gu, gw):
    """gw[g, a, b] = G^T gu[g, :, a, b] G (adjoint of _wino_weights); gw (groups, A, B, 3, 3)."""
    for g in range(gu.shape[0]):
        for a in range(gu.shape[2]):
            for b in range(gu.shape[3]):
                for j in range(4):       # Z = G^T X, column j
                    x0, x1 = gu[g, j, a, b], gu[g, 4 + j, a, b]
                    x2, x3 = gu[g, 8 + j, a, b], gu[g, 12 + j, a, b]
                    z0, z1, z2 = x0 + 0.5 * (x1 + x2), 0.5 * (x1 - x2), 0.5 * (x1 + x2) + x3
                    if j == 0:
                        z00, z10, z20 = z0, z1, z2
                    elif j == 1:
                        z01, z11, z21 = z0, z1, z2
                    elif j == 2:
                        z02, z12, z22 = z0, z1, z2
                    else:
                        z03, z13, z23 = z0, z1, z2
                gw[g, a, b, 0, 0] = z00 + 0.5 * (z01 + z02)     # gw = Z G
                gw[g, a, b, 0, 1] = 0.5 * (z01 - z02)
                gw[g, a, b, 0, 2] = 0.5 * (z01 + z02) + z03
                gw[g, a, b, 1, 0] = z10 + 0.5 * (z11 + z12)
                gw[g, a, b, 1, 1] = 0.5 * (z11 - z12)
                gw[g, a, b, 1, 2] = 0.5 * (z11 + z12) + z13
                gw[g, a, b, 2, 0] = z20 + 0.5 * (z21 + z22)
                gw[g, a, b, 2, 1] = 0.5 * (z21 - z22)
                gw[g, a, b, 2, 2] = 0.5 * (z21 + z22) + z23


@cpu_kernel(parallel=False)
def _wino_weights(w, u):
    """u[g, 4*i + j, a, b] = (G w[g, a, b] G^T)[i, j] for 3x3 filters w (groups, A, B, 3, 3)."""
    for g in range(w.shape[0]):
        for a in range(w.shape[1]):
            for b in range(w.shape[2]):
                for i in range(4):
                    # row i of T = G f (f the 3x3 filter): T[i, k] = sum_r G[i, r] f[r, k]
                    if i == 0:
                        t0, t1, t2 = w[g, a, b, 0, 0], w[g, a, b, 0, 1], w[g, a, b, 0, 2]
                    elif i == 3:
                        t0, t1, t2 = w[g, a, b, 2, 0], w[g, a, b, 2, 1], w[g, a, b, 2, 2]
                    else:
                        sign = 1.0 if i == 1 else -1.0
                        t0 = 0.5 * (w[g, a, b, 0, 0] + sign * w[g, a, b, 1, 0] + w[g, a, b, 2, 0])
                        t1 = 0.5 * (w[g, a, b, 0, 1] + sign * w[g, a, b, 1, 1] + w[g, a, b, 2, 1])
                        t2 = 0.5 * (w[g, a, b, 0, 2] + sign * w[g, a, b, 1, 2] + w[g, a, b, 2, 2])
                    # U[i, :] = T[i, :] G^T
                    u[g, 4 * i, a, b] = t0
                    u[g, 4 * i + 1, a, b] = 0.5 * (t0 + t1 + t2)
                    u[g, 4 * i + 2, a, b] = 0.5 * (t0 - t1 + t2)
                    u[g, 4 * i + 3, a, b] = t2


def winograd_weights(w, groups, flip):
    """U = G g G^T for every 3x3 filter g of w (O, Cg, 3, 3), laid out (groups, 16, Og, Cg).

    With ``flip`` the filters of the input gradient: rotated by 180 degrees and with the two channel
    axes swapped within each group, laid out (groups, 16, Cg, Og). (Computed in a small jitted loop,
    not with numpy's BLAS, whose spinning threads would slow the numba kernels that follow.)
    """
    o, cg = w.shape[:2]
    w5 = w.reshape(groups, o // groups, cg, 3, 3)
    if flip:
        w5 = w5.transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    w5 = np.ascontiguousarray(w5)
    u = np.empty((groups, 16) + w5.shape[1:3], w.dtype)
    _wino_weights(w5, u)
    return u
