"""``minicnn check-plugin`` and :mod:`minicnn.conformance`: the suite passes good layers, catches
each kind of broken layer, says what it did not check, and runs on the template plugin installed
the way a user installs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import ShapeError, conformance
from minicnn.cli import main
from minicnn.conformance import FAIL, NA, PASS, SKIP
from minicnn.registry import Registry, set_registry

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plugins" / "template"


# -- toy layers with numpy kernels (no JIT), each broken in one way --------------------------------

class Scale(minicnn.Layer):
    """y = w_c x per channel; a correct layer with cases, error cases and a reference."""

    def __init__(self, num_features):
        super().__init__()
        if num_features <= 0:
            raise minicnn.ConfigError(f"{type(self).__name__}: num_features must be positive")
        self.num_features = num_features
        self.add_param("weight", np.linspace(0.5, 1.5, num_features).astype(np.float32))

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        if len(shape) < 2 or shape[1] != self.num_features:
            raise ShapeError("channels do not match", expected=f"(N, {self.num_features}, *)",
                             received=f"shape {shape}")
        return [shape]

    @classmethod
    def conformance_cases(cls):
        return [{"args": (3,), "shapes": [(2, 3, 4)]},
                {"args": (0,), "raises": "ConfigError"},
                {"args": (3,), "shapes": [(2, 5)], "raises": "ShapeError", "match": "channels"}]

    def reference_forward(self, x):
        return x * self.weight.data.reshape((1, -1) + (1,) * (x.ndim - 2))


class ScaleCPU(minicnn.Kernel):
    layer, device = "Scale", "cpu"
    factor = 1.0

    def _w(self, layer, x):
        return layer.weight.data.reshape((1, -1) + (1,) * (x.ndim - 2))

    def forward(self, layer, xs, ys, ws):
        np.multiply(xs[0], self._w(layer, xs[0]), out=ys[0])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            np.multiply(gys[0], self.factor * self._w(layer, xs[0]), out=gxs[0])
        if grads.get("weight") is not None:
            axes = (0,) + tuple(range(2, xs[0].ndim))
            grads["weight"][...] = np.sum(gys[0] * xs[0], axis=axes)


class BadGrad(Scale):
    """Input gradient twice too large."""


class BadGradCPU(ScaleCPU):
    layer, factor = "BadGrad", 2.0


class BadShapes(Scale):
    """infer_shapes promises one axis less than the kernel writes."""

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])[:-1]]

    @classmethod
    def conformance_cases(cls):
        return [{"args": (3,), "shapes": [(2, 3, 4)]}]


class BadShapesCPU(ScaleCPU):
    layer = "BadShapes"


class BadReference(Scale):
    """The reference disagrees with the kernel (as a kernel with an indexing bug would)."""

    def reference_forward(self, x):
        return x * 2.0


class BadReferenceCPU(ScaleCPU):
    layer = "BadReference"


class Crashy(Scale):
    """infer_shapes indexes axis 2 without checking the rank: IndexError, not a ShapeError."""

    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        _ = shape[2]
        return super().infer_shapes(in_shapes)

    @classmethod
    def conformance_cases(cls):
        return [{"args": (3,), "shapes": [(2, 3, 4)]},
                {"args": (3,), "shapes": [(2, 3, 4)], "raises": "ShapeError"}]   # never raises


class CrashyCPU(ScaleCPU):
    layer = "Crashy"


class Forgetful(Scale):
    """Keeps a random offset in a plain attribute, not a parameter or buffer: the state dict misses
    it, so a reloaded layer computes something else."""

    def __init__(self, num_features):
        super().__init__(num_features)
        self.offset = float(minicnn.random.generator().uniform(1, 2))


class ForgetfulCPU(ScaleCPU):
    layer = "Forgetful"

    def forward(self, layer, xs, ys, ws):
        super().forward(layer, xs, ys, ws)
        ys[0] += layer.offset


class Noisy(Scale):
    """Draws from numpy's global generator in forward: two identical runs differ."""


class NoisyCPU(ScaleCPU):
    layer = "Noisy"

    def forward(self, layer, xs, ys, ws):
        super().forward(layer, xs, ys, ws)
        ys[0] += np.random.random() * 1e-3


