"""Public test helpers: reference checks, float64 gradient checks, layout checks, device parity.

Built-in layers and third-party plugins test themselves with the same few lines::

    from minicnn import testing
    x = testing.tie_free((2, 3, 5, 5), seed=0)
    testing.check_forward(layer, [x], reference=my_loop_reference)
    testing.gradcheck(layer, [x])

Every check raises ``AssertionError`` with the tensor, the worst element and both values.
"""

import copy

import numpy as np


def tie_free(shape, seed=0, low=0.05, high=1.0, dtype=np.float32):
    """Random values with distinct magnitudes in [low, high] and random signs.

    No two elements are equal (max-pool gradients stay well defined) and none is near zero (ReLU's
    kink), so finite differences with a small step never cross a kink or a tie.
    """
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    magnitudes = np.linspace(low, high, n)
    rng.shuffle(magnitudes)
    signs = rng.choice([-1.0, 1.0], size=n)
    return (magnitudes * signs).reshape(shape).astype(dtype)


def _run_forward(module, inputs):
    from .device import to_numpy
    return [np.asarray(to_numpy(y), dtype=np.float64)
            for y in module._get_executor().forward(list(inputs))]


def _layers_with_rng(module):
    return [m for _, m in module.named_modules() if hasattr(m, "rng")]


