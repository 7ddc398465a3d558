"""CUDA kernels of the losses (the arithmetic of ``losses_cpu``, in float64, on the device).

Class-index losses (CrossEntropyLoss, NLLLoss): one thread per row (an ``(n, s)`` position of the
``(N, C, S)`` view) computes the row's log-sum-exp, loss and target weight into float64 workspace
arrays; the reduction sums them in fixed-size chunks (one thread per chunk, serially) and then the
chunk sums serially in one thread: the result depends on the shapes only, never on the launch
configuration, and needs no atomics. Backward is one thread per score element and reads the
output gradient and the total weight from device memory, so a training step copies nothing back
except what the user asks for (the loss value).

Element-wise losses (MSE, L1, SmoothL1, BCEWithLogits, BCE): the same chunked sums; ``weight`` and
``pos_weight`` are broadcast to the prediction's shape on the device once per call.

Launches. A forward pass is two launches (the rows or elements, then ``*_finish``) plus the
weight broadcasts of the element-wise losses: one block of ``FINISH_THREADS`` makes the chunk
sums itself when there are at most that many chunks (``chunk_sums`` runs first otherwise), and
the class weights are read where they are (1 for every class without ``weight``). Small networks
on a GPU are bound by launches; this was six launches per cross-entropy forward.

Bad input (a class target outside ``[0, C)`` that is not ``ignore_index``; a BCELoss probability
outside ``[0, 1]``) sets a device flag; the finish kernel moves it aside, clears it for the next
call and makes the loss NaN. The kernel class reads it after a forward pass (one 4-byte copy)
and reports it as the CPU kernels do. Under ``Loss.compute`` (the value is not read back, so
nothing may wait for the GPU) the flag is read at the start of the loss's next forward pass, and
the error then names the previous call; the NaN value shows it to anyone who reads that value.
"""

import math

import numpy as np

from .cuda_device import const_array, cuda, flat, launch, launch_blocks, zeroed_once
from .errors import InputError
from .kernel import Kernel
from .losses_cpu import BCE, BCE_LOGITS, L1, MSE, SMOOTH_L1
from .registry import hookimpl

CHUNK = 1024    # values per partial sum
FINISH_THREADS = 64   # the finish kernels' one block (makes up to this many chunk sums itself)


