"""Loop references for ConvTranspose2d: the scatter definition and a plain convolution, its adjoint.

Both take PyTorch's weight layouts and share nothing with minicnn's kernels (nor its conv layer).
"""

import numpy as np


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Every input pixel adds x * kernel into the output, at stride S, shifted by -P, dilated by D.

    x: (N, Cin, H, W); w: (Cin, Cout / groups, kH, kW); returns (N, Cout, OH, OW) in float64.
    """
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (pair(stride), pair(padding),
                                                pair(output_padding), pair(dilation))
    n_, cin, h_, w_ = x.shape
    _, cog, kh_, kw_ = w.shape
    cig = cin // groups
    oh_ = (h_ - 1) * sh - 2 * ph + dh * (kh_ - 1) + oph + 1
    ow_ = (w_ - 1) * sw - 2 * pw + dw * (kw_ - 1) + opw + 1
    y = np.zeros((n_, cog * groups, oh_, ow_))
    for ci in range(cin):
        g = ci // cig
        for co in range(cog):
            for i in range(h_):
                for j in range(w_):
                    for a in range(kh_):
                        for c in range(kw_):
                            oh, ow = i * sh - ph + a * dh, j * sw - pw + c * dw
                            if 0 <= oh < oh_ and 0 <= ow < ow_:
                                y[:, g * cog + co, oh, ow] += (x[:, ci, i, j].astype(np.float64)
                                                               * float(w[ci, co, a, c]))
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d(x, w, stride=1, padding=0, groups=1, dilation=1):
    """PyTorch's conv2d (cross-correlation, zero padding): x (N, C, H, W), w (O, C/g, kH, kW)."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n_, c_, h_, w_ = x.shape
    o_, cpg, kh_, kw_ = w.shape
    opg = o_ // groups
    oh_ = (h_ + 2 * ph - dh * (kh_ - 1) - 1) // sh + 1
    ow_ = (w_ + 2 * pw - dw * (kw_ - 1) - 1) // sw + 1
    out = np.zeros((n_, o_, oh_, ow_))
    for o in range(o_):
        g = o // opg
        for ci in range(cpg):
            for a in range(kh_):
                for c in range(kw_):
                    for i in range(oh_):
                        for j in range(ow_):
                            h, v = i * sh - ph + a * dh, j * sw - pw + c * dw
                            if 0 <= h < h_ and 0 <= v < w_:
                                out[:, o, i, j] += (x[:, g * cpg + ci, h, v].astype(np.float64)
                                                    * float(w[o, ci, a, c]))
    return out
