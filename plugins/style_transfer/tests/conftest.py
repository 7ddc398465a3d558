"""Tests run from a checkout without installing the plugin: put ``plugins/style_transfer`` on the
path, keep third-party entry points out of the process-wide registry (as minicnn's own tests do),
and register this plugin explicitly. ``shared_data`` skips a test, with the reason, when
``../shared/data`` (the photo, the paintings and Tiny Darknet) is absent."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.insert(0, str(PLUGIN_ROOT))

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


@pytest.fixture(autouse=True, scope="module")
def _style_plugin_registered():
    """Each test module runs with a fresh registry (built-ins and this plugin, no entry points)
    and puts the previous one back afterwards, so other test folders never see this plugin."""
    from minicnn.registry import Registry, set_registry

    from minicnn_style_transfer import ensure_registered
    registry = Registry(load_entry_points=False)
    ensure_registered(registry)
    previous = set_registry(registry)
    yield registry
    set_registry(previous)


@pytest.fixture
def shared_data():
    """``../shared/data`` beside the checkout; tests that need it skip with the reason when
    absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (present on the dev machines "
                    f"only)")
    return SHARED_DATA
