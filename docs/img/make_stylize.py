"""Regenerate the stylize before/after grid in docs/img from generated references and
scikit-image's bundled samples.

    python docs/img/make_stylize.py [--models models] [--out docs/img]

The style references are drawn here by code (flow-field brush strokes, a tile mosaic and
dabs in sunset bands): no painting file is used. The photos are skimage.data.astronaut()
(NASA, public domain), chelsea() and coffee() (CC0). The real engine runs in-process with
the given models folder (default: the shipped `models/builtin`).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.client import Client
from panels import grid, label  # docs/img/panels.py, beside this script

ROOT = Path(__file__).resolve().parents[2]
SIDE = 176  # panel side in the grid


def swirl_strokes(w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    """Short curved strokes following a field of vortices, night-blue and yellow palette."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (w, h), (18, 38, 92))
    draw = ImageDraw.Draw(im)
    vortices = [(rng.uniform(0, w), rng.uniform(0, h), rng.choice([-1, 1]) * rng.uniform(0.6, 1.4)) for _ in range(5)]

    def field(x: float, y: float) -> float:
        vx, vy = 1.0, 0.15
        for cx, cy, s in vortices:
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + 400.0
            vx += -s * dy * 60 / r2
            vy += s * dx * 60 / r2
        return math.atan2(vy, vx)

    palette = [(28, 60, 140), (60, 100, 190), (110, 150, 210), (230, 200, 70), (245, 230, 140), (12, 25, 60)]
    for _ in range(2600):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        colour = palette[int(rng.integers(len(palette)))]
        pts = [(x, y)]
        for _ in range(int(rng.integers(3, 7))):
            a = field(x, y)
            x, y = x + 4 * math.cos(a), y + 4 * math.sin(a)
            pts.append((x, y))
        draw.line(pts, fill=colour, width=int(rng.integers(2, 5)), joint="curve")
    return np.asarray(im.filter(ImageFilter.SMOOTH))


def mosaic(w: int = 320, h: int = 240, seed: int = 1, cell: int = 14) -> np.ndarray:
    """Irregular tiles (jittered Voronoi cells) in terracotta, ochre and teal, dark grout."""
    rng = np.random.default_rng(seed)
    gy, gx = np.mgrid[0:h:cell, 0:w:cell]
    centres = np.stack([gy.ravel() + rng.uniform(0, cell, gy.size), gx.ravel() + rng.uniform(0, cell, gx.size)], 1)
    palette = np.array([(184, 84, 52), (214, 160, 72), (40, 120, 118), (232, 214, 170), (120, 48, 36)], np.float32)
    colours = palette[rng.integers(len(palette), size=len(centres))] * rng.uniform(0.85, 1.1, (len(centres), 1))
    yy, xx = np.mgrid[0:h, 0:w]
    d = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    order = np.argsort(d, axis=-1)[..., :2]
    nearest = np.take_along_axis(d, order, -1)
    img = colours[order[..., 0]]
    grout = np.sqrt(nearest[..., 1]) - np.sqrt(nearest[..., 0]) < 1.6
    img[grout] = (52, 40, 34)
    return np.clip(img, 0, 255).astype(np.uint8)


def sunset_dabs(w: int = 320, h: int = 240, seed: int = 2) -> np.ndarray:
    """Wavy bands of orange, red and violet built from short elliptical dabs."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (w, h), (90, 40, 80))
    draw = ImageDraw.Draw(im)
    bands = [(250, 170, 60), (240, 110, 50), (200, 60, 60), (130, 50, 110), (60, 40, 100)]
    for _ in range(4500):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        t = (y + 14 * math.sin(x / 23.0)) / h * len(bands)
        base = np.array(bands[int(np.clip(t + rng.normal(0, 0.35), 0, len(bands) - 1))], np.float32)
        c = tuple(int(v) for v in np.clip(base * rng.uniform(0.8, 1.15), 0, 255))
        rx, ry = rng.uniform(3, 7), rng.uniform(1.5, 3)
        draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=c)
    return np.asarray(im)


def fit(img: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Centre-crop to a square and resize to the panel side."""
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, :3]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((side, side), Image.LANCZOS))


def main() -> None:
    from skimage import data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--params", default="{}", help="extra stylize parameters as JSON")
    args = ap.parse_args()
    refs = [("swirling strokes", swirl_strokes()), ("mosaic", mosaic()), ("sunset dabs", sunset_dabs())]
    photos = [("astronaut", fit(data.astronaut()[0:400, 60:460])), ("chelsea", fit(data.chelsea())),
              ("coffee", fit(data.coffee()))]
    rows: list[list[np.ndarray | None]] = [[None] + [label(fit(r), f"style: {n}") for n, r in refs]]
    with Client.in_process(models_dir=args.models, device="auto", timeout=900) as client:
        for name, photo in photos:
            row = [label(photo, name)]
            for _, ref in refs:
                row.append(client.stylize(photo, ref, seed=0, resolution=args.resolution, **json.loads(args.params)))
            rows.append(row)
    path = Path(args.out) / "stylize_grid.png"
    # 256 colours with dithering keeps the figure small (a few hundred kB) and looks the same
    Image.fromarray(grid(rows)).quantize(colors=256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