class NoHelp(minicnn.Layer):
    """Needs constructor arguments and gives no cases: nothing can be checked."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]


class NoHelpCPU(minicnn.Kernel):
    layer = "NoHelp"

    def forward(self, layer, xs, ys, ws):
        ys[0][...] = xs[0]

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            gxs[0][...] = gys[0]


class Guessed(minicnn.Layer):
    """Built with no arguments: the suite guesses an input shape."""

    def infer_shapes(self, in_shapes):
        return [tuple(in_shapes[0])]


class GuessedCPU(NoHelpCPU):
    layer = "Guessed"


class NoKernel(Scale):
    """Registered without any kernel."""


class Toys:
    LAYERS = [Scale, BadGrad, BadShapes, BadReference, Crashy, Forgetful, Noisy, NoHelp, Guessed,
              NoKernel]
    KERNELS = [ScaleCPU, BadGradCPU, BadShapesCPU, BadReferenceCPU, CrashyCPU, ForgetfulCPU,
               NoisyCPU, NoHelpCPU, GuessedCPU]

    @minicnn.hookimpl
    def minicnn_layers(self):
        return self.LAYERS

    @minicnn.hookimpl
    def minicnn_kernels(self):
        return self.KERNELS


@pytest.fixture(scope="module")
def toys():
    registry = Registry(load_entry_points=False)
    registry.register(Toys(), name="toys")
    previous = set_registry(registry)
    yield registry
    set_registry(previous)


@pytest.fixture(scope="module")
def report(toys):
    return {r.type_name: r for r in conformance.check_plugin("toys", toys).layers}


def test_a_correct_layer_passes_every_check_it_can_run(report):
    r = report["Scale"]
    assert r.cases_from == "3 (class)" and r.devices == ("cpu",)
    for check in ("build", "shapes", "forward", "gradcheck", "layout", "repeat", "state",
                  "errors"):
        assert r.status(check) == PASS, (check, r.results[check])
    assert r.status("cuda") == SKIP
    assert r.details("cuda")[0].startswith("no 'cuda' kernel registered")
    assert r.failed == [] and r.not_checked == ["cuda"]


@pytest.mark.parametrize("type_name, check, message", [
    ("BadGrad", "gradcheck", "gradient of input 0"),
    ("BadShapes", "shapes", "the float32 forward, outputs allocated as infer_shapes says "
                            "([(2, 3)]), raised ValueError"),
    ("BadReference", "forward", "BadReference output 0"),
    ("Crashy", "errors", "raised IndexError"),
    ("Forgetful", "state", "fresh layer given the state_dict computes other outputs"),
    ("Noisy", "repeat", "differs between two identical runs"),
])
def test_each_broken_layer_fails_the_check_that_catches_it(report, type_name, check, message):
    r = report[type_name]
    assert r.status(check) == FAIL
    assert any(message in d for d in r.details(check)), r.details(check)
    assert r.status("build") == PASS


def test_an_error_case_that_does_not_raise_fails(report):
    details = report["Crashy"].details("errors")
    assert any("ran without raising ShapeError" in d for d in details), details


def test_checks_that_were_not_run_are_not_passed(report):
    r = report["NoHelp"]
    assert r.cases_from.startswith("none: NoHelp() needs arguments")
    assert r.failed == [] and set(r.not_checked) == set(conformance.CHECKS)
    assert "no cases given" in r.details("gradcheck")[0]
    guessed = report["Guessed"]
    assert guessed.cases_from == "1 (guessed)"
    assert guessed.status("shapes") == PASS and guessed.status("gradcheck") == PASS
    assert guessed.status("forward") == SKIP
    assert guessed.partial("errors") and "no error cases given" in guessed.details("errors")[-1]
    assert report["NoKernel"].status("build") == FAIL
    assert "no 'cpu' kernel" in report["NoKernel"].details("build")[0]


def test_gradcheck_does_not_apply_without_differentiable_inputs(toys):
    class Labels(minicnn.Layer):
        """Integer labels in, float one-hot out."""

        input_kinds = ("index",)

        def infer_shapes(self, in_shapes):
            return [tuple(in_shapes[0]) + (2,)]

    class LabelsCPU(minicnn.Kernel):
        layer = "Labels"

        def forward(self, layer, xs, ys, ws):
            ys[0][...] = np.eye(2)[xs[0]]

    registry = Registry(builtins=False, load_entry_points=False)

    class Plugin:
        @minicnn.hookimpl
        def minicnn_layers(self):
            return [Labels]

        @minicnn.hookimpl
        def minicnn_kernels(self):
            return [LabelsCPU]

    registry.register(Plugin(), name="labels")
    r = conformance.check_layer("Labels", registry)
    assert r.status("gradcheck") == NA and r.status("shapes") == PASS
    assert r.status("errors") == SKIP     # no float input to perturb, no error cases


def test_command_exit_codes_and_table(toys, capsys):
    assert main(["check-plugin", "toys", "--layer", "Scale"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["layer", "cases", "kernels"]
    row = next(line for line in out.splitlines() if line.startswith("Scale "))
    assert row.split()[3:] == ["cpu", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "--"]
    assert "result: 0 failed, 8 passed, 1 not checked" in out
    assert main(["check-plugin", "toys", "--layer", "Scale", "--strict"]) == 1   # cuda not run
    assert main(["check-plugin", "toys", "--layer", "BadGrad"]) == 1
    out = capsys.readouterr().out
    assert "gradcheck: FAIL: case (3) on (2, 3, 4): AssertionError: BadGrad gradient" in out
    assert main(["check-plugin", "toys", "--layer", "Missing"]) == 2
    assert main(["check-plugin", "no_such_plugin_module"]) == 1
    assert "no plugin of this name is registered" in capsys.readouterr().err


def test_names_resolve_by_plugin_distribution_and_module(toys):
    toys.distributions["toys"] = "minicnn-toys"
    try:
        assert conformance.resolve_plugin("minicnn-toys", toys) == "toys"
        assert conformance.resolve_plugin("minicnn_toys", toys) == "toys"
    finally:
        del toys.distributions["toys"]
    assert conformance.resolve_plugin("minicnn.layers.activation", toys) == \
        "minicnn.layers.activation"


# -- a plugin package on the path: NAME is the package, its hooks live in NAME.plugin --------------

PACKAGE = "minicnn_pkgtoy"
PACKAGE_PLUGIN = """
import minicnn
import numpy as np


