"""CPU (numpy) implementation of the optimisers' array arithmetic.

This module is the contract a device twin (``updates_cuda.py``) implements with the same names:

* state arrays: ``zeros_like(a)``, ``copy(a)``, ``assign_(dst, src)``, ``from_host(host, like)``,
  ``to_host(a)``;
* per-parameter updates, in place: ``sgd_update(...)``, ``adam_update(...)``;
* gradient norms and scaling: ``norm_accumulate(a, norm_type)``, ``scale_(a, factor)``,
  ``zero_(a)``, ``clamp_(a, low, high)``;
* flat-vector algebra for L-BFGS: ``flatten(arrays, like)``,
  ``unflatten_add_(arrays, alpha, flat)``, ``dot(a, b)``, ``abs_max(a)``, ``abs_sum(a)``,
  ``axpy_(y, alpha, x)``.

The updates are njit loops over the flattened parameter with PyTorch's formulas; small arrays run a
serial loop (a parallel launch costs microseconds), large ones a ``prange`` loop. Each element is
written by one thread, so results do not depend on the thread count.
"""

import math

import numpy as np
from numba import prange

from ..device import to_numpy
from ..jit import cpu_kernel
from .state_checks import check_adam_step, check_update_sizes

PARALLEL_MIN = 1 << 15   # elements from which an update runs in parallel
NORM_CHUNK = 8192        # elements per partial sum of a norm


# -- state arrays ---------------------------------------------------------------------------------

def zeros_like(a):
    return np.zeros_like(a)


def copy(a):
    return a.copy()


def from_host(host, like):
    """A copy of host array ``host`` with the dtype of ``like`` (on ``like``'s device)."""
    return np.array(host, dtype=like.dtype, copy=True)


def to_host(a):
    return to_numpy(a).copy()


def assign_(dst, src):
    """dst[...] = src, in place (same device)."""
    np.copyto(dst, src)


def _flat(a, what):
    if not a.flags.c_contiguous:
        raise ValueError(f"optimizer: {what} must be C-contiguous to be updated in place")
    return a.reshape(-1)


def _flat_grad(grad, param):
    return np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1)


# -- SGD ------------------------------------------------------------------------------------------

