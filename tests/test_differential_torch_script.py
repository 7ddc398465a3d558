"""``scripts/differential_torch.py`` runs every family against PyTorch and finds no mismatch.

Opt-in (``MINICNN_TEST_TORCH_COMPARE=1``, as the style-transfer comparison): PyTorch is not a test
dependency, and importing it takes seconds on the 2-core CI machine. Skipped without torch."""

import importlib.util
import os
from pathlib import Path

import pytest

if os.environ.get("MINICNN_TEST_TORCH_COMPARE") != "1":
    pytest.skip("opt-in: set MINICNN_TEST_TORCH_COMPARE=1 (imports torch)",
                allow_module_level=True)
pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "differential_torch.py"


def test_every_family_agrees_with_pytorch(capsys):
    spec = importlib.util.spec_from_file_location("differential_torch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--seconds", "3", "--seed", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if ": " in line]
    assert len(lines) == len(module.FAMILIES)
    for line in lines:
        compared = int(line.split(": ")[1].split()[0])
        assert compared > 0 and line.endswith("0 mismatches"), line
