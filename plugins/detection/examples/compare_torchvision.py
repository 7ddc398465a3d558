"""Compare roi_align (forward and feature gradient) with torchvision's own pure-PyTorch
``_roi_align`` (torchvision/ops/roi_align.py, "transcribed directly off of the roi_align CUDA
kernel"), on random boxes, float64.

    python plugins/detection/examples/compare_torchvision.py --torchvision DIR

``DIR`` holds an unpacked torchvision wheel (``pip install --no-deps --target DIR
torchvision``); only ``ops/roi_align.py`` is read, as text, so a build whose C++ extension does
not load (a CUDA wheel with a CPU PyTorch) still serves. Needs PyTorch; never used by the tests.

The boxes lie inside the feature map: torchvision's Python port leaves out its C++ and CUDA
kernels' rule that a sample outside ``[-1, H] x [-1, W]`` counts as 0 (minicnn follows the C++
kernels), so boxes reaching past the map differ there by design; the script shows one such case.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minicnn_detection import roi_align  # noqa: E402
from minicnn_detection.roi import RoIAlign  # noqa: E402


def torchvision_roi_align(directory):
    import torch
    source = (Path(directory) / "torchvision" / "ops" / "roi_align.py").read_text()
    start = source.index("# NB: all inputs are tensors")
    stop = source.index("@torch.fx.wrap")
    code = source[start:stop].replace("@lazy_compile(dynamic=True)\n", "")
    namespace = {"torch": torch}
    exec(compile(code, "torchvision/ops/roi_align.py", "exec"), namespace)   # noqa: S102
    return namespace["_roi_align"]


def random_rois(rng, n_images, height, width, count, scale):
    """Boxes inside the map (image coordinates), of any size down to zero."""
    h, w = height / scale, width / scale
    xy = rng.uniform(0, [0.9 * w, 0.9 * h], (count, 2))
    wh = rng.uniform(0, [0.8 * w, 0.8 * h], (count, 2))
    batch = rng.integers(0, n_images, (count, 1))
    return np.concatenate([batch, xy, np.minimum(xy + wh, [w, h])], 1)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--torchvision", required=True)
    args = parser.parse_args(argv)
    import torch
    tv = torchvision_roi_align(args.torchvision)
    rng = np.random.default_rng(0)
    worst = 0.0
    cases = [(2, 4, 12, 14, (3, 3), 1.0, -1, True), (1, 3, 16, 10, (2, 4), 0.5, 2, False),
             (3, 2, 9, 9, (7, 7), 0.25, -1, False), (2, 5, 20, 20, (4, 4), 0.5, 0, True)]
    for n, c, h, w, out, scale, sr, aligned in cases:
        x = rng.standard_normal((n, c, h, w))
        rois = random_rois(rng, n, h, w, 30, scale)
        ours = roi_align(x, rois, out, scale, sr, aligned)
        xt = torch.tensor(x, requires_grad=True)
        theirs = tv(xt, torch.tensor(rois), scale, out[0], out[1], sr, aligned)
        gy = rng.standard_normal(ours.shape)
        (theirs * torch.tensor(gy)).sum().backward()
        layer = RoIAlign(out, scale, sr, aligned)
        layer([x, rois])
        g_ours = layer.backward(gy)[0]
        err_f = np.abs(ours - theirs.detach().numpy()).max()
        err_b = np.abs(g_ours - xt.grad.numpy()).max()
        worst = max(worst, err_f, err_b)
        print(f"N={n} C={c} {h}x{w} out={out} scale={scale} sampling_ratio={sr} "
              f"aligned={aligned}: max |forward diff| {err_f:.2e}, max |gradient diff| "
              f"{err_b:.2e}")
    print(f"worst difference {worst:.2e}")
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    outside = np.array([[0, -6.0, -6.0, 2.0, 2.0]])           # half the box before the map
    ours = roi_align(x, outside, 2, 1.0, 2, False)[0, 0]
    theirs = tv(torch.tensor(x), torch.tensor(outside), 1.0, 2, 2, 2, False)[0, 0].numpy()
    print(f"a box reaching past the map (by design): minicnn {ours.ravel().tolist()}, "
          f"torchvision's Python port {theirs.ravel().tolist()}")
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
