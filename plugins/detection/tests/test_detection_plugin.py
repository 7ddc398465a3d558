"""Registration through minicnn's plugin hooks, the entry point, and the ``minicnn detect``
command (train a tiny detector, then detect in a PNG)."""

import os
import subprocess
import sys
from pathlib import Path

import minicnn
import numpy as np
import pytest
from minicnn import PluginError
from minicnn.cli import main
from minicnn.registry import Registry, set_registry
from PIL import Image

import minicnn_detection
from minicnn_detection import plugin

ROOT = Path(minicnn_detection.__file__).parents[1]


@pytest.fixture
def registry():
    reg = Registry(load_entry_points=False)
    reg.register(plugin, name="detection")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_registers_layers_kernels_models_datasets_and_command(registry):
    assert registry.layers["RoIAlign"] == (minicnn_detection.RoIAlign, "detection")
    assert registry.layers["RoIPool"] == (minicnn_detection.RoIPool, "detection")
    assert registry.kernel("RoIAlign", "cpu") is not None
    assert registry.kernel("RoIPool", "cpu") is not None
    assert registry.models["localizer"][0] is minicnn_detection.localizer
    assert registry.datasets["detshapes"][0] is minicnn_detection.DetShapes
    assert registry.datasets["voc_detection"][0] is minicnn_detection.VOCDetection
    command = registry.commands["detect"][0]
    assert isinstance(command, minicnn.Command) and command.name == "detect"
    assert isinstance(registry.models["detection_backbone"][0](), minicnn.Model)


def test_registering_twice_is_refused_and_unregister_cleans_up(registry):
    with pytest.raises(PluginError, match="already registered"):
        registry.register(plugin, name="detection")
    registry.unregister("detection")
    assert "RoIAlign" not in registry.layers and "detect" not in registry.commands


def test_a_model_with_roi_layers_saves_and_loads(registry, tmp_path):
    f, r = minicnn.Input((2, None, None)), minicnn.Input((5,))
    model = minicnn.Model([f, r], minicnn_detection.RoIAlign(3, 0.5, 2)([f, r]))
    path = tmp_path / "m.mcnn"
    minicnn.save(model, str(path))
    again = minicnn.load(str(path))
    x = np.random.default_rng(0).random((1, 2, 8, 8)).astype(np.float32)
    rois = np.array([[0, 1, 2, 9, 12]], np.float32)
    np.testing.assert_array_equal(again([x, rois]), model([x, rois]))


def test_entry_point_is_declared():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "minicnn-detection"
    assert "minicnn" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["minicnn"] == {
        "detection": "minicnn_detection.plugin"}


def test_loaded_from_the_entry_point(tmp_path):
    """As if installed: a fresh ``python -m minicnn`` lists the plugin's names and runs
    ``minicnn detect --help``."""
    dist = tmp_path / "minicnn_detection-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: minicnn-detection\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[minicnn]\ndetection = minicnn_detection.plugin\n")
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")])
    listing = subprocess.run([sys.executable, "-m", "minicnn", "plugins"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()
             if line.startswith("  ")}
    for name in ("RoIAlign", "RoIPool", "detect", "detshapes"):
        assert lines[name].split()[-1] == "detection", listing.stdout
    helped = subprocess.run([sys.executable, "-m", "minicnn", "detect", "--help"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--preset" in helped.stdout


def test_detect_train_then_detect(registry, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["detect", "train", "--epochs", "1", "--train-size", "32", "--val-size", "8",
                 "--size", "48", "--num-classes", "2", "--output", str(out), "--threads", "1",
                 "--no-progress"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["curve.png", "detections.png",
                                                     "detector.mcnn", "history.json"]
    assert "validation mAP@0.5" in capsys.readouterr().out
    image = minicnn_detection.DetShapes(1, 48, num_classes=2, seed=5)[0][0]
    Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    code = main(["detect", str(tmp_path / "a.png"), "--model", str(out / "detector.mcnn"),
                 "-o", str(tmp_path / "boxes.png"), "--score", "0.0", "--threads", "1"])
    assert code == 0 and (tmp_path / "boxes.png").exists()
    assert "object(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--model"):
        main(["detect", str(tmp_path / "a.png")])
    minicnn.save(minicnn.nn.Linear(2, 2), tmp_path / "plain.mcnn")
    code = main(["detect", str(tmp_path / "a.png"), "--model", str(tmp_path / "plain.mcnn")])
    assert code == 1 and "not a detector file" in capsys.readouterr().err


def test_the_roi_layers_pass_every_conformance_check_on_the_cpu(registry):
    """What ``minicnn check-plugin detection`` runs: the float32 forward against the float64 loops
    of :mod:`minicnn_detection.references` (torchvision's CPU kernels transcribed), float64
    gradcheck, layout, repeat, state round trips and the declared refusals (hyper-parameters,
    ranks, a batch index outside the batch, a NaN coordinate) for RoIPool and RoIAlign. Every
    column passes in full; the cuda column is test_detection_roi_cuda.py's (simulator)."""
    from minicnn import conformance
    report = conformance.check_plugin("detection", registry, devices=())
    assert sorted(r.type_name for r in report.layers) == ["RoIAlign", "RoIPool"]
    cases = {"RoIAlign": "12 (class)", "RoIPool": "9 (class)"}
    for layer in report.layers:
        assert layer.cases_from == cases[layer.type_name]
        assert layer.failed == [], report.format()
        for check in conformance.CHECKS[:-1]:
            assert layer.status(check) == conformance.PASS and not layer.partial(check), \
                (layer.type_name, check, report.format(verbose=True))
        assert layer.status("cuda") == conformance.SKIP


def test_the_forward_check_catches_a_kernel_that_disagrees_with_the_reference(registry):
    """The reference is really compared: a RoIAlign whose reference samples one cell off fails
    the forward column (and only that one)."""
    from minicnn import conformance

    from minicnn_detection import references

    def shifted(layer, features, rois):
        moved = rois.copy()
        moved[:, 1:] += 1.0 / layer.spatial_scale
        return references.roi_align(features, moved, layer.output_size, layer.spatial_scale,
                                    layer.sampling_ratio, layer.aligned)

    report = conformance.check_layer("RoIAlign", registry, reference=shifted, devices=())
    assert report.failed == ["forward"], report.results
    assert "RoIAlign output 0" in report.details("forward")[0]


def test_check_plugin_finds_the_plugin_by_its_package_name(registry):
    """``minicnn check-plugin minicnn_detection`` (the package, not its ``.plugin`` module): the
    registered plugin, or, where it is not registered, its plugin module."""
    from minicnn import conformance
    assert conformance.resolve_plugin("minicnn_detection", registry) == "detection"
    fresh = Registry(load_entry_points=False)
    assert conformance.resolve_plugin("minicnn_detection", fresh) == "minicnn_detection.plugin"
    assert fresh.layers["RoIAlign"] == (minicnn_detection.RoIAlign, "minicnn_detection.plugin")
