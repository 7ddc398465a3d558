"""CUDA implementation of the optimisers' array arithmetic (the contract of ``updates_cpu``).

Same names and formulas as the CPU module, on numba device arrays: per-parameter updates are one
grid-stride kernel each (one thread per element, no races), so optimiser state never leaves the
GPU. Reductions (gradient norms, L-BFGS dot products) sum fixed-size chunks serially, one thread per
chunk, then the chunk sums serially in one thread, in float64: results depend on the sizes only,
never on the launch configuration. Functions returning a Python float copy one number back.
"""

import math

import numpy as np

from ..cuda_device import cuda, flat, launch
from .state_checks import check_adam_step, check_update_sizes

CHUNK = 4096   # elements per partial sum of a reduction


# -- state arrays ---------------------------------------------------------------------------------

@cuda.jit
def _fill(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


@cuda.jit
def _copy(dst, src):
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[i] = src[i]


def zeros_like(a):
    out = cuda.device_array(a.shape, a.dtype)
    launch(_fill, out.size, flat(out), 0.0)
    return out


def copy(a):
    out = cuda.device_array(a.shape, a.dtype)
    launch(_copy, out.size, flat(out), flat(a))
    return out


def from_host(host, like):
    """A device copy of host array ``host`` with the dtype of ``like``."""
    return cuda.to_device(np.ascontiguousarray(host, dtype=like.dtype))


def to_host(a):
    return a.copy_to_host()


def assign_(dst, src):
    """dst[...] = src, in place (same device)."""
    launch(_copy, dst.size, flat(dst), flat(src))


def _grad(grad, param):
    """The gradient as a flat device array of the parameter's dtype."""
    if grad.dtype != param.dtype:
        out = cuda.device_array(grad.size, param.dtype)
        launch(_copy, out.size, out, flat(grad))
        return out
    return flat(grad)


# -- SGD ------------------------------------------------------------------------------------------

@cuda.jit
def sgd_kernel(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        gi = g[i]
        if maximize:
            gi = -gi
        if weight_decay != 0.0:
            gi = gi + weight_decay * p[i]
        if momentum != 0.0:
            b = gi if first else momentum * buf[i] + (1.0 - dampening) * gi
            buf[i] = b
            gi = gi + momentum * b if nesterov else b
        p[i] = p[i] - lr * gi


def sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """One SGD step in place (PyTorch's formula); ``buf`` is None without momentum."""
    check_update_sizes("sgd_update", param, grad, momentum_buffer=buf)
    p = flat(param)
    launch(sgd_kernel, p.size, p, _grad(grad, param), p if buf is None else flat(buf), float(lr),
           float(momentum), float(dampening), float(weight_decay), bool(nesterov), bool(maximize),
           bool(first))


# -- Adam / AdamW ---------------------------------------------------------------------------------

@cuda.jit
def adam_kernel(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                maximize, step_size, bias_correction2_sqrt):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        gi = g[i]
        pi = p[i]
        if maximize:
            gi = -gi
        if weight_decay != 0.0:
            if decoupled:
                pi = pi * (1.0 - lr * weight_decay)
            else:
                gi = gi + weight_decay * pi
        mi = m[i] + (1.0 - beta1) * (gi - m[i])
        vi = beta2 * v[i] + (1.0 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vm = vmax[i] if vmax[i] > vi else vi
            vmax[i] = vm
            denom = math.sqrt(vm) / bias_correction2_sqrt + eps
        else:
            denom = math.sqrt(vi) / bias_correction2_sqrt + eps
        p[i] = pi - step_size * mi / denom


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                weight_decay, decoupled, amsgrad, maximize):
    """One Adam (``decoupled=False``) or AdamW step in place; ``step`` counts from 1."""
    check_update_sizes("adam_update", param, grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                       max_exp_avg_sq=max_exp_avg_sq)
    check_adam_step("adam_update", step, beta1, beta2)
    p = flat(param)
    v = flat(exp_avg_sq)
    step_size = lr / (1.0 - beta1 ** step)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** step)
    launch(adam_kernel, p.size, p, _grad(grad, param), flat(exp_avg), v,
           v if max_exp_avg_sq is None else flat(max_exp_avg_sq), float(lr), float(beta1),
           float(beta2), float(eps), float(weight_decay), bool(decoupled), bool(amsgrad),
           bool(maximize), float(step_size), float(bias_correction2_sqrt))


# -- reductions -----------------------------------------------------------------------------------

@cuda.jit
def _partials(a, b, kind, p, parts):
    """Per chunk, in float64: sum a^2 (0), max |a| (1, NaN if any), sum |a|^p (2), sum a*b (3),
    sum |a| (4)."""
    n = a.size
    for k in range(cuda.grid(1), parts.size, cuda.gridsize(1)):
        acc = 0.0
        nan = False
        stop = (k + 1) * CHUNK
        if stop > n:
            stop = n
        for i in range(k * CHUNK, stop):
            v = np.float64(a[i])   # float() keeps float32 in numba
            if kind == 0:
                acc += v * v
            elif kind == 1:
                v = abs(v)
                if v > acc:
                    acc = v
                elif v != v:
                    nan = True
            elif kind == 2:
                acc += abs(v) ** p
            elif kind == 3:
                acc += v * np.float64(b[i])
            else:
                acc += abs(v)
        parts[k] = math.nan if nan else acc


def _reduce(a, b, kind, p=2.0):
    a = flat(a)
    if a.size == 0:
        return 0.0
    parts = cuda.device_array(-(-a.size // CHUNK), np.float64)
    launch(_partials, parts.size, a, a if b is None else flat(b), kind, float(p), parts)
    host = parts.copy_to_host()
    if kind == 1:
        return math.nan if np.isnan(host).any() else float(np.max(host))
    total = 0.0
    for value in host.tolist():   # fixed order
        total += value
    return total


def norm_accumulate(a, norm_type):
    """Sum of |a|^p over the array (max |a| for p = inf) in float64, as a Python float."""
    if norm_type == 2.0:
        return _reduce(a, None, 0)
    if math.isinf(norm_type):
        return _reduce(a, None, 1)
    return _reduce(a, None, 2, norm_type)


@cuda.jit
def _scale(a, factor):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = a[i] * factor


@cuda.jit
def _clamp(a, low, high):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        v = a[i]
        if v < low:
            a[i] = low
        elif v > high:
            a[i] = high


@cuda.jit
def _axpy(y, alpha, x):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[i] = y[i] + alpha * x[i]


@cuda.jit
def _slice_axpy(y, alpha, x, offset):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[i] = y[i] + alpha * x[offset + i]


@cuda.jit
def _slice_copy(dst, src, offset):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[offset + i] = src[i]


def scale_(a, factor):
    """a *= factor, in place."""
    launch(_scale, a.size, flat(a), float(factor))


def zero_(a):
    launch(_fill, a.size, flat(a), 0.0)


def clamp_(a, low, high):
    launch(_clamp, a.size, flat(a), float(low), float(high))


# -- flat vectors (L-BFGS) ------------------------------------------------------------------------

def flatten(arrays, like):
    """One flat device vector of the arrays (None entries as zeros of the matching size)."""
    total = sum(ref.size for ref in like)
    dtype = like[0].dtype if like else np.float64
    out = cuda.device_array(total, dtype)
    offset = 0
    for a, ref in zip(arrays, like, strict=True):
        if a is None:
            launch(_fill, ref.size, out[offset:offset + ref.size], 0.0)
        else:
            launch(_slice_copy, a.size, out, flat(a), offset)
        offset += ref.size
    return out


def unflatten_add_(arrays, alpha, flat_vector):
    """arrays[i] += alpha * (the matching slice of ``flat_vector``), in place."""
    offset = 0
    for a in arrays:
        launch(_slice_axpy, a.size, flat(a), float(alpha), flat_vector, offset)
        offset += a.size


def dot(a, b):
    return _reduce(a, b, 3)


def abs_max(a):
    return _reduce(a, None, 1) if a.size else 0.0


def abs_sum(a):
    return _reduce(a, None, 4)


def axpy_(y, alpha, x):
    """y += alpha * x, in place."""
    launch(_axpy, y.size, flat(y), float(alpha), flat(x))
