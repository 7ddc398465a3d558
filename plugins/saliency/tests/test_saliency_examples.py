"""The picture script runs end to end at its small size."""

import importlib.util
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "draw_pictures.py"


def test_draw_pictures_small(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("saliency_draw_pictures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--small", "--no-darknet", "--out", str(tmp_path)]) == 0
    assert "validation accuracy" in capsys.readouterr().out
    for name in ("saliency_cam.png", "saliency_gradcam.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.mode == "RGB" and picture.width > 600 and picture.height > 300
