"""Test-wide settings: no third-party plugins from entry points unless a test asks for them."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data():
    """``../shared/data`` beside the checkout; tests that need it skip with the reason when
    absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (present on the dev machines "
                    f"only)")
    return SHARED_DATA
