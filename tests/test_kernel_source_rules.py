"""Rules for kernel source that numba's typing makes easy to break and the simulator cannot see.

Inside a jitted function numba types ``float(x)`` as x's own type, so ``float(a[i])`` of a
float32 array stays float32: a sum meant to run in float64 silently runs in float32 on the GPU
(clip_grad_norm drifted by 1e-8 on a real H100 while the simulator, which runs Python floats,
agreed to the bit). ``np.float64(a[i])`` widens for real, on both.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(list((ROOT / "minicnn").rglob("*.py"))
                 + list((ROOT / "plugins").glob("*/minicnn_*/*.py")))


def _is_kernel(node):
    return any("jit" in ast.unparse(d) or "cpu_kernel" in ast.unparse(d)
               for d in node.decorator_list)


def float_of_an_element(tree):
    """(line, source) of every ``float(<subscript>)`` inside a jitted function."""
    found = []
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef) and _is_kernel(func):
            for node in ast.walk(func):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id == "float" and len(node.args) == 1
                        and isinstance(node.args[0], ast.Subscript)):
                    found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_rule_finds_a_float_of_an_element():
    bad = "@cuda.jit\ndef k(a, out):\n    out[0] = float(a[0]) * 2\n"
    good = "@cuda.jit\ndef k(a, out):\n    out[0] = np.float64(a[0]) * 2\n"
    host = "def f(a):\n    return float(a[0])\n"
    assert float_of_an_element(ast.parse(bad)) == [(3, "float(a[0])")]
    assert float_of_an_element(ast.parse(good)) == []
    assert float_of_an_element(ast.parse(host)) == []


def test_kernels_widen_elements_with_np_float64():
    assert len(SOURCES) > 50
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}"
                 for path in SOURCES
                 for line, text in float_of_an_element(ast.parse(path.read_text()))]
    assert not offenders, ("float() of an array element keeps float32 in numba; use np.float64():\n"
                           + "\n".join(offenders))
