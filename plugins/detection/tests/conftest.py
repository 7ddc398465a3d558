"""Tests run from a checkout without installing the plugin: put ``plugins/detection`` on the
path, and keep third-party entry points out of the process-wide registry (as minicnn's own tests
do); the plugin tests register the plugin explicitly."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MINICNN_DISABLE_PLUGIN_AUTOLOAD", "1")

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.insert(0, str(PLUGIN_ROOT))
