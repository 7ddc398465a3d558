"""Meta-tests that keep the contract honest: every registered layer is documented, has a CPU kernel,
a test and a loop reference; every functional name resolves."""

from pathlib import Path

import pytest

from minicnn import functional
from minicnn.registry import Registry

TESTS = Path(__file__).parent
REGISTRY = Registry(load_entry_points=False)
LAYER_TYPES = sorted(REGISTRY.layers)


def _text(paths):
    return "\n".join(p.read_text() for p in paths)


TEST_TEXT = _text(TESTS.glob("test_*.py"))
REFERENCE_TEXT = _text((TESTS / "reference").glob("*.py")) + TEST_TEXT


@pytest.mark.parametrize("type_name", LAYER_TYPES)
def test_layer_has_cpu_kernel_docstring_and_test(type_name):
    cls = REGISTRY.layers[type_name][0]
    assert (cls.__doc__ or "").strip(), f"{type_name} has no docstring (formula and shapes)"
    kernel = REGISTRY.kernel(type_name, "cpu")
    assert kernel is not None, f"{type_name} has no CPU kernel"
    assert type(kernel).backward is not type(kernel).__mro__[-2].backward, \
        f"{type_name}'s CPU kernel has no backward"
    assert f"nn.{type_name}(" in TEST_TEXT or f"{type_name}(" in TEST_TEXT, \
        f"no test builds {type_name}"


def test_every_layer_family_has_a_reference():
    """Each built-in family file pair has a loop oracle module in tests/reference/."""
    families = {p.stem for p in (Path(functional.__file__).parent / "layers").glob("*_cpu.py")}
    references = {p.stem for p in (TESTS / "reference").glob("*.py")}
    covered = {"activation": "elementwise", "linear": "elementwise", "shape": "elementwise",
               "merge": "elementwise", "winograd": "conv"}
    missing = sorted(f[:-4] for f in families
                     if covered.get(f[:-4], f[:-4]) not in references)
    assert not missing, f"layer families without a loop reference in tests/reference: {missing}"


def test_functional_names_resolve():
    assert functional.__all__
    for name in functional.__all__:
        assert callable(getattr(functional, name)), name
