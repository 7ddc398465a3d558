"""The Optimizer base class: parameter groups, per-parameter state, zero_grad, state dicts.

PyTorch's API: ``Optimizer(params, defaults)`` where ``params`` is an iterable of
:class:`minicnn.Param` or a list of dicts ``{"params": [...], "lr": ...}`` whose keys override
``defaults``; ``param_groups`` is a list of such dicts (change ``group["lr"]`` to change the
learning rate: schedules do); ``state`` maps each Param to its dict of buffers. A parameter that is
frozen (``requires_grad=False``) or has no gradient is skipped by ``step()``.

The array arithmetic is not here: ``backend_for(array)`` finds the module that implements it for
the array's type (``numpy.ndarray`` -> :mod:`minicnn.optim.updates_cpu`; a device twin registers
itself with ``register_backend``), so optimisers never test for devices themselves.

``load_state_dict`` takes untrusted input (checkpoint files): ``check_state_dict`` checks all of it
first, against the constructor's rules and the parameters' shapes, so a bad state changes nothing.
"""

import importlib
import math
import re

import numpy as np

from ..device import device_of, get_device
from ..layer import Param
from ..packed import pack, pack_copies, packable, span
from .state_checks import (
    MAX_COUNT,
    check_float_array,
    check_int,
    check_key,
    check_mapping,
    compatible,
    is_int,
    is_real,
    show,
    type_name,
)

# array type -> module implementing the updates (see updates_cpu for the contract)
_BACKENDS = {np.ndarray: "minicnn.optim.updates_cpu"}
_CUDA_BACKEND = "minicnn.optim.updates_cuda"
_resolved = {}


def register_backend(array_type, module_name):
    """Route arrays of ``array_type`` (and subclasses) to the update module ``module_name``."""
    _BACKENDS[array_type] = module_name
    _resolved.clear()


