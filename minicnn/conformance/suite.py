"""Running the suite: every case of one layer type through every check, and every layer type of a
plugin."""

from .. import errors
from ..registry import get_registry
from . import checks
from .cases import as_case, find_cases, find_reference
from .error_checks import check_error_case, check_probes
from .plugins import enable_available_devices, plugin_layer_types, registered_name, resolve_plugin
from .report import CHECKS, FAIL, PASS, SKIP, LayerReport, PluginReport
from .running import build, current, error_text, make_inputs

# the checks of a good case, in the order of the report's columns after "build"
STEPS = (("shapes", checks.check_shapes), ("forward", checks.check_forward),
         ("gradcheck", checks.check_gradients), ("layout", checks.check_layout),
         ("repeat", checks.check_repeat), ("state", checks.check_state),
         ("errors", check_probes), ("cuda", checks.check_parity))


def check_layer(layer, registry=None, cases=None, reference=None, devices=("cuda",)):
    """Run the suite on one registered layer type (a type name or Layer subclass)."""
    registry = registry or get_registry()
    type_name = layer if isinstance(layer, str) else layer.type_name
    if type_name not in registry.layers:
        raise errors.PluginError(f"layer type '{type_name}' is not registered")
    cls, owner = registry.layers[type_name]
    report = LayerReport(type_name, owner, devices=tuple(registry.devices_for(type_name)))
    if cases is None:
        try:
            cases, report.cases_from = find_cases(cls, registry)
        except Exception as exc:
            report.cases_from = "invalid"
            report.add("build", FAIL, f"the conformance cases are invalid: {error_text(exc)}")
            return report
        if cases:
            report.cases_from = f"{len(cases)} ({report.cases_from})"
    else:
        cases = [as_case(c) for c in cases]
        report.cases_from = f"{len(cases)} (given)"
    reference = reference or find_reference(cls, registry)
    with current(registry):
        if registry.kernel(type_name, "cpu") is None:
            report.add("build", FAIL, "no 'cpu' kernel registered (every layer needs one)")
            return report
        good = [c for c in cases if c.raises is None]
        if not good:
            why = ("no cases given and none guessed (" + report.cases_from + "); give "
                   "conformance_cases()") if not cases else "only error cases given"
            for check in CHECKS:
                if check != "errors":
                    report.add(check, SKIP, why)
        for case in good:
            _check_case(report, cls, case, reference, devices)
        for case in cases:
            if case.raises is not None:
                check_error_case(report, cls, case)
        report.devices = tuple(registry.devices_for(type_name))   # with lazily loaded devices
        if good and not any(c.raises is not None for c in cases):
            report.add("errors", SKIP, "no error cases given (cases with raises=...): only the "
                                       "shape probes ran")
    return report


def _check_case(report, cls, case, reference, devices):
    where = f"case {case.describe()}"
    try:
        layer = build(cls, case)
        if type(layer).type_name != report.type_name:
            raise TypeError(f"built a {type(layer).type_name}, registered as {report.type_name}")
        xs = make_inputs(layer, case)
    except Exception as exc:
        report.add("build", FAIL, f"{where}: {error_text(exc)}")
        for check in CHECKS[1:]:
            report.add(check, SKIP, f"{where}: the layer could not be built")
        return
    report.add("build", PASS)
    for check, fn in STEPS:
        try:
            status, detail = fn(cls=cls, case=case, layer=layer, xs=xs, reference=reference,
                                devices=devices, type_name=report.type_name)
        except Exception as exc:   # AssertionError from minicnn.testing, or anything else
            status, detail = FAIL, error_text(exc)
        if detail and status != SKIP:   # reasons for not checking hold for every case
            detail = f"{where}: {detail}"
        report.add(check, status, detail)


def check_plugin(plugin, registry=None, devices=("cuda",), layers=None):
    """Run the suite on every layer type a plugin registers (or adds kernels for).

    ``plugin`` is a registered plugin name, a distribution or entry-point name, an importable
    module path, a package whose ``plugin`` submodule holds the hooks (see :func:`resolve_plugin`),
    or a plugin module object (registered into a fresh built-ins-only registry when not
    registered).
    The ``devices`` that are available here are enabled first, so kernels a plugin loads with a
    device (``minicnn_device_kernels``) are checked too.
    """
    if not isinstance(plugin, str):
        module = plugin
        registry = registry or get_registry()
        plugin = registered_name(module, registry)
        if plugin is None:
            from ..registry import Registry
            registry = Registry(load_entry_points=False)
            plugin = getattr(module, "__name__", repr(module))
            registry.register(module, name=plugin)
    registry = registry or get_registry()
    plugin = resolve_plugin(plugin, registry)
    enable_available_devices(registry, devices)
    report = PluginReport(plugin, registry.distributions.get(plugin))
    for type_name in plugin_layer_types(registry, plugin):
        if layers and type_name not in layers:
            continue
        report.layers.append(check_layer(type_name, registry, devices=devices))
    return report
