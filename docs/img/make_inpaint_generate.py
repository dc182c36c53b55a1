"""Regenerate the inpaint / generate figures in docs/img from scikit-image's bundled samples.

    python docs/img/make_inpaint_generate.py [--models models] [--out docs/img]

Runs the real engine in-process with the given models folder (default: the shipped
`models/builtin`). Sources: skimage.data.astronaut() (NASA, public domain) and
skimage.data.chelsea() / coffee() (CC0); nothing else goes into the figures.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.client import Client
from panels import figure_options, grid, label  # docs/img/panels.py, beside this script



def scribbles(h: int, w: int, seed: int, n: int = 7, width: int = 5) -> np.ndarray:
    """Hand-drawn-looking marks over a photo: the defects the example removes."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    for _ in range(n):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * math.pi)
        pts = [(x, y)]
        for _ in range(6):
            angle += rng.normal(0, 0.5)
            x, y = x + 18 * math.cos(angle), y + 18 * math.sin(angle)
            pts.append((x, y))
        draw.line(pts, fill=255, width=width, joint="curve")
    return np.asarray(im) > 0


def overlay(img: np.ndarray, mask: np.ndarray, colour=(255, 40, 40)) -> np.ndarray:
    """The 'before' panel: the selection painted over the photo, as an editor shows it."""
    out = img.copy()
    out[mask] = (0.35 * out[mask] + 0.65 * np.array(colour)).astype(np.uint8)
    return out


def main() -> None:
    from skimage import data

    ap = figure_options(__doc__)
    args = ap.parse_args()
    out = Path(args.out)
    with Client.in_process(models_dir=args.models, device="auto", timeout=600) as client:
        # 1. defect removal: marks scribbled over a portrait
        face = np.ascontiguousarray(data.astronaut()[30:286, 120:376])
        marks = scribbles(*face.shape[:2], seed=3)
        damaged = face.copy()
        damaged[marks] = (250, 250, 235)
        fixed = client.inpaint(damaged, (marks[..., None] * 255).astype(np.uint8), seed=0)
        # 2. object removal: the spoon on the saucer (coffee, CC0)
        cup = np.ascontiguousarray(data.coffee()[40:360, 240:480])
        spoon = Image.new("L", (240, 320), 0)
        draw = ImageDraw.Draw(spoon)
        draw.ellipse([78, 188, 174, 292], fill=255)  # the bowl
        draw.line([(174, 22), (170, 70), (158, 132), (144, 196)], fill=255, width=22, joint="curve")  # the handle
        sel = np.asarray(spoon) > 0
        removed = client.inpaint(cup, (sel[..., None] * 255).astype(np.uint8), seed=0)
        rows = [[label(damaged, "damaged"), label(overlay(damaged, marks), "mask"), label(fixed, "inpainted")],
                [label(cup, "original"), label(overlay(cup, sel), "mask"), label(removed, "inpainted")]]
        Image.fromarray(grid(rows)).save(out / "inpaint_before_after.png", optimize=True)

        # 3. a seamless pattern, tiled 2x2, and a texture grown from a CC0 reference crop
        tile = client.generate(128, 128, tileable=True, seed=7)
        ref = np.ascontiguousarray(data.chelsea()[5:85, 190:300])  # forehead fur
        tex = client.generate(128, 128, reference=ref, tileable=True, seed=1)
        rows = [[label(np.tile(tile, (2, 2, 1)), "generate tileable, 2x2"),
                 label(np.tile(tex, (2, 2, 1)), "from a reference, 2x2"),
                 label(np.pad(ref, ((88, 88), (73, 73), (0, 0)), constant_values=255), "reference")]]
        Image.fromarray(grid(rows)).save(out / "generate_tileable_2x2.png", optimize=True)
    print(f"wrote {out / 'inpaint_before_after.png'} and {out / 'generate_tileable_2x2.png'}")


if __name__ == "__main__":
    main()
