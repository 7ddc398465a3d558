"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's)."""

from .optimizer import Optimizer, check_flag, check_number, required


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False)``.

    Per parameter, with gradient ``g`` (negated when ``maximize``)::

        g = g + weight_decay * p
        if momentum != 0:
            b = g                                  on the first step
            b = momentum * b + (1 - dampening) * g afterwards
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    """

    _state_spec = {"momentum_buffer": "param"}

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_number("lr", group["lr"])
        check_number("momentum", group["momentum"])
        check_number("weight_decay", group["weight_decay"])
        check_number("dampening", group["dampening"], minimum=None)
        check_flag("nesterov", group["nesterov"])
        check_flag("maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, param, grad, group, state, ops):
        momentum = group["momentum"]
        buf = state.get("momentum_buffer")
        first = buf is None
        if momentum != 0 and first:
            buf = state["momentum_buffer"] = ops.zeros_like(param.data)
        ops.sgd_update(param.data, grad, buf if momentum != 0 else None, group["lr"], momentum,
                       group["dampening"], group["weight_decay"], group["nesterov"],
                       group["maximize"], first)

    def _update_flat(self, params, data, grad, group, ops):
        momentum = group["momentum"]
        buf, first = None, True
        if momentum != 0:
            buf, first = self._flat_state(params, "momentum_buffer")
            if buf is None:
                return False
        else:
            for p in params:
                self.state.setdefault(p, {})
        ops.sgd_update(data, grad, buf, group["lr"], momentum, group["dampening"],
                       group["weight_decay"], group["nesterov"], group["maximize"], first)
        return True
