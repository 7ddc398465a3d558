"""The README's Python examples run as written (the training one on a smaller budget)."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index]
    code = code.replace("data.Shapes(6000", "data.Shapes(256").replace("epochs=5", "epochs=1")
    namespace = {}
    prelude = "import numpy as np\nimport minicnn\nfrom minicnn import nn, functional as F\n"
    exec(compile(prelude + code, f"README block {index}", "exec"), namespace)  # noqa: S102