@cpu_kernel(parallel=False)
def _sgd_element(p, g, b, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    if maximize:
        g = -g
    if weight_decay != 0.0:
        g = g + weight_decay * p
    if momentum != 0.0:
        b = g if first else momentum * b + (1.0 - dampening) * g
        g = g + momentum * b if nesterov else b
    return p - lr * g, b


@cpu_kernel(parallel=False)
def sgd_serial(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    for i in range(p.size):
        b = buf[i] if momentum != 0.0 else 0.0
        p[i], b = _sgd_element(p[i], g[i], b, lr, momentum, dampening, weight_decay, nesterov,
                               maximize, first)
        if momentum != 0.0:
            buf[i] = b


@cpu_kernel
def sgd_parallel(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    for i in prange(p.size):
        b = buf[i] if momentum != 0.0 else 0.0
        p[i], b = _sgd_element(p[i], g[i], b, lr, momentum, dampening, weight_decay, nesterov,
                               maximize, first)
        if momentum != 0.0:
            buf[i] = b


def sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """One SGD step in place (PyTorch's formula). ``buf`` is the momentum buffer (None without
    momentum); on the ``first`` step it is set to the (decayed) gradient."""
    p = _flat(param, "parameter")
    g = _flat_grad(grad, param)
    b = p if buf is None else _flat(buf, "momentum buffer")   # not touched when momentum == 0
    check_update_sizes("sgd_update", p, g, momentum_buffer=buf)
    kernel = sgd_parallel if p.size >= PARALLEL_MIN else sgd_serial
    kernel(p, g, b, float(lr), float(momentum), float(dampening), float(weight_decay),
           bool(nesterov), bool(maximize), bool(first))


# -- Adam / AdamW ---------------------------------------------------------------------------------

@cpu_kernel(parallel=False)
def _adam_element(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                  maximize, step_size, bias_correction2_sqrt):
    if maximize:
        g = -g
    if weight_decay != 0.0:
        if decoupled:
            p = p * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = m + (1.0 - beta1) * (g - m)
    v = beta2 * v + (1.0 - beta2) * g * g
    if amsgrad:
        vmax = max(vmax, v)
        denom = math.sqrt(vmax) / bias_correction2_sqrt + eps
    else:
        denom = math.sqrt(v) / bias_correction2_sqrt + eps
    return p - step_size * m / denom, m, v, vmax


@cpu_kernel(parallel=False)
def adam_serial(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                maximize, step_size, bias_correction2_sqrt):
    for i in range(p.size):
        p[i], m[i], v[i], vm = _adam_element(
            p[i], g[i], m[i], v[i], vmax[i] if amsgrad else 0.0, lr, beta1, beta2, eps,
            weight_decay, decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt)
        if amsgrad:
            vmax[i] = vm


@cpu_kernel
def adam_parallel(p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                  maximize, step_size, bias_correction2_sqrt):
    for i in prange(p.size):
        p[i], m[i], v[i], vm = _adam_element(
            p[i], g[i], m[i], v[i], vmax[i] if amsgrad else 0.0, lr, beta1, beta2, eps,
            weight_decay, decoupled, amsgrad, maximize, step_size, bias_correction2_sqrt)
        if amsgrad:
            vmax[i] = vm


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                weight_decay, decoupled, amsgrad, maximize):
    """One Adam (``decoupled=False``) or AdamW step in place; ``step`` counts from 1."""
    p = _flat(param, "parameter")
    g = _flat_grad(grad, param)
    m = _flat(exp_avg, "exp_avg")
    v = _flat(exp_avg_sq, "exp_avg_sq")
    vmax = v if max_exp_avg_sq is None else _flat(max_exp_avg_sq, "max_exp_avg_sq")
    check_update_sizes("adam_update", p, g, exp_avg=m, exp_avg_sq=v, max_exp_avg_sq=vmax)
    check_adam_step("adam_update", step, beta1, beta2)
    step_size = lr / (1.0 - beta1 ** step)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** step)
    kernel = adam_parallel if p.size >= PARALLEL_MIN else adam_serial
    kernel(p, g, m, v, vmax, float(lr), float(beta1), float(beta2), float(eps),
           float(weight_decay), bool(decoupled), bool(amsgrad), bool(maximize), float(step_size),
           float(bias_correction2_sqrt))


# -- norms and scaling ----------------------------------------------------------------------------

@cpu_kernel(parallel=False)
def _norm_chunk(a, kind, p, start, stop):
    """Over a[start:stop], in float64: sum of squares (kind 0), max |a| (kind 1; NaN if any) or
    sum |a|^p (kind 2). The kind is tested outside the loops so that they vectorise."""
    acc = 0.0
    if kind == 0:
        for i in range(start, stop):
            v = np.float64(a[i])
            acc += v * v
    elif kind == 1:
        nan = False
        for i in range(start, stop):
            v = abs(np.float64(a[i]))
            if v > acc:
                acc = v
            elif v != v:
                nan = True
        if nan:
            acc = np.nan
    else:
        for i in range(start, stop):
            acc += abs(np.float64(a[i])) ** p
    return acc


@cpu_kernel(parallel=False)
def norm_partials_serial(a, kind, p, partial):
    for k in range(partial.size):
        partial[k] = _norm_chunk(a, kind, p, k * NORM_CHUNK, min(a.size, (k + 1) * NORM_CHUNK))


@cpu_kernel
def norm_partials_parallel(a, kind, p, partial):
    for k in prange(partial.size):
        partial[k] = _norm_chunk(a, kind, p, k * NORM_CHUNK, min(a.size, (k + 1) * NORM_CHUNK))


def norm_accumulate(a, norm_type):
    """Sum of |a|^p over the array (max |a| for p = inf) in float64, as a Python float."""
    flat = np.ascontiguousarray(a).reshape(-1)
    if flat.size == 0:
        return 0.0
    partial = np.empty(max(1, -(-flat.size // NORM_CHUNK)), np.float64)
    if norm_type == 2.0:
        kind = 0
    elif math.isinf(norm_type):
        kind = 1
    else:
        kind = 2
    kernel = norm_partials_parallel if flat.size >= PARALLEL_MIN else norm_partials_serial
    kernel(flat, kind, float(norm_type), partial)
    if kind == 1:
        return float(np.max(partial)) if not np.isnan(partial).any() else math.nan
    total = 0.0
    for value in partial:   # fixed order
        total += float(value)
    return total


def scale_(a, factor):
    """a *= factor, in place (0 * inf gives NaN quietly, as PyTorch does)."""
    with np.errstate(invalid="ignore", over="ignore"):
        np.multiply(a, a.dtype.type(factor), out=a)


def zero_(a):
    """a[...] = 0, in place (NaN and Inf included)."""
    a.fill(0)


def clamp_(a, low, high):
    np.clip(a, low, high, out=a)


# -- flat vectors (L-BFGS) ------------------------------------------------------------------------

def flatten(arrays, like):
    """One flat vector of the arrays (None entries as zeros of the matching size in ``like``)."""
    parts = [np.zeros(ref.size, ref.dtype) if a is None else np.asarray(a, ref.dtype).reshape(-1)
             for a, ref in zip(arrays, like, strict=True)]
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten_add_(arrays, alpha, flat):
    """arrays[i] += alpha * (the matching slice of ``flat``), in place."""
    offset = 0
    for a in arrays:
        n = a.size
        view = flat[offset:offset + n].reshape(a.shape)
        a += a.dtype.type(alpha) * view
        offset += n


def dot(a, b):
    return float(np.dot(a, b))


def abs_max(a):
    return float(np.max(np.abs(a))) if a.size else 0.0


def abs_sum(a):
    return float(np.sum(np.abs(a)))


def axpy_(y, alpha, x):
    """y += alpha * x, in place."""
    y += y.dtype.type(alpha) * x