def _chunks(n):
    return max(1, -(-n // CHUNK))


@cuda.jit(device=True)
def _chunk_total(vals, k, n):
    """The sum of vals[k*CHUNK : min(n, (k+1)*CHUNK)], serially (fixed order)."""
    acc = 0.0
    stop = (k + 1) * CHUNK
    if stop > n:
        stop = n
    for i in range(k * CHUNK, stop):
        acc += vals[i]
    return acc


@cuda.jit
def chunk_sums(vals, parts, n):
    """parts[k] = the sum of chunk k of vals (for more chunks than a finish block makes)."""
    for k in range(cuda.grid(1), parts.size, cuda.gridsize(1)):
        parts[k] = _chunk_total(vals, k, n)


@cuda.jit(device=True)
def _block_chunk_sums(vals, parts, n):
    """Inside a finish kernel's block: parts[k] = the sum of chunk k, thread j taking chunks j,
    j + blockDim, ...; visible to the whole block on return."""
    for k in range(cuda.threadIdx.x, parts.size, cuda.blockDim.x):
        parts[k] = _chunk_total(vals, k, n)
    cuda.syncthreads()


@cuda.jit(device=True)
def _take_flag(bad):
    """Thread 0 of a finish kernel: bad[1] = bad[0] (set by the values kernel), bad[0] cleared for
    the next call; returns whether it was set."""
    flag = bad[0]
    bad[1] = flag
    bad[0] = 0
    return flag != 0


@cuda.jit
def broadcast_fill(src, dst, hp):
    """dst (flat, shape hp[1:1+nd]) = src broadcast, src strides (in elements, 0 on broadcast
    axes) in hp[1+nd:1+2nd]; float64."""
    nd = hp[0]
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        r = i
        off = 0
        for a in range(nd - 1, -1, -1):
            size = hp[1 + a]
            off += (r % size) * hp[1 + nd + a]
            r = r // size
        dst[i] = src[off]


def _broadcast_tables(value_shape, shape):
    nd = len(shape)
    vshape = (1,) * (nd - len(value_shape)) + tuple(value_shape)
    strides, step = [0] * nd, 1
    for a in range(nd - 1, -1, -1):
        strides[a] = 0 if vshape[a] == 1 else step
        step *= vshape[a]
    return const_array((nd,) + tuple(shape) + tuple(strides))


# -- class-index losses ---------------------------------------------------------------------------

@cuda.jit
def class_rows_forward(x, t, w, has_w, ignore_index, smoothing, fused, n_class, n_inner, lse,
                       row_loss, row_w, bad):
    n_rows = t.size
    for r in range(cuda.grid(1), n_rows, cuda.gridsize(1)):
        b = r // n_inner
        s = r - b * n_inner
        target = t[r]
        lse[r] = 0.0
        row_loss[r] = 0.0
        row_w[r] = 0.0
        if target == ignore_index:
            continue
        if target < 0 or target >= n_class:
            bad[0] = 1
            continue
        base = b * n_class * n_inner + s
        z = 0.0
        if fused:   # log-sum-exp around the row maximum: exp never overflows
            m = -math.inf
            for c in range(n_class):
                v = np.float64(x[base + c * n_inner])
                if v > m:
                    m = v
            acc = 0.0
            for c in range(n_class):
                acc += math.exp(np.float64(x[base + c * n_inner]) - m)
            z = m + math.log(acc)
        lse[r] = z
        wt = np.float64(w[target]) if has_w else 1.0
        row = (1.0 - smoothing) * wt * (z - np.float64(x[base + target * n_inner]))
        if smoothing != 0.0:
            acc = 0.0
            for c in range(n_class):
                wc = np.float64(w[c]) if has_w else 1.0
                acc += wc * (z - np.float64(x[base + c * n_inner]))
            row += smoothing / n_class * acc
        row_loss[r] = row
        row_w[r] = wt


@cuda.jit
def class_finish(row_loss, row_w, loss_parts, w_parts, n_rows, summed, w, has_w, n_class, mean,
                 y, total, bad):
    """One block: the chunk sums (unless ``summed``: chunk_sums made them), then thread 0
    adds them in order: y = sum(loss) (/ sum(weight) for the mean; NaN on a bad target);
    total = (weight sum, sum of the class weights)."""
    if not summed:
        _block_chunk_sums(row_loss, loss_parts, n_rows)
        _block_chunk_sums(row_w, w_parts, n_rows)
    if cuda.threadIdx.x == 0:
        loss = 0.0
        weight = 0.0
        for k in range(loss_parts.size):
            loss += loss_parts[k]
            weight += w_parts[k]
        w_sum = 0.0
        for c in range(n_class):
            w_sum += np.float64(w[c]) if has_w else 1.0
        total[0] = weight
        total[1] = w_sum
        if mean:
            loss = loss / weight if weight != 0.0 else math.nan   # all ignored: NaN, as PyTorch
        if _take_flag(bad):
            loss = math.nan
        y[0] = loss


@cuda.jit
def class_backward(x, t, w, has_w, ignore_index, smoothing, fused, n_class, n_inner, lse, total,
                   gy, mean, gx):
    for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        s = i % n_inner
        r2 = i // n_inner
        c = r2 % n_class
        b = r2 // n_class
        r = b * n_inner + s
        target = t[r]
        if target == ignore_index or target < 0 or target >= n_class:
            gx[i] = 0.0
            continue
        scale = np.float64(gy[0])
        if mean:
            scale = scale / total[0] if total[0] != 0.0 else 0.0
        share = smoothing / n_class
        wt = (1.0 - smoothing) * (np.float64(w[target]) if has_w else 1.0)
        coef = wt + share * total[1]
        p = math.exp(np.float64(x[i]) - lse[r]) if fused else 0.0
        g = coef * p - share * (np.float64(w[c]) if has_w else 1.0)
        if c == target:
            g -= wt
        gx[i] = scale * g


def _sums_in_finish(chunks):
    """Whether the finish kernel's block makes the chunk sums itself (else chunk_sums first)."""
    return chunks <= FINISH_THREADS


def _flag_set(ws):
    """Whether the last finished forward pass found bad input (waits for the GPU)."""
    return bool(ws["bad"].copy_to_host()[1])


def _read_back(layer):
    """False inside ``Loss.compute``: nothing may wait for the GPU, checks wait a call."""
    return not getattr(layer, "_value_unread", False)


class _ClassIndexLossCUDA(Kernel):
    device = "cuda"
    fused = True

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        shape = in_shapes[0]
        n_rows = shape[0] * int(np.prod(shape[2:], dtype=np.int64))
        chunks = _chunks(n_rows)
        return {"lse": ((n_rows,), np.float64), "row_loss": ((n_rows,), np.float64),
                "row_w": ((n_rows,), np.float64), "loss_part": ((chunks,), np.float64),
                "w_part": ((chunks,), np.float64), "total": ((2,), np.float64),
                "bad": ((2,), np.int32)}

    @staticmethod
    def _weight(layer, ws):
        """(the class weights as they are, whether there are any): the workspace's ``total`` stands
        in for the array the kernels then never read."""
        if layer.weight is None:
            return ws["total"], False
        return flat(layer.weight), True

    def forward(self, layer, xs, ys, ws):
        x, t = xs
        if "unread_targets" in ws:     # the previous call's check, left by Loss.compute
            previous = ws.pop("unread_targets")
            if _flag_set(ws):
                _report_targets(layer, previous.copy_to_host(), x.shape[1],
                                " (previous call: its value, not read back, is NaN)")
        n_class = x.shape[1]
        n_inner = x.size // (x.shape[0] * n_class)
        w, has_w = self._weight(layer, ws)
        smoothing = float(getattr(layer, "label_smoothing", 0.0)) if self.fused else 0.0
        bad = zeroed_once(ws, "bad")   # each finish kernel clears it after
        n_rows = t.size
        launch(class_rows_forward, n_rows, flat(x), flat(t), w, has_w, int(layer.ignore_index),
               smoothing, self.fused, n_class, n_inner, ws["lse"], ws["row_loss"], ws["row_w"],
               bad)
        summed = not _sums_in_finish(ws["loss_part"].size)
        if summed:
            launch(chunk_sums, ws["loss_part"].size, ws["row_loss"], ws["loss_part"], n_rows)
            launch(chunk_sums, ws["w_part"].size, ws["row_w"], ws["w_part"], n_rows)
        launch_blocks(class_finish, 1, FINISH_THREADS, ws["row_loss"], ws["row_w"],
                      ws["loss_part"], ws["w_part"], n_rows, summed, w, has_w, n_class,
                      layer.reduction == "mean", flat(ys[0]), ws["total"], bad)
        if not _read_back(layer):
            ws["unread_targets"] = t
        elif _flag_set(ws):
            _report_targets(layer, t.copy_to_host(), n_class)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        x, t = xs
        n_class = x.shape[1]
        n_inner = x.size // (x.shape[0] * n_class)
        w, has_w = self._weight(layer, ws)
        smoothing = float(getattr(layer, "label_smoothing", 0.0)) if self.fused else 0.0
        launch(class_backward, x.size, flat(x), flat(t), w, has_w, int(layer.ignore_index),
               smoothing, self.fused, n_class, n_inner, ws["lse"], ws["total"], flat(gys[0]),
               layer.reduction == "mean", flat(gxs[0]))


def _report_targets(layer, t, n_class, when=""):
    bad = t[(t != layer.ignore_index) & ((t < 0) | (t >= n_class))]
    value = f"target value {int(bad.flat[0])}" if bad.size else "a target value"  # since changed
    raise InputError(f"{layer.type_name}{when}: {value} is out of range; "
                     f"class indices must be in [0, {n_class}) for C = {n_class} classes "
                     f"(or equal ignore_index = {layer.ignore_index})")


class CrossEntropyLossCUDA(_ClassIndexLossCUDA):
    layer = "CrossEntropyLoss"


class NLLLossCUDA(_ClassIndexLossCUDA):
    layer = "NLLLoss"
    fused = False


# -- element-wise losses --------------------------------------------------------------------------

@cuda.jit
def elementwise_values(x, y, w, pw, has_w, has_pw, op, beta, vals, bad):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
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
            e = (1.0 - tv) * v + lw * (math.log1p(math.exp(-abs(v))) + (-v if v < 0.0 else 0.0))
        else:   # BCE over probabilities, logs clamped at -100
            if not (v >= 0.0 and v <= 1.0):
                bad[0] = 1
            lv = math.log(v) if v > 0.0 else -100.0
            lq = math.log(1.0 - v) if v < 1.0 else -100.0
            if not lv > -100.0:   # clamped at -100, as PyTorch (NaN stays NaN below)
                lv = -100.0 if lv == lv else lv
            if not lq > -100.0:
                lq = -100.0 if lq == lq else lq
            e = -(tv * lv + (1.0 - tv) * lq)
        if has_w:
            e *= w[i]
        vals[i] = e


@cuda.jit
def elementwise_finish(vals, parts, n, summed, mean, y, bad):
    """One block: the chunk sums (unless ``summed``), then thread 0 adds them in order (NaN on
    bad input)."""
    if not summed:
        _block_chunk_sums(vals, parts, n)
    if cuda.threadIdx.x == 0:
        total = 0.0
        for k in range(parts.size):
            total += parts[k]
        total = total / n if mean else total
        if _take_flag(bad):
            total = math.nan
        y[0] = total


@cuda.jit
def elementwise_grad(x, y, w, pw, has_w, has_pw, op, beta, gy, mean, gx):
    n = x.size
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        scale = np.float64(gy[0])
        if mean:
            scale /= n
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
            q = (1.0 - v) * v
            g = (v - tv) / (q if q > 1e-12 else 1e-12)
        if has_w:
            g *= w[i]
        gx[i] = scale * g


class _ElementwiseLossCUDA(Kernel):
    device = "cuda"
    op = MSE

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        n = int(np.prod(in_shapes[0], dtype=np.int64))
        ws = {"vals": ((n,), np.float64), "parts": ((_chunks(n),), np.float64),
              "bad": ((2,), np.int32), "none": ((1,), np.float64)}
        for name in ("weight", "pos_weight"):
            if getattr(layer, name, None) is not None:
                ws[name] = ((n,), np.float64)
        return ws

    def _weights(self, layer, ws, shape, fill):
        out = []
        for name in ("weight", "pos_weight"):
            value = getattr(layer, name, None)
            if value is None:
                out.append(None)
                continue
            if fill:
                launch(broadcast_fill, ws[name].size, flat(value), ws[name],
                       _broadcast_tables(value.shape, shape))
            out.append(ws[name])
        return out

    def _run(self, layer, xs, ws, fill):
        x, y = xs
        w, pw = self._weights(layer, ws, x.shape, fill)
        return (flat(x), flat(y), ws["none"] if w is None else w, ws["none"] if pw is None else pw,
                w is not None, pw is not None, self.op, float(getattr(layer, "beta", 1.0)))

    def forward(self, layer, xs, ys, ws):
        if ws.pop("unread_check", False) and _flag_set(ws):   # left by Loss.compute
            _report_probabilities(" in the previous call (its value, not read back, is NaN)")
        args = self._run(layer, xs, ws, fill=True)
        n = xs[0].size
        bad = zeroed_once(ws, "bad")   # each finish kernel clears it after
        launch(elementwise_values, n, *args, ws["vals"], bad)
        parts = ws["parts"]
        summed = not _sums_in_finish(parts.size)
        if summed:
            launch(chunk_sums, parts.size, ws["vals"], parts, n)
        launch_blocks(elementwise_finish, 1, FINISH_THREADS, ws["vals"], parts, n, summed,
                      layer.reduction == "mean", flat(ys[0]), bad)
        if self.op != BCE:
            return
        if not _read_back(layer):
            ws["unread_check"] = True
        elif _flag_set(ws):
            x = xs[0].copy_to_host()
            _report_probabilities(f", found values in [{float(x.min())}, {float(x.max())}]")

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is None:
            return
        args = self._run(layer, xs, ws, fill=False)
        launch(elementwise_grad, xs[0].size, *args, flat(gys[0]), layer.reduction == "mean",
               flat(gxs[0]))


def _report_probabilities(found):
    raise InputError(f"BCELoss: the prediction must hold probabilities in [0, 1]{found} (use "
                     f"BCEWithLogitsLoss for logits)")


class MSELossCUDA(_ElementwiseLossCUDA):
    layer, op = "MSELoss", MSE


class L1LossCUDA(_ElementwiseLossCUDA):
    layer, op = "L1Loss", L1


class SmoothL1LossCUDA(_ElementwiseLossCUDA):
    layer, op = "SmoothL1Loss", SMOOTH_L1


class BCEWithLogitsLossCUDA(_ElementwiseLossCUDA):
    layer, op = "BCEWithLogitsLoss", BCE_LOGITS


class BCELossCUDA(_ElementwiseLossCUDA):
    layer, op = "BCELoss", BCE


@hookimpl
def minicnn_kernels():
    return [CrossEntropyLossCUDA, NLLLossCUDA, MSELossCUDA, L1LossCUDA, SmoothL1LossCUDA,
            BCEWithLogitsLossCUDA, BCELossCUDA]
