"""The target run of the style-transfer plugin, and the pictures of its README.

For each feature network and painting: the shared photo (``amber.jpg``) at 256x256 in the style of
the painting, 300 L-BFGS iterations from the photo, the Gatys layers (content conv4_2, style
conv1_1 ... conv5_1, equal weights, average pooling). Prints the time, the evaluations and how far
the style loss fell; writes ``docs/pictures/style_<network>_<painting>.png`` (content, style and
result side by side) and ``docs/pictures/style_curves.png`` (log10 of the style loss per
evaluation)::

    NUMBA_NUM_THREADS=2 python plugins/style_transfer/examples/make_pictures.py
    python plugins/style_transfer/examples/make_pictures.py --networks random --styles candy \\
        --iterations 100 --out /tmp/pictures

Needs ``../shared/data`` (the photo, the paintings and Tiny Darknet).
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "plugins" / "style_transfer"))

from minicnn.plot import line_chart  # noqa: E402

from minicnn_style_transfer import (  # noqa: E402
    DEFAULT_WEIGHTS,
    GATYS,
    StyleTransfer,
    feature_network,
    load_rgb,
    panel,
)
from minicnn_style_transfer.networks import find_shared_data  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default="darknet,random")
    parser.add_argument("--styles", default="mosaic,candy")
    parser.add_argument("--content", default="amber")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "docs" / "pictures"))
    args = parser.parse_args(argv)
    images = find_shared_data("images")
    if images is None:
        raise SystemExit("../shared/data/images not found")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    content = load_rgb(next(images.glob(f"{args.content}.*")), args.size)
    curves = {}
    for name in args.networks.split(","):
        network = feature_network(name, pooling=GATYS["pooling"])
        defaults = DEFAULT_WEIGHTS[name]
        for style_name in args.styles.split(","):
            style = load_rgb(next(images.glob(f"{style_name}*.*")), args.size)
            transfer = StyleTransfer(network, GATYS["content_layer"], GATYS["style_layers"],
                                     GATYS["style_weights"], **defaults)
            load = os.getloadavg()[0]
            began = time.perf_counter()
            result = transfer.run(content, style, args.iterations, init="content")
            seconds = time.perf_counter() - began
            h, w = result.image.shape[1:]
            print(f"{name} {style_name}: {w}x{h}, {result.iterations} L-BFGS iterations, "
                  f"{result.evaluations} evaluations in {seconds:.1f} s "
                  f"({1e3 * seconds / result.evaluations:.0f} ms each; load average {load:.1f} "
                  f"before); style loss {result.style_start:.4g} -> {result.style_end:.4g} "
                  f"({result.style_ratio:.0f}x lower); content loss "
                  f"{result.history[0].content:.4g} -> {result.history[-1].content:.4g}",
                  flush=True)
            picture = out / f"style_{name}_{style_name.split('-')[0]}.png"
            panel([content, style, result.image],
                  ["content (photo)", f"style ({style_name})",
                   f"{name}: {result.iterations} L-BFGS iterations, style loss "
                   f"/{result.style_ratio:.0f}"]).save(picture)
            curves[f"{name} {style_name}"] = [math.log10(max(e.style, 1e-30))
                                              for e in result.history]
            print(f"  wrote {picture}")
    line_chart(curves, str(out / "style_curves.png"), title="style loss (log10)",
               xlabel="evaluation", ylabel="log10 style loss")
    print(f"  wrote {out / 'style_curves.png'}")


if __name__ == "__main__":
    main()
