"""``minicnn saliency MODEL IMAGE --class K -o heat.png`` on saved models, zoo names and (when
../shared/data is present) Tiny Darknet on a photo of a cat."""

from pathlib import Path

import minicnn
import numpy as np
import pytest
from minicnn.cli import main
from minicnn.data import save_image
from minicnn.registry import Registry, set_registry
from PIL import Image
from saliency_models import SQUARE, bright_square_model, square_image

from minicnn_saliency import cam, grad_cam, plugin

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


@pytest.fixture(scope="module")
def registry():
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="saliency")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


@pytest.fixture(scope="module")
def files(registry, tmp_path_factory):
    """The bright-square model saved with minicnn.save, a 50x40 image and a labels file."""
    root = tmp_path_factory.mktemp("saliency")
    minicnn.save(bright_square_model(), str(root / "square.mcnn"))
    save_image(square_image(height=40, width=50), root / "square.png")
    (root / "labels.txt").write_text("bright\ndark\n")
    return root


def test_writes_the_overlay_at_the_image_size(files, tmp_path, capsys):
    out = tmp_path / "heat.png"
    assert main(["saliency", str(files / "square.mcnn"), str(files / "square.png"), "--class",
                 "0", "-o", str(out), "--method", "cam", "--alpha", "1", "--cmap", "gray",
                 "--top-k", "2", "--labels", str(files / "labels.txt")]) == 0
    text = capsys.readouterr().out
    assert "class 0 'bright'" in text and "cam at node 'relu' (40x50)" in text
    assert "(50x40)" in text and "1. 0 'bright'" in text and "2. 1 'dark'" in text
    with Image.open(out) as png:
        assert png.size == (50, 40) and png.mode == "RGB"
        gray = np.asarray(png)[:, :, 0]
    i, j = np.unravel_index(np.argmax(gray), gray.shape)
    assert SQUARE[0].start <= i < SQUARE[0].stop and SQUARE[1].start <= j < SQUARE[1].stop


def test_class_by_name_methods_and_default_output(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [str(files / "square.mcnn"), str(files / "square.png"), "--labels",
            str(files / "labels.txt")]
    assert main(["saliency"] + args + ["--class", "dark"]) == 0
    assert "class 1 'dark'" in capsys.readouterr().out
    assert (tmp_path / "square_gradcam.png").is_file()
    assert main(["saliency"] + args + ["--method", "gradient", "--smooth", "3"]) == 0
    assert "smoothgrad ->" in capsys.readouterr().out
    with Image.open(tmp_path / "square_gradient.png") as png:
        assert png.size == (50, 40)


def test_zoo_name_with_weights_and_a_fixed_input_size(registry, tmp_path, capsys):
    """A zoo name builds the model (--weights loads it); LeNet-5 takes 28x28, so the 50x40 image
    is resized for the model and the heat comes back at 50x40; CAM is refused by name."""
    minicnn.manual_seed(0)
    lenet = minicnn.zoo.lenet5(num_classes=4)
    lenet.save_weights(str(tmp_path / "lenet.safetensors"))
    save_image(square_image(height=40, width=50), tmp_path / "img.png")
    common = ["saliency", "lenet5", str(tmp_path / "img.png"), "--num-classes", "4",
              "--in-channels", "1", "--weights", str(tmp_path / "lenet.safetensors")]
    assert main(common + ["-o", str(tmp_path / "h.png"), "--class", "2"]) == 0
    out = capsys.readouterr().out
    assert "class 2" in out and "gradcam at node 'pool2' (5x5)" in out
    with Image.open(tmp_path / "h.png") as png:
        assert png.size == (50, 40)
    x = minicnn.data.load_image(tmp_path / "img.png", mode="L", size=(28, 28))
    assert f"score {grad_cam(lenet, x, target=2).scores[0, 2]:.4g}" in out
    assert main(common + ["--method", "cam", "-o", str(tmp_path / "c.png")]) == 1
    assert "CAM needs a model ending in global average pooling" in capsys.readouterr().err


def test_errors(files, tmp_path, capsys):
    model, image = str(files / "square.mcnn"), str(files / "square.png")
    cases = [
        (["nope_model", image], "'nope_model' is neither a model file nor a zoo model"),
        ([model, str(tmp_path / "missing.png")], "missing.png: no such image file"),
        ([model, image, "--class", "7"], "class 7 is out of range: the model has 2 classes"),
        ([model, image, "--class", "cat"], "give --labels FILE"),
        ([model, image, "--layer", "fc"], "node 'fc' (Linear, output (N, 2)) is not a feature"),
        ([model, image, "--alpha", "2"], "--alpha must be in [0, 1]"),
        ([model, image, "--smooth", "4"], "--smooth goes with --method gradient"),
        ([model, image, "--weights", model], "--weights goes with a zoo name"),
    ]
    for args, message in cases:
        assert main(["saliency"] + args + ["-o", str(tmp_path / "x.png")]) == 1, args
        assert message in capsys.readouterr().err, args
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["saliency", model, str(bad), "-o", str(tmp_path / "x.png")]) == 1
    assert "bad.png" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_python_dash_m_entry(files, tmp_path, capsys):
    from minicnn_saliency.cli import main as plugin_main
    out = tmp_path / "h.png"
    assert plugin_main([str(files / "square.mcnn"), str(files / "square.png"), "-o",
                        str(out)]) == 0
    assert out.is_file()
    assert plugin_main([str(files / "square.mcnn"), str(files / "square.png"), "--class",
                        "9"]) == 1
    assert "out of range" in capsys.readouterr().err


def test_tiny_darknet_looks_at_the_cat(registry, tmp_path, capsys):
    """Tiny Darknet (imported from TF.js) on chelsea.png: a cat class comes first, its CAM is
    its class map conv2d_16 and Grad-CAM there is ReLU(CAM) / (14 * 14)."""
    model_json = SHARED_DATA / "weights" / "darknet-tiny-tfjs" / "model.json"
    photo = SHARED_DATA / "images" / "chelsea.png"
    if not model_json.is_file() or not photo.is_file():
        pytest.skip(f"Tiny Darknet or chelsea.png not found under {SHARED_DATA}")
    out = tmp_path / "cat.png"
    assert main(["saliency", str(model_json), str(photo), "-o", str(out), "--top-k", "3"]) == 0
    text = capsys.readouterr().out
    first = text.splitlines()[1]
    assert any(cat in first for cat in ("Egyptian cat", "tabby", "tiger cat")), text
    assert "gradcam at node 'conv2d_16' (14x14)" in text
    with Image.open(out) as png, Image.open(photo) as original:
        assert png.size == original.size
    model = minicnn.io.import_keras_tfjs(model_json)
    x = minicnn.data.load_image(photo, size=(224, 224))
    c, g = cam(model, x), grad_cam(model, x)
    assert c.layer == g.layer == "conv2d_16"
    np.testing.assert_allclose(g.maps, np.maximum(c.maps, 0) / 196, rtol=1e-4, atol=1e-7)