class PkgDouble(minicnn.Layer):
    def infer_shapes(self, in_shapes):
        shape = tuple(in_shapes[0])
        if len(shape) != 2:
            raise minicnn.ShapeError("PkgDouble takes (N, F)", expected="(N, F)",
                                     received=f"shape {shape}")
        return [shape]

    @classmethod
    def conformance_cases(cls):
        return [{"shapes": [(2, 3)]}, {"shapes": [(2, 3, 4)], "raises": "ShapeError"}]

    def reference_forward(self, x):
        return 2.0 * x


class PkgDoubleCPU(minicnn.Kernel):
    layer, device = "PkgDouble", "cpu"

    def forward(self, layer, xs, ys, ws):
        np.multiply(xs[0], 2.0, out=ys[0])

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        if gxs[0] is not None:
            np.multiply(gys[0], 2.0, out=gxs[0])


@minicnn.hookimpl
def minicnn_layers():
    return [PkgDouble]


@minicnn.hookimpl
def minicnn_kernels():
    return [PkgDoubleCPU]
"""


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """``minicnn_pkgtoy`` (an ``__init__`` without hooks, the hooks in ``plugin.py``) and
    ``minicnn_pkgtoy_bare`` (no hooks anywhere) on the path, not installed, not registered."""
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text('"""A plugin package."""\n')
    (package / "plugin.py").write_text(PACKAGE_PLUGIN)
    (tmp_path / f"{PACKAGE}_bare").mkdir()
    (tmp_path / f"{PACKAGE}_bare" / "__init__.py").write_text('"""No hooks."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
        del sys.modules[name]


