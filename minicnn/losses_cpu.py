"""CPU kernels of the losses.

Two kernel families cover every loss: one for class-index losses (CrossEntropyLoss, and NLLLoss as
the same arithmetic without the log-softmax) and one for element-wise losses chosen by an op code.
Each direction has a serial driver for small inputs (a parallel launch costs microseconds) and a
``prange`` driver for large ones, both calling the same per-chunk (per-row) function.

Numerics and determinism: every per-element value is computed in float64. Sums are taken over
fixed-size chunks in parallel (each chunk serially, into its own slot of a float64 scratch array),
then the chunk sums are added serially in chunk order: the result depends on the shapes only, never
on the number of threads. Class scores are viewed as ``(N, C, S)`` (S = product of the spatial
axes, 1 for ``(N, C)``) and targets as ``(N, S)``; a "row" is one (n, s) position, handled by one
thread.
"""

import math

import numpy as np
from numba import prange

from .errors import InputError
from .jit import cpu_kernel
from .kernel import Kernel
from .registry import hookimpl

CHUNK = 4096             # elements per partial sum of the element-wise losses
CLASS_CHUNK = 16384      # class scores (rows x C) per partial sum of the class-index losses
PARALLEL_MIN = 1 << 15   # elements from which the parallel kernels run (a launch costs us)

MSE, L1, SMOOTH_L1, BCE_LOGITS, BCE = range(5)

_NO_WEIGHT = np.ones(1, np.float64)   # stands for an absent weight array (never read)


