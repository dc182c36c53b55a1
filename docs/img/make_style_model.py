"""Regenerate the style-model A/B figure in docs/img: stylize with a style model alone against
the base model alone, on scikit-image's bundled samples.

    python docs/img/make_style_model.py [--models models] [--out docs/img]

The "painter" is a folder of code-drawn swirling-stroke pictures (make_stylize.swirl_strokes
with different seeds): no painting file is used. A style model is fine-tuned from the given
models folder's `builtin` for a few steps (the exemplar bank is what stylize uses; the steps
only keep the figure quick) in a temporary folder, then both models stylize astronaut()
(NASA, public domain) and coffee() (CC0) with no reference image.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from engine.client import Client
from engine.diffusion.recipes import finetune_defaults
from engine.diffusion.trainer import train
from make_stylize import fit, swirl_strokes  # docs/img, beside this script
from panels import figure_options, grid, label

PAINTINGS = 5  # code-drawn pictures in the painter's folder (one is held out)


def main() -> None:
    from skimage import data

    ap = figure_options(__doc__)
    ap.add_argument("--resolution", type=int, default=256)
    args = ap.parse_args()
    photos = [("astronaut", fit(data.astronaut()[0:400, 60:460])), ("coffee", fit(data.coffee()))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "swirls"
        folder.mkdir()
        for i in range(PAINTINGS):
            Image.fromarray(swirl_strokes(480, 360, seed=10 + i)).save(folder / f"swirls_{i}.png")
        models = root / "models"
        shutil.copytree(Path(args.models) / "builtin", models / "builtin")
        cfg = finetune_defaults([str(folder)], str(models / "swirls"), str(models / "builtin"), steps=4,
                                sample_every=0, device="cpu")
        train(cfg, log=lambda *_: None)
        painter = label(fit(swirl_strokes(480, 360, seed=10)), "the painter (1 of 5)")
        rows: list[list[np.ndarray | None]] = []
        with Client.in_process(models_dir=str(models), device="auto", timeout=900) as client:
            for name, photo in photos:
                base = client.stylize(photo, style_model="builtin", seed=0, resolution=args.resolution)
                styled = client.stylize(photo, style_model="swirls", seed=0, resolution=args.resolution)
                rows.append([label(photo, name), painter, label(base, "base model"), label(styled, "style model")])
    path = Path(args.out) / "style_model_ab.png"
    Image.fromarray(grid(rows)).quantize(colors=256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