def backend_for(array):
    """The update module for this array's type (imported on first use)."""
    kind = type(array)
    module = _resolved.get(kind)
    if module is None:
        name = next((_BACKENDS[c] for c in kind.__mro__ if c in _BACKENDS), None)
        if name is None and hasattr(array, "__cuda_array_interface__"):
            name = _CUDA_BACKEND
        if name is None:
            raise TypeError(f"optimizer: no update kernels for arrays of type {kind.__name__}")
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise RuntimeError(f"optimizer: the update kernels for {kind.__name__} arrays "
                               f"({name}) are not available: {exc}") from exc
        _resolved[kind] = module
    return module


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: subclasses set defaults, validate them in ``_check_group`` and implement
    ``_update(param, grad, group, state, ops)`` for one parameter (or override ``step``).

    ``_state_spec`` names the per-parameter state a loaded state dict may hold: ``"param"`` (a
    float array shaped like the parameter), ``"moment2"`` (the same, >= 0) or ``"count"`` (an
    integer >= 0); a non-empty state must hold all of ``_state_required``. None (a subclass made
    elsewhere): any key, with arrays, numbers, strings or None as values.
    """

    _state_spec = None
    _state_required = ()

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}   # Param -> dict of state (arrays on the parameter's device, numbers)
        self.param_groups = []
        if isinstance(params, (Param, dict)):
            raise TypeError(f"params should be an iterable of Params or of dicts, got a "
                            f"{type(params).__name__}")
        if hasattr(params, "named_parameters"):
            raise TypeError("params should be an iterable of Params: pass model.parameters()")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict with key ``"params"``; missing options take the optimiser's defaults."""
        if not isinstance(group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(group).__name__}")
        group = dict(group)
        if "params" not in group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Param) else list(params)
        for p in params:
            if not isinstance(p, Param):
                raise TypeError(f"optimizer can only optimize minicnn.Param objects, got "
                                f"{type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group contains the same parameter twice")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        group["params"] = params
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """Validate one group's hyper-parameters (ValueError with PyTorch's wording)."""

    # -- stepping ---------------------------------------------------------------------------------

    def zero_grad(self, set_to_none=True):
        """Drop the gradients (``set_to_none``) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    backend_for(p.grad).zero_(p.grad)

    def step(self, closure=None):
        """Update every trainable parameter that has a gradient; returns ``closure()`` if given."""
        loss = None if closure is None else closure()
        for group in self.param_groups:
            live = [p for p in group["params"] if p.requires_grad and p.grad is not None]
            for p in live:
                if tuple(p.grad.shape) != tuple(p.data.shape):
                    raise ValueError(f"{type(self).__name__}: gradient of shape "
                                     f"{tuple(p.grad.shape)} for a parameter of shape "
                                     f"{tuple(p.data.shape)}")
            if live and self._update_packed(live, group):
                continue
            for p in live:
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(p, p.grad, group, state, backend_for(p.data))
        return loss

    def _update_packed(self, params, group):
        """Update ``params`` with one call over their packed range (``minicnn.packed``) when
        their data and gradients are packed alike; False (nothing done) otherwise."""
        data = span([p.data for p in params])
        grad = span([p.grad for p in params])
        if data is None or grad is None or grad.dtype != data.dtype:
            return False
        return self._update_flat(params, data, grad, group, backend_for(data))

    def _update_flat(self, params, data, grad, group, ops):
        """The update of ``params`` given their packed ``data`` and ``grad`` ranges; False when
        this optimiser (or this state) cannot do it in one call. Must not change any state
        before it knows it will succeed."""
        return False

    def _flat_state(self, params, name):
        """``(range, created)``: the packed range of state array ``name`` of ``params``, created
        as packed zeros when none of them has it yet, and packed copies when all have it but not
        packed (a loaded state dict); ``(None, False)`` when only some have it (nothing is
        created then)."""
        states = [self.state.setdefault(p, {}) for p in params]
        arrays = [state.get(name) for state in states]
        if any(a is None for a in arrays) and not all(a is None for a in arrays):
            return None, False
        flat = span(arrays) if arrays[0] is not None else None
        if flat is not None:
            return flat, False
        dev = get_device(device_of(params[0].data))
        created = arrays[0] is None
        if created:
            arrays = pack(dev, [p.data.shape for p in params], params[0].data.dtype)
            dev.fill(span(arrays), 0.0)
        elif not all(packable(a) and a.dtype == params[0].data.dtype for a in arrays):
            return None, False
        else:
            arrays = pack_copies(dev, arrays)
        for state, array in zip(states, arrays, strict=True):
            state[name] = array
        return span(arrays), created

    def _update(self, param, grad, group, state, ops):
        raise NotImplementedError

    # -- state dicts ------------------------------------------------------------------------------

    def _index(self):
        index = {}
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
        return index

    def state_dict(self):
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are referred to by their position across the groups (as PyTorch does); arrays
        are host numpy copies and everything else is a plain number, bool, string, list or None, so
        the dict can be stored as safetensors + JSON.
        """
        index = self._index()
        groups = []
        for group in self.param_groups:
            packed = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
                      if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = self._export_state(p, self.state[p])
        return {"state": state, "param_groups": groups}

    def _export_state(self, param, state):
        out = {}
        for key, value in state.items():
            if value is None:
                continue
            if hasattr(value, "shape") and hasattr(value, "dtype") and value.ndim > 0:
                out[key] = backend_for(value).to_host(value)
            elif isinstance(value, (np.generic, np.ndarray)):
                out[key] = value.item()
            else:
                out[key] = value
        return out

    def check_state_dict(self, state_dict):
        """Raise ValueError or TypeError, naming this optimizer and the key path, unless
        ``state_dict`` (from an untrusted file, say) fits this optimizer: as many groups and
        parameters, hyper-parameters that pass the constructor's checks, state arrays of the
        parameters' shapes. Changes nothing; ``load_state_dict`` calls it first."""
        where = f"{type(self).__name__} state"
        check_mapping(state_dict, where)
        for key in state_dict:
            check_key(key, ("state", "param_groups"), where)
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"{where} has no {key!r} entry")
        by_index = self._check_saved_groups(state_dict["param_groups"], where)
        saved_states = state_dict["state"]
        check_mapping(saved_states, f"{where}: 'state'")
        seen = set()
        for key, saved in saved_states.items():
            index = _state_index(key, where)
            if index in seen:
                raise ValueError(f"{where}: 'state' holds parameter {index} twice")
            seen.add(index)
            if index not in by_index:
                raise ValueError(f"{where}: 'state' refers to parameter {show(key)}, which no "
                                 f"group lists")
            self._check_param_state(by_index[index], saved, f"{where}: param {index}")

    def _check_saved_groups(self, saved_groups, where):
        """The saved groups against ours; returns {saved index: Param}."""
        if not isinstance(saved_groups, (list, tuple)):
            raise TypeError(f"{where}: 'param_groups' must be a list, got "
                            f"{type_name(saved_groups)}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: loaded state dict has a different number of parameter "
                             f"groups ({len(saved_groups)}, this optimizer has "
                             f"{len(self.param_groups)})")
        by_index = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            at = f"{where}: param_groups[{i}]"
            check_mapping(saved, at)
            self._check_saved_params(group, saved.get("params"), at, by_index)
            self._check_saved_options(group, saved, at)
        return by_index

    @staticmethod
    def _check_saved_params(group, indices, at, by_index):
        if not isinstance(indices, (list, tuple)):
            raise TypeError(f"{at} 'params' must be a list of parameter indices, got "
                            f"{type_name(indices)}")
        if len(indices) != len(group["params"]):
            raise ValueError(f"{at}: loaded state dict contains a parameter group that doesn't "
                             f"match the size of optimizer's group ({len(indices)} vs "
                             f"{len(group['params'])} parameters)")
        for k, (index, param) in enumerate(zip(indices, group["params"], strict=True)):
            check_int(index, f"{at} 'params'[{k}]", 0, MAX_COUNT)
            if int(index) in by_index:
                raise ValueError(f"{at} 'params'[{k}]: parameter index {index} is listed twice")
            by_index[int(index)] = param

    def _check_saved_options(self, group, saved, at):
        """Each saved option must be one this group has (or ``initial_lr``, a schedule's), and
        the group as it would be after the load must pass the constructor's ``_check_group``."""
        candidate = dict(group)
        for key, value in saved.items():
            if key == "params":
                continue
            check_key(key, set(group) | {"initial_lr"}, at)
            value = _group_value(group, key, value)
            if key not in self.defaults and key in group and not compatible(group[key], value):
                raise TypeError(f"{at} {key!r} is a {type_name(value)}, the group holds a "
                                f"{type_name(group[key])}")
            candidate[key] = value
        try:
            self._check_group(candidate)
            if "initial_lr" in candidate:
                check_number("initial_lr", candidate["initial_lr"])
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{at}: {exc}") from None

    def _check_param_state(self, param, saved, at):
        """One parameter's saved state against ``_state_spec``."""
        check_mapping(saved, at)
        spec = self._state_spec
        if spec is None:
            for key, value in saved.items():
                _check_plain_state(key, value, at)
            return
        for key, value in saved.items():
            check_key(key, spec, at)
            where = f"{at} {key!r}"
            if spec[key] == "count":
                check_int(value, where)
            else:
                _check_param_array(value, param, where, nonnegative=spec[key] == "moment2")
        missing = [key for key in self._state_required if key not in saved]
        if saved and missing:
            raise ValueError(f"{at} lacks {missing} (a parameter that has taken a step holds "
                             f"all of {list(self._state_required)})")

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned (index keys may be ints or their strings). The
        whole dict is checked first (``check_state_dict``): a bad one changes nothing."""
        self.check_state_dict(state_dict)
        saved_groups = state_dict["param_groups"]
        by_index = {}
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            for i, p in zip(saved["params"], group["params"], strict=True):
                by_index[int(i)] = p
        self.state = {by_index[int(key)]: self._import_state(by_index[int(key)], saved)
                      for key, saved in state_dict["state"].items()}
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            for key, value in saved.items():
                if key != "params":
                    group[key] = _group_value(group, key, value)

    def _import_state(self, param, saved):
        out = {}
        ops = backend_for(param.data)
        arrays = self._state_spec or {}
        for key, value in saved.items():
            if arrays.get(key) in ("param", "moment2"):
                # np.asarray: a 0-d parameter's buffer comes back from state_dict as a number
                out[key] = ops.from_host(np.asarray(value), param.data)
            elif isinstance(value, np.ndarray) and value.ndim > 0:
                out[key] = ops.from_host(value, param.data)
            elif isinstance(value, (np.generic, np.ndarray)):
                out[key] = value.item()
            else:
                out[key] = value
        return out

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def check_number(name, value, minimum=0.0, maximum=None, strict_max=False, finite=True):
    """ValueError in PyTorch's words ("Invalid learning rate: -1"), followed by what was expected,
    unless ``value`` is a real number (not a bool, not NaN, finite unless ``finite=False``) with
    minimum <= value (<= maximum, or < with ``strict_max``); None: no bound."""
    label = {"lr": "learning rate", "eps": "epsilon value", "weight_decay": "weight_decay value",
             "momentum": "momentum value"}.get(name, name)
    if not _in_range(value, minimum, maximum, strict_max, finite):
        expected = "a finite number" if finite else "a number (not NaN)"
        if minimum is not None:
            expected += f" >= {minimum}"
        if maximum is not None:
            expected += f" {'<' if strict_max else '<='} {maximum}"
        raise ValueError(f"Invalid {label}: {show(value)} ({name} must be {expected})")


def _in_range(value, minimum, maximum, strict_max, finite):
    if not is_real(value):
        return False
    try:
        x = float(value)
    except OverflowError:   # an int beyond float: the update's float() would raise
        return False
    if math.isnan(x) or (finite and math.isinf(x)):
        return False
    if minimum is not None and x < minimum:
        return False
    return maximum is None or (x < maximum if strict_max else x <= maximum)


def check_flag(name, value):
    """ValueError unless ``value`` is a bool (a string or a list would count as True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Invalid {name}: {show(value)} ({name} must be True or False)")


# -- checks of loaded state -----------------------------------------------------------------------

def _group_value(group, key, value):
    """A saved option as the group holds it: tuples stay tuples (JSON makes lists), 0-d arrays
    become numbers."""
    if isinstance(group.get(key), tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _state_index(key, where):
    """A 'state' key: a parameter index, as an int or (after JSON) its decimal string."""
    if is_int(key) and key >= 0:
        return int(key)
    if isinstance(key, str) and re.fullmatch(r"[0-9]{1,16}", key):
        return int(key)
    raise ValueError(f"{where}: 'state' key {show(key)} is not a parameter index")


def _check_param_array(value, param, where, nonnegative=False):
    """A float array of the parameter's shape: the update kernels index it by the parameter's
    size, so a smaller one would be written out of bounds."""
    shape = tuple(param.data.shape)
    if shape == () and is_real(value):
        value = np.asarray(value, dtype=np.float64)   # how state_dict gives a 0-d buffer
    check_float_array(value, where, param.data.dtype, shape, nonnegative=nonnegative)


def _check_plain_state(key, value, at):
    """State of an optimizer without a ``_state_spec``: only the kinds state_dict produces."""
    if not isinstance(key, str):
        raise TypeError(f"{at}: state key {show(key)} is not a string")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiub":
            raise TypeError(f"{at} {key!r} has dtype {value.dtype}, expected numbers")
    elif not (value is None or isinstance(value, (bool, str)) or is_real(value)):
        raise TypeError(f"{at} {key!r} is a {type_name(value)}, expected an array, a number, a "
                        f"string or None")