def test_a_package_name_finds_the_hooks_in_its_plugin_module(plugin_package, capsys):
    """``check-plugin minicnn_pkgtoy`` checks ``minicnn_pkgtoy.plugin``; asked again (by either
    name) it finds the registered plugin instead of registering it twice, also when it was
    registered under another name; a package with no hooks is still registered as before."""
    import importlib
    registry = Registry(load_entry_points=False)
    assert conformance.resolve_plugin(PACKAGE, registry) == f"{PACKAGE}.plugin"
    assert registry.layers["PkgDouble"][1] == f"{PACKAGE}.plugin"
    assert registry.kernel("PkgDouble", "cpu") is not None
    assert conformance.resolve_plugin(PACKAGE, registry) == f"{PACKAGE}.plugin"
    assert conformance.resolve_plugin(f"{PACKAGE}.plugin", registry) == f"{PACKAGE}.plugin"
    assert PACKAGE not in registry.plugin_names()
    renamed = Registry(load_entry_points=False)
    renamed.register(importlib.import_module(f"{PACKAGE}.plugin"), name="pkgtoy")
    assert conformance.resolve_plugin(PACKAGE, renamed) == "pkgtoy"
    assert "pkgtoy" in conformance.check_plugin(PACKAGE, renamed, devices=()).format()

    previous = set_registry(Registry(load_entry_points=False))
    try:
        assert main(["check-plugin", PACKAGE, "--device", "nodevice"]) == 0
    finally:
        set_registry(previous)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"plugin '{PACKAGE}.plugin': 1 layer type(s)"
    row = next(line for line in out.splitlines() if line.startswith("PkgDouble "))
    assert row.split()[1:] == ["2", "(class)", "cpu"] + ["ok"] * 8 + ["--"]

    bare = Registry(load_entry_points=False)
    report = conformance.check_plugin(f"{PACKAGE}_bare", bare)
    assert report.plugin == f"{PACKAGE}_bare" and report.layers == []
    assert "registers no layers" in report.format()


def test_an_entry_point_not_loaded_is_found_by_any_of_its_names(plugin_package):
    """Installed (a dist-info with an entry point) but not loaded (entry points off, as with
    ``MINICNN_DISABLE_PLUGIN_AUTOLOAD=1``): the entry-point name, the distribution name in either
    spelling, the module path and the package all register it under the entry point's name, with
    its distribution."""
    dist = plugin_package / f"{PACKAGE}-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: minicnn-pkgtoy\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[minicnn]\npkgtoy = {PACKAGE}.plugin\n")
    for name in ("pkgtoy", "minicnn-pkgtoy", "Minicnn_PkgToy", f"{PACKAGE}.plugin", PACKAGE):
        registry = Registry(load_entry_points=False)
        assert conformance.resolve_plugin(name, registry) == "pkgtoy", name
        assert registry.distributions["pkgtoy"] == "minicnn-pkgtoy"
        assert registry.layers["PkgDouble"][1] == "pkgtoy"
    report = conformance.check_plugin(PACKAGE, Registry(load_entry_points=False), devices=())
    assert report.format().splitlines()[0] == \
        "plugin 'pkgtoy' (package minicnn-pkgtoy): 1 layer type(s)"
    assert report.layers[0].failed == []


@pytest.fixture
def no_cuda(monkeypatch):
    """Describe a machine without CUDA. In a whole-suite run the CUDA tests select numba's
    simulator while they are collected, so the cuda device would be there: hide it."""
    import minicnn.device as device
    real = device.get_device

    def get_device(name):
        if getattr(name, "name", name) != "cpu":
            raise RuntimeError("the 'cuda' device is not available: hidden by the test")
        return real(name)

    monkeypatch.setattr(device, "get_device", get_device)