def _num_chunks(n, size):
    return max(1, -(-n // size))


def _pick(n, parallel, serial):
    """The parallel kernel for ``n`` elements or more, else the serial one (same arithmetic)."""
    return parallel if n >= PARALLEL_MIN else serial


def _ordered_sum(values):
    """Sum of a float64 array in index order (fixed, whatever the thread count)."""
    total = 0.0
    for v in values.tolist():
        total += v
    return total


# -- class-index losses ---------------------------------------------------------------------------

@cpu_kernel(parallel=False)
def _class_rows_forward(x, t, w, ignore_index, smoothing, fused, start, stop, lse):
    """Rows [start, stop): (sum of row losses, sum of target weights). ``lse`` keeps log-sum-exp per
    row (0 when not ``fused``, i.e. NLL over log-probabilities) for the backward pass."""
    n_class, n_inner = x.shape[1], x.shape[2]
    loss_acc = 0.0
    weight_acc = 0.0
    for r in range(start, stop):
        b = r // n_inner
        s = r - b * n_inner
        target = t[b, s]
        if target == ignore_index:
            lse[r] = 0.0
            continue
        z = 0.0
        if fused:   # log-sum-exp around the row maximum: exp never overflows
            m = -np.inf
            for c in range(n_class):
                v = np.float64(x[b, c, s])
                if v > m:
                    m = v
            acc = 0.0
            for c in range(n_class):
                acc += math.exp(np.float64(x[b, c, s]) - m)
            z = m + math.log(acc)
        lse[r] = z
        wt = w[target]
        row = (1.0 - smoothing) * wt * (z - np.float64(x[b, target, s]))
        if smoothing != 0.0:
            acc = 0.0
            for c in range(n_class):
                acc += w[c] * (z - np.float64(x[b, c, s]))
            row += smoothing / n_class * acc
        loss_acc += row
        weight_acc += wt
    return loss_acc, weight_acc


@cpu_kernel(parallel=False)
def _class_row_backward(x, t, w, w_sum, ignore_index, smoothing, fused, lse, scale, r, gx):
    """One row: gx = scale ((1 - e) w[t] (p - onehot(t)) + e / C (W p - w)), p = softmax (0 when
    not fused), W = sum of the class weights; zero for an ignored row."""
    n_class, n_inner = x.shape[1], x.shape[2]
    b = r // n_inner
    s = r - b * n_inner
    target = t[b, s]
    if target == ignore_index:
        for c in range(n_class):
            gx[b, c, s] = 0.0
        return
    share = smoothing / n_class
    wt = (1.0 - smoothing) * w[target]
    coef = wt + share * w_sum
    z = lse[r]
    for c in range(n_class):
        p = math.exp(np.float64(x[b, c, s]) - z) if fused else 0.0
        g = coef * p - share * w[c]
        if c == target:
            g -= wt
        gx[b, c, s] = scale * g


@cpu_kernel(parallel=False)
def class_loss_forward_serial(x, t, w, ignore_index, smoothing, fused, rows_per_chunk, lse,
                              loss_part, weight_part):
    n_rows = x.shape[0] * x.shape[2]
    for k in range(loss_part.size):
        loss_part[k], weight_part[k] = _class_rows_forward(
            x, t, w, ignore_index, smoothing, fused, k * rows_per_chunk,
            min(n_rows, (k + 1) * rows_per_chunk), lse)


@cpu_kernel
def class_loss_forward_parallel(x, t, w, ignore_index, smoothing, fused, rows_per_chunk, lse,
                                loss_part, weight_part):
    n_rows = x.shape[0] * x.shape[2]
    for k in prange(loss_part.size):
        loss_part[k], weight_part[k] = _class_rows_forward(
            x, t, w, ignore_index, smoothing, fused, k * rows_per_chunk,
            min(n_rows, (k + 1) * rows_per_chunk), lse)


@cpu_kernel(parallel=False)
def class_loss_backward_serial(x, t, w, w_sum, ignore_index, smoothing, fused, lse, scale, gx):
    for r in range(x.shape[0] * x.shape[2]):
        _class_row_backward(x, t, w, w_sum, ignore_index, smoothing, fused, lse, scale, r, gx)


@cpu_kernel
def class_loss_backward_parallel(x, t, w, w_sum, ignore_index, smoothing, fused, lse, scale, gx):
    for r in prange(x.shape[0] * x.shape[2]):
        _class_row_backward(x, t, w, w_sum, ignore_index, smoothing, fused, lse, scale, r, gx)


class _ClassIndexLossCPU(Kernel):
    device = "cpu"
    fused = True

    @staticmethod
    def _rows_per_chunk(n_class):
        return max(1, CLASS_CHUNK // max(1, n_class))

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        shape = in_shapes[0]
        n_class = shape[1]
        n_rows = shape[0] * int(np.prod(shape[2:], dtype=np.int64))
        chunks = _num_chunks(n_rows, self._rows_per_chunk(n_class))
        return {"lse": ((n_rows,), np.float64), "loss_part": ((chunks,), np.float64),
                "weight_part": ((chunks,), np.float64), "w": ((n_class,), np.float64),
                "total": ((1,), np.float64)}

    def _check_targets(self, layer, t, n_class):
        if t.size == 0:
            return
        if t.min() >= 0 and t.max() < n_class:
            return
        bad = t[(t != layer.ignore_index) & ((t < 0) | (t >= n_class))]
        if bad.size:
            raise InputError(f"{layer.type_name}: target value {int(bad.flat[0])} is out of range; "
                             f"class indices must be in [0, {n_class}) for C = {n_class} classes "
                             f"(or equal ignore_index = {layer.ignore_index})")

    def forward(self, layer, xs, ys, ws):
        x, t = xs
        n_batch, n_class = x.shape[:2]
        self._check_targets(layer, t, n_class)
        w = ws["w"]
        w[:] = 1.0 if layer.weight is None else layer.weight
        smoothing = getattr(layer, "label_smoothing", 0.0) if self.fused else 0.0
        kernel = _pick(x.size, class_loss_forward_parallel, class_loss_forward_serial)
        kernel(x.reshape(n_batch, n_class, -1), t.reshape(n_batch, -1), w, layer.ignore_index,
               smoothing, self.fused, self._rows_per_chunk(n_class), ws["lse"], ws["loss_part"],
               ws["weight_part"])
        loss, weight = _ordered_sum(ws["loss_part"]), _ordered_sum(ws["weight_part"])
        ws["total"][0] = weight
        if layer.reduction == "mean":
            loss = loss / weight if weight != 0.0 else math.nan   # all ignored: NaN, as PyTorch
        ys[0][...] = loss

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, t = xs
        n_batch, n_class = x.shape[:2]
        scale = float(gys[0])
        if layer.reduction == "mean":
            total = float(ws["total"][0])
            scale = scale / total if total != 0.0 else 0.0
        smoothing = getattr(layer, "label_smoothing", 0.0) if self.fused else 0.0
        w = ws["w"]
        kernel = _pick(x.size, class_loss_backward_parallel, class_loss_backward_serial)
        kernel(x.reshape(n_batch, n_class, -1), t.reshape(n_batch, -1), w, _ordered_sum(w),
               layer.ignore_index, smoothing, self.fused, ws["lse"], scale,
               gxs[0].reshape(n_batch, n_class, -1))


class CrossEntropyLossCPU(_ClassIndexLossCPU):
    layer = "CrossEntropyLoss"


class NLLLossCPU(_ClassIndexLossCPU):
    layer = "NLLLoss"
    fused = False


# -- element-wise losses --------------------------------------------------------------------------

@cpu_kernel(parallel=False)
def _elementwise_chunk(x, y, w, pw, has_w, has_pw, op, beta, start, stop):
    """Sum of the element losses of flat ``x`` (prediction), ``y`` (target) over [start, stop)."""
    acc = 0.0
    for i in range(start, stop):
        v = np.float64(x[i])
        tv = np.float64(y[i])
        d = v - tv
        if op == MSE:
            e = d * d
        elif op == L1:
            e = abs(d)
        elif op == SMOOTH_L1:
            a = abs(d)
            e = 0.5 * a * a / beta if a < beta else a - 0.5 * beta
        elif op == BCE_LOGITS:
            lw = 1.0 + (pw[i] - 1.0) * tv if has_pw else 1.0
            e = (1.0 - tv) * v + lw * (math.log1p(math.exp(-abs(v))) + max(-v, 0.0))
        else:   # BCE over probabilities, logs clamped at -100
            e = -(tv * max(np.log(v), -100.0) + (1.0 - tv) * max(np.log(1.0 - v), -100.0))
        if has_w:
            e *= w[i]
        acc += e
    return acc


@cpu_kernel(parallel=False)
def _elementwise_grad(x, y, w, pw, has_w, has_pw, op, beta, scale, i, gx):
    v = np.float64(x[i])
    tv = np.float64(y[i])
    d = v - tv
    if op == MSE:
        g = 2.0 * d
    elif op == L1:
        g = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
    elif op == SMOOTH_L1:
        if abs(d) < beta:
            g = d / beta
        else:
            g = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
    elif op == BCE_LOGITS:
        if v >= 0:
            sig = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            sig = e / (1.0 + e)
        p = pw[i] if has_pw else 1.0
        g = (1.0 + (p - 1.0) * tv) * sig - p * tv
    else:
        g = (v - tv) / max((1.0 - v) * v, 1e-12)
    if has_w:
        g *= w[i]
    gx[i] = scale * g


@cpu_kernel(parallel=False)
def elementwise_loss_forward_serial(x, y, w, pw, has_w, has_pw, op, beta, partial):
    for k in range(partial.size):
        partial[k] = _elementwise_chunk(x, y, w, pw, has_w, has_pw, op, beta, k * CHUNK,
                                        min(x.size, (k + 1) * CHUNK))


@cpu_kernel
def elementwise_loss_forward_parallel(x, y, w, pw, has_w, has_pw, op, beta, partial):
    for k in prange(partial.size):
        partial[k] = _elementwise_chunk(x, y, w, pw, has_w, has_pw, op, beta, k * CHUNK,
                                        min(x.size, (k + 1) * CHUNK))


@cpu_kernel(parallel=False)
def elementwise_loss_backward_serial(x, y, w, pw, has_w, has_pw, op, beta, scale, gx):
    for i in range(x.size):
        _elementwise_grad(x, y, w, pw, has_w, has_pw, op, beta, scale, i, gx)


@cpu_kernel
def elementwise_loss_backward_parallel(x, y, w, pw, has_w, has_pw, op, beta, scale, gx):
    for i in prange(x.size):
        _elementwise_grad(x, y, w, pw, has_w, has_pw, op, beta, scale, i, gx)


class _ElementwiseLossCPU(Kernel):
    device = "cpu"
    op = MSE

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n = int(np.prod(in_shapes[0], dtype=np.int64))
        ws = {"partial": ((_num_chunks(n, CHUNK),), np.float64)}
        for name in ("weight", "pos_weight"):
            if getattr(layer, name, None) is not None:
                ws[name] = (tuple(in_shapes[0]), np.float64)
        return ws

    def _weights(self, layer, ws, shape, fill):
        """Flat float64 (weight, pos_weight) broadcast to the prediction, or the placeholder."""
        out = []
        for name in ("weight", "pos_weight"):
            value = getattr(layer, name, None)
            if value is None:
                out.append(_NO_WEIGHT)
            else:
                if fill:
                    np.copyto(ws[name], np.broadcast_to(value, shape))
                out.append(ws[name].reshape(-1))
        return out

    def _beta(self, layer):
        return getattr(layer, "beta", 1.0)

    def _check(self, layer, x):
        pass

    def forward(self, layer, xs, ys, ws):
        x, y = xs
        self._check(layer, x)
        w, pw = self._weights(layer, ws, x.shape, fill=True)
        kernel = _pick(x.size, elementwise_loss_forward_parallel, elementwise_loss_forward_serial)
        kernel(x.reshape(-1), y.reshape(-1), w, pw, w is not _NO_WEIGHT, pw is not _NO_WEIGHT,
               self.op, self._beta(layer), ws["partial"])
        total = _ordered_sum(ws["partial"])
        ys[0][...] = total / x.size if layer.reduction == "mean" else total

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, y = xs
        scale = float(gys[0])
        if layer.reduction == "mean":
            scale /= x.size
        w, pw = self._weights(layer, ws, x.shape, fill=False)
        kernel = _pick(x.size, elementwise_loss_backward_parallel,
                       elementwise_loss_backward_serial)
        kernel(x.reshape(-1), y.reshape(-1), w, pw, w is not _NO_WEIGHT, pw is not _NO_WEIGHT,
               self.op, self._beta(layer), scale, gxs[0].reshape(-1))


class MSELossCPU(_ElementwiseLossCPU):
    layer, op = "MSELoss", MSE


class L1LossCPU(_ElementwiseLossCPU):
    layer, op = "L1Loss", L1


class SmoothL1LossCPU(_ElementwiseLossCPU):
    layer, op = "SmoothL1Loss", SMOOTH_L1


class BCEWithLogitsLossCPU(_ElementwiseLossCPU):
    layer, op = "BCEWithLogitsLoss", BCE_LOGITS


class BCELossCPU(_ElementwiseLossCPU):
    layer, op = "BCELoss", BCE

    def _check(self, layer, x):
        if x.size and not (x.min() >= 0.0 and x.max() <= 1.0):
            raise InputError(f"BCELoss: the prediction must hold probabilities in [0, 1], found "
                             f"values in [{float(x.min())}, {float(x.max())}] (use "
                             f"BCEWithLogitsLoss for logits)")


@hookimpl
def minicnn_kernels():
    return [CrossEntropyLossCPU, NLLLossCPU, MSELossCPU, L1LossCPU, SmoothL1LossCPU,
            BCEWithLogitsLossCPU, BCELossCPU]
