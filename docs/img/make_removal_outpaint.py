"""Regenerate the object-removal and outpainting figures in docs/img from scikit-image's samples.

    python docs/img/make_removal_outpaint.py [--models models] [--out docs/img]

Each row: the input with the selection painted over it, ours at default settings, ours with
method=patch, and PatchMatch (pypatchmatch, from the bench extra) on the same input. Runs the
real engine in-process. Sources: skimage.data.astronaut() (NASA, public domain),
coffee() and chelsea() (CC0); nothing else goes into the figures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.client import Client
from panels import figure_options, grid, label  # docs/img/panels.py, beside this script

EXTEND = 0.25  # outpainting: the canvas grows by a quarter of its width, on the right


def overlay(img: np.ndarray, mask: np.ndarray, colour=(255, 40, 40)) -> np.ndarray:
    """The selection painted over the photo, as an editor shows it."""
    out = img.copy()
    out[mask] = (0.35 * out[mask] + 0.65 * np.array(colour)).astype(np.uint8)
    return out


def polygon_mask(h: int, w: int, points: list[tuple[int, int]], grow: int = 0) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).polygon(points, fill=255, outline=255, width=max(1, 2 * grow))
    return np.asarray(im) > 0


def rocket() -> tuple[np.ndarray, np.ndarray]:
    """The shuttle model beside the astronaut, with a generous selection around it."""
    from skimage import data

    img = np.ascontiguousarray(data.astronaut()[0:320, 256:512])
    pts = [(118, 0), (210, 0), (214, 170), (218, 236), (226, 292), (100, 292), (90, 238), (110, 168)]
    return img, polygon_mask(320, 256, pts, grow=4)


def spoon() -> tuple[np.ndarray, np.ndarray]:
    """The spoon on the saucer (the same selection as inpaint_before_after.png)."""
    from skimage import data

    img = np.ascontiguousarray(data.coffee()[40:360, 240:480])
    im = Image.new("L", (240, 320), 0)
    draw = ImageDraw.Draw(im)
    draw.ellipse([78, 188, 174, 292], fill=255)  # the bowl
    draw.line([(174, 22), (170, 70), (158, 132), (144, 196)], fill=255, width=22, joint="curve")  # the handle
    return img, np.asarray(im) > 0


def extended_cat() -> tuple[np.ndarray, np.ndarray]:
    """chelsea on a canvas a quarter wider; the new strip (zeroed) is the selection."""
    from skimage import data

    img = data.chelsea()
    h, w = img.shape[:2]
    extra = int(round(w * EXTEND))
    canvas = np.zeros((h, w + extra, 3), np.uint8)
    canvas[:, :w] = img
    mask = np.zeros((h, w + extra), bool)
    mask[:, w:] = True
    return canvas, mask


def fills(client: Client, img: np.ndarray, mask: np.ndarray) -> list[tuple[str, np.ndarray]]:
    from bench.peers import peers_for

    m = (mask[..., None] * 255).astype(np.uint8)
    pm = next(p for p in peers_for("inpaint") if p.name == "PatchMatch")
    return [("input + selection", overlay(img, mask)),
            ("ours", client.inpaint(img, m, seed=0)),
            ("ours, method=patch", client.inpaint(img, m, seed=0, method="patch")),
            ("PatchMatch", pm(img, (mask * 255).astype(np.uint8)))]


def main() -> None:
    ap = figure_options(__doc__)
    args = ap.parse_args()
    out = Path(args.out)
    with Client.in_process(models_dir=args.models, device="auto", timeout=900) as client:
        rows = [[label(p, t) for t, p in fills(client, *case())] for case in (rocket, spoon)]
        Image.fromarray(grid(rows)).save(out / "removal_before_after.png", optimize=True)
        panels = [label(p, t) for t, p in fills(client, *extended_cat())]
        Image.fromarray(grid([panels[:2], panels[2:]])).save(out / "outpaint_extend.png", optimize=True)
    print(f"wrote {out / 'removal_before_after.png'} and {out / 'outpaint_extend.png'}")


if __name__ == "__main__":
    main()