def test_self_test_on_the_builtin_activations(capsys, no_cuda):
    """The built-in activations need no help: constructed without arguments, shapes guessed."""
    registry = Registry(load_entry_points=False)
    previous = set_registry(registry)
    try:
        assert main(["check-plugin", "minicnn.layers.activation"]) == 0
    finally:
        set_registry(previous)
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:8]}
    assert sorted(rows) == ["ELU", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Tanh"]
    for cells in rows.values():
        assert cells[1:4] == ["1", "(guessed)", "cpu"]
        assert cells[4:12] == ["ok", "ok", "--", "ok", "ok", "ok", "ok", "ok*"]


def test_builtin_cases_run_and_catch_a_broken_builtin_kernel(no_cuda):
    """The built-in table checks Conv2d (its error cases too); a replaced kernel with a wrong
    weight gradient is caught."""
    registry = Registry(load_entry_points=False)
    r = conformance.check_layer("Linear", registry)
    assert r.cases_from == "2 (built-in)" and r.failed == []
    assert r.status("errors") == PASS and not r.partial("errors")
    linear_cpu = registry.kernel("Linear", "cpu")

    class WrongLinear(type(linear_cpu)):
        override = True

        def backward(self, layer, xs, ys, gys, gxs, ws, grads):
            super().backward(layer, xs, ys, gys, gxs, ws, grads)
            if grads.get("weight") is not None:
                grads["weight"] *= 1.01

    class Override:
        @minicnn.hookimpl
        def minicnn_kernels(self):
            return [WrongLinear]

    registry.register(Override(), name="override")
    report = conformance.check_plugin("override", registry)
    assert [r.type_name for r in report.layers] == ["Linear"]
    assert report.layers[0].failed == ["gradcheck"]
    assert "parameter 'weight'" in report.layers[0].details("gradcheck")[0]


# -- minicnn's random stream: saved and restored through the public API ---------------------------

def test_random_state_round_trip_and_preserved():
    minicnn.manual_seed(11)
    state = minicnn.random.get_state()
    want = minicnn.random.generator().random(5)
    assert not np.array_equal(minicnn.random.generator().random(5), want)   # the stream moved
    minicnn.random.set_state(state)
    np.testing.assert_array_equal(minicnn.random.generator().random(5), want)
    minicnn.random.set_state(state)                  # a snapshot: restoring it twice works
    np.testing.assert_array_equal(minicnn.random.generator().random(5), want)
    import pickle
    minicnn.random.set_state(pickle.loads(pickle.dumps(state)))
    np.testing.assert_array_equal(minicnn.random.generator().random(5), want)

    minicnn.random.set_state(state)
    with pytest.raises(RuntimeError, match="inside"):
        with minicnn.random.preserved():
            minicnn.manual_seed(99)
            minicnn.nn.Linear(4, 3)                  # draws weights from the reseeded stream
            raise RuntimeError("inside")
    np.testing.assert_array_equal(minicnn.random.generator().random(5), want)

    for bad in (None, {}, {"bit_generator": "seed"}, {"bit_generator": "PCG64", "state": 3}):
        with pytest.raises(ValueError, match="not a state from get_state"):
            minicnn.random.set_state(bad)


def test_the_suite_leaves_minicnn_random_stream_where_it_was(toys):
    """Building layers seeds the stream (cases, and a guessed layer whose weights are drawn at
    construction), yet the caller's next draws are the ones it would have had."""

    class Drawn(minicnn.Layer):
        """y = x + b, b drawn from minicnn's stream when built (with no arguments)."""

        def __init__(self):
            super().__init__()
            self.add_param("bias", minicnn.random.uniform_init((1,), 1.0))

        def infer_shapes(self, in_shapes):
            return [tuple(in_shapes[0])]

    class DrawnCPU(minicnn.Kernel):
        layer = "Drawn"

        def forward(self, layer, xs, ys, ws):
            np.add(xs[0], layer.bias.data[0], out=ys[0])

    class Plugin:
        @minicnn.hookimpl
        def minicnn_layers(self):
            return [Drawn]

        @minicnn.hookimpl
        def minicnn_kernels(self):
            return [DrawnCPU]

    registry = Registry(builtins=False, load_entry_points=False)
    registry.register(Plugin(), name="drawn")
    minicnn.manual_seed(5)
    want = minicnn.random.generator().random(4)
    minicnn.manual_seed(5)
    assert conformance.check_plugin("drawn", registry).layers[0].cases_from == "1 (guessed)"
    conformance.check_layer("Scale", toys)
    np.testing.assert_array_equal(minicnn.random.generator().random(4), want)


def test_the_suite_uses_no_private_random_state():
    source = "\n".join(p.read_text() for p in
                       (ROOT / "minicnn" / "conformance").glob("*.py"))
    assert "_generator" not in source


def test_public_names_of_the_package():
    """The split into a package kept every public name of the former module."""
    names = ["CHECKS", "FAIL", "NA", "PASS", "SKIP", "Case", "LayerReport", "PluginReport",
             "as_case", "check_layer", "check_plugin", "find_cases", "find_reference",
             "format_report", "plugin_layer_types", "resolve_plugin"]
    assert sorted(conformance.__all__) == sorted(names)
    assert all(getattr(conformance, name, None) is not None for name in names)
    from minicnn.conformance import Case, as_case
    assert as_case({"args": [3], "shapes": [[2, 3]]}) == Case(args=(3,), shapes=[(2, 3)])


def test_a_kernel_loaded_with_its_device_is_announced_when_the_device_is_missing(toys):
    """A plugin whose GPU kernel comes from ``minicnn_device_kernels``: where the device is not
    there, the cuda check says the kernel would load with it."""

    class LazyScale:
        @minicnn.hookimpl
        def minicnn_device_kernels(self, device):
            # "cuda" may be enabled already in a whole-suite run (the simulator); "nodevice" never
            if device == "nodevice":
                raise AssertionError("asked for kernels of a device that is not there")
            return []

    toys.register(LazyScale(), name="lazy-scale")
    try:
        r = conformance.check_layer("Scale", toys, devices=("nodevice",))
    finally:
        toys.unregister("lazy-scale")
    assert r.status("cuda") == SKIP
    assert "no 'nodevice' kernel registered yet (plugin 'lazy-scale' loads its 'nodevice' " \
           "kernels with the device), and the device is not available here" in \
           r.details("cuda")[0]


# -- the template plugin, installed as a user installs it ------------------------------------------

def test_template_installed_through_its_entry_point(tmp_path):
    """``pip install`` the template into a folder, then in fresh processes with entry points on:
    ``minicnn check-plugin swish`` passes, ``minicnn plugins`` lists Swish, and a model saved with
    it, loaded where the plugin is not installed, names the package to install."""
    try:
        import setuptools
    except ImportError:
        setuptools = None
    if setuptools is None or tuple(map(int, setuptools.__version__.split(".")[:2])) < (77, 0):
        pytest.skip("building the template offline (--no-build-isolation) needs setuptools>=77 "
                    "in this environment: pip install 'setuptools>=77'")
    source = tmp_path / "src"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", "tests"))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-compile", "--target", str(target),
                          str(source)], capture_output=True, text=True, timeout=180)
    assert pip.returncode == 0, pip.stderr
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(ROOT)])
    env.setdefault("NUMBA_NUM_THREADS", "2")

    def minicnn_cli(*args):
        return subprocess.run([sys.executable, "-m", "minicnn", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    checked = minicnn_cli("check-plugin", "swish")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0] == "plugin 'swish' (package minicnn-swish): 1 layer type(s)"
    row = next(line for line in lines if line.startswith("Swish ")).split()
    assert row[:3] + row[4:12] == ["Swish", "7", "(class)"] + ["ok"] * 8
    assert row[12] in ("ok", "--")          # cuda parity: "--" on a machine without a GPU
    if row[12] == "--":                     # the cuda kernel loads with the device, not here
        assert row[3] == "cpu"
        assert "cuda: not checked: no 'cuda' kernel registered yet (plugin 'swish' loads its " \
               "'cuda' kernels with the device), and the device is not available here" \
               in checked.stdout
    else:
        assert row[3] == "cpu,cuda"

    listing = minicnn_cli("plugins")
    assert listing.returncode == 0, listing.stderr
    swish = next(line for line in listing.stdout.splitlines() if line.split()[:1] == ["Swish"])
    assert swish.split()[1:] == ["cpu", "swish"]     # its cuda kernel loads with the device

    model_path = tmp_path / "model.mcnn"
    saved = subprocess.run([sys.executable, "-c", (
        "import sys, numpy as np, minicnn\n"
        "from minicnn import nn\n"
        "from minicnn_swish import Swish\n"
        "model = minicnn.Sequential(nn.Conv2d(1, 2, 3), Swish(2, beta=(0.5, 2.0)))\n"
        "minicnn.save(model, sys.argv[1])\n"
        "back = minicnn.load(sys.argv[1])\n"
        "x = np.ones((1, 1, 5, 5), np.float32)\n"
        "assert np.array_equal(back(x), model(x))\n"), str(model_path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert saved.returncode == 0, saved.stderr

    # this process has no entry points (tests/conftest.py) and the template is not on its path
    registry = Registry(load_entry_points=False)
    previous = set_registry(registry)
    try:
        with pytest.raises(minicnn.ModelFormatError) as info:
            minicnn.load(model_path)
    finally:
        set_registry(previous)
    message = str(info.value)
    assert "layer type 'Swish' is provided by plugin 'swish' (package 'minicnn-swish'); install " \
           "it" in message
    assert str(model_path) in message and "module '1'" in message