def _float64_copy(module, inputs):
    model = copy.deepcopy(module).double()
    arrays = [np.array(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else np.array(x)
              for x in inputs]
    return model, arrays


def check_forward(module, inputs, reference, atol=1e-5, rtol=1e-4):
    """Compare the module's outputs with ``reference(module, inputs) -> list of arrays``
    (float64)."""
    outputs = _run_forward(module, inputs)
    expected = reference(module, [np.asarray(x) for x in inputs])
    if not isinstance(expected, (list, tuple)):
        expected = [expected]
    assert len(outputs) == len(expected), f"{len(outputs)} outputs, reference gave {len(expected)}"
    for k, (got, want) in enumerate(zip(outputs, expected, strict=True)):
        _assert_close(f"{module.type_name} output {k}", got, np.asarray(want, np.float64), atol,
                      rtol)


def gradcheck(module, inputs, *, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0, input_grad=True,
              max_elements=None):
    """Central differences in float64 against backward, for every float input and trainable
    parameter.

    The module is copied and cast to float64 (the original is untouched). The scalar checked is
    ``sum_k <r_k, y_k>`` with fixed random projections ``r_k`` of the outputs. Layers that draw
    random numbers (dropout) get the same draws in every evaluation. ``max_elements`` checks only
    that many elements of each tensor, spread evenly (the default checks all).
    """
    from .device import copy_into, device_of, to_numpy
    model, arrays = _float64_copy(module, inputs)
    rngs = {id(m): copy.deepcopy(m.rng) for m in _layers_with_rng(model)}

    def evaluate():
        for m in _layers_with_rng(model):
            m.rng = copy.deepcopy(rngs[id(m)])
        return _run_forward(model, arrays)

    outputs = evaluate()
    rng = np.random.default_rng(seed)
    projections = [rng.standard_normal(y.shape) if y.ndim else float(rng.standard_normal())
                   for y in outputs]

    def objective():
        return sum(float(np.sum(r * y)) for r, y in zip(projections, evaluate(), strict=True))

    objective()   # the forward whose values backward uses
    grads_in = model._get_executor().backward(list(projections), input_grad=input_grad)
    tensors = []
    if input_grad:
        for i, x in enumerate(arrays):
            if x.dtype.kind == "f" and grads_in[i] is not None:
                tensors.append((f"input {i}", x, np.array(to_numpy(grads_in[i]))))
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{module.type_name}: backward left '{name}'.grad empty"
            tensors.append((f"parameter '{name}'", param.data, np.array(to_numpy(param.grad))))
    assert tensors, f"{module.type_name}: nothing to check (no float input or trainable parameter)"
    for label, target, analytic in tensors:
        # parameters of a model on a GPU are perturbed in a host copy written back each time
        on_device = device_of(target) != "cpu"
        array = np.array(to_numpy(target)) if on_device else target
        numeric = np.zeros_like(array)
        flat, num_flat = array.reshape(-1), numeric.reshape(-1)
        indices = range(flat.size)
        if max_elements is not None and flat.size > max_elements:
            indices = np.unique(np.linspace(0, flat.size - 1, max_elements).astype(int))
        mask = np.zeros(flat.size, bool)
        for i in indices:
            old = flat[i]
            flat[i] = old + eps
            if on_device:
                copy_into(target, array)
            plus = objective()
            flat[i] = old - eps
            if on_device:
                copy_into(target, array)
            minus = objective()
            flat[i] = old
            if on_device:
                copy_into(target, array)
            num_flat[i] = (plus - minus) / (2 * eps)
            mask[i] = True
        _assert_close(f"{module.type_name} gradient of {label}", analytic.reshape(-1)[mask],
                      num_flat[mask], atol, rtol, what=("backward", "finite differences"))


def check_noncontiguous(module, inputs, atol=0.0):
    """Outputs must not depend on the memory layout of the inputs (random draws are replayed)."""
    rngs = {id(m): copy.deepcopy(m.rng) for m in _layers_with_rng(module)}
    expected = _run_forward(module, inputs)
    for m in _layers_with_rng(module):
        m.rng = copy.deepcopy(rngs[id(m)])
    strided = []
    for x in inputs:
        x = np.asarray(x)
        big = np.zeros(x.shape + (2,), dtype=x.dtype)
        big[..., 0] = x
        strided.append(big[..., 0])    # same values, every other element in memory
        assert not strided[-1].flags.c_contiguous or x.size <= 1
    got = _run_forward(module, strided)
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        _assert_close(f"{module.type_name} output {k} (non-contiguous input)", a, b, atol, 0.0)


def check_parity(module, inputs, device="cuda", atol=1e-4, rtol=1e-4, seed=0):
    """Forward and backward on the CPU and on ``device`` must agree (parameters copied across)."""
    from .device import to_numpy
    cpu = copy.deepcopy(module)
    other = copy.deepcopy(module).to(device)
    rng = np.random.default_rng(seed)
    outs_cpu = cpu._get_executor().forward(list(inputs))
    outs_dev = other._get_executor().forward(list(inputs))
    for k, (a, b) in enumerate(zip(outs_cpu, outs_dev, strict=True)):
        _assert_close(f"{module.type_name} output {k} on {device}", to_numpy(b), a, atol, rtol)
    gys = [rng.standard_normal(np.shape(y)).astype(np.asarray(y).dtype) if np.ndim(y) else 1.0
           for y in outs_cpu]
    g_cpu = cpu._get_executor().backward(gys)
    g_dev = other._get_executor().backward(gys)
    for k, (a, b) in enumerate(zip(g_cpu, g_dev, strict=True)):
        if a is not None:
            _assert_close(f"{module.type_name} input gradient {k} on {device}", to_numpy(b), a,
                          atol, rtol)
    for (name, p_cpu), (_, p_dev) in zip(cpu.named_parameters(), other.named_parameters(),
                                         strict=True):
        if p_cpu.grad is not None:
            _assert_close(f"{module.type_name} gradient of '{name}' on {device}",
                          to_numpy(p_dev.grad), p_cpu.grad, atol, rtol)


def _assert_close(label, got, want, atol, rtol, what=("got", "expected")):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{label}: shape {got.shape}, expected {want.shape}"
    if got.size == 0:
        return
    with np.errstate(invalid="ignore"):
        err = np.abs(got - want) - (atol + rtol * np.abs(want))
    bad = ~((err <= 0) | (got == want))   # equal infinities are equal
    if bad.any():
        score = np.where(np.isnan(err), np.inf, err)       # NaN is the worst mismatch
        worst = np.unravel_index(int(np.argmax(np.where(bad, score, -np.inf))), got.shape)
        raise AssertionError(f"{label}: {int(bad.sum())} of {got.size} elements differ; worst at "
                             f"{tuple(int(i) for i in worst)}: {what[0]} {got[worst]!r}, "
                             f"{what[1]} {want[worst]!r} (atol={atol}, rtol={rtol})")
