"""The conformance suite: what ``minicnn check-plugin NAME`` runs on every layer a plugin registers.

Each layer type is checked on a few *cases* (constructor arguments plus input shapes):

========== ===================================================================================
build      the layer is built from the case's arguments and registered under its type name
shapes     ``infer_shapes`` (pure) gives the shapes and count of the real outputs, float32 and
           float64 outputs keep the input dtype, ``flops`` returns a non-negative number
forward    outputs match the plugin's slow reference (float32 run against a float64 reference)
gradcheck  float64 central differences against backward for every input and trainable parameter
layout     non-contiguous inputs give the same outputs
repeat     two forward + backward runs (random draws replayed) are bit-identical
state      ``state_dict`` round trip into a freshly built layer, and ``minicnn.save``/``load``
errors     the plugin's error cases raise what they declare, naming the layer; inputs of another
           rank / channel count / spatial size are rejected with a ShapeError that says what was
           expected and received, or run and match ``infer_shapes``
cuda       CPU / GPU parity (``minicnn.testing.check_parity``) when a "cuda" kernel (registered,
           or loaded with the device by ``minicnn_device_kernels``) and the device (or the
           simulator, ``NUMBA_ENABLE_CUDASIM=1``) are there
========== ===================================================================================

A check that was not run says why ("not checked"); it never counts as passed. How a plugin gives
cases and a reference (see docs/writing-a-plugin.md)::

    class Swish(minicnn.Layer):
        @classmethod
        def conformance_cases(cls):
            return [{"args": (3,), "shapes": [(2, 3, 4, 4)]},
                    {"kwargs": {"num_features": 0}, "raises": "ConfigError"}]

        def reference_forward(self, x):          # slow, obviously correct, float64 in and out
            ...

or, without touching the class, a dict in the plugin module (or the layer's module)::

    minicnn_conformance = {"Swish": {"cases": [...], "reference": lambda layer, x: ...}}

With no help the suite tries the layer built with no arguments on a few guessed input shapes.

The package, one job per file: :mod:`.cases` (what a case is; finding a layer's cases and
reference), :mod:`.builtin_cases` (cases for minicnn's own layers), :mod:`.running` (building and
running a layer inside the suite), :mod:`.checks` (one function per column), :mod:`.error_checks`
(the ``errors`` column), :mod:`.plugins` (which plugin, which layer types), :mod:`.suite`
(``check_layer``, ``check_plugin``) and :mod:`.report` (statuses and the table).
"""

from .cases import Case, as_case, find_cases, find_reference
from .plugins import plugin_layer_types, resolve_plugin
from .report import CHECKS, FAIL, NA, PASS, SKIP, LayerReport, PluginReport, format_report
from .suite import check_layer, check_plugin

__all__ = ["CHECKS", "FAIL", "NA", "PASS", "SKIP", "Case", "LayerReport", "PluginReport",
           "as_case", "check_layer", "check_plugin", "find_cases", "find_reference",
           "format_report", "plugin_layer_types", "resolve_plugin"]
