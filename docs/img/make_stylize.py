"""Regenerate the stylize before/after grid in docs/img from generated references and
scikit-image's bundled samples.

    python docs/img/make_stylize.py [--models models] [--out docs/img]

The style references are drawn here by code (flow-field brush strokes, a woodblock-print
sea with ink lines and flat bands, a tile mosaic): no painting file is used. The photos are
skimage.data.astronaut() (NASA, public domain), chelsea() and coffee() (CC0). The real engine runs in-process with
the given models folder (default: the shipped `models/builtin`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.client import Client
from panels import figure_options, grid, label  # docs/img/panels.py, beside this script

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


def woodcut_wave(w: int = 320, h: int = 240, seed: int = 2) -> np.ndarray:
    """A woodblock-print sea: flat bands of Prussian blue under a cream sky, each crest outlined in
    dark ink, with white foam dots along the crests."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def crest(k: int) -> np.ndarray:
        return h * (0.3 + 0.13 * k) + 14 * np.sin(xx / (28 + 6 * k) + k * 1.7) + 6 * np.sin(xx / 9 + k)

    img = np.empty((h, w, 3), np.float32)
    img[:] = (236, 224, 196)
    blues = [(40, 70, 120), (70, 110, 160), (120, 160, 190), (30, 50, 90), (90, 130, 170)]
    ink = np.zeros((h, w), bool)
    for k in range(5):
        c = crest(k)
        img[yy > c] = blues[k]
        ink |= np.abs(yy - c) < 1.6
    img[ink] = (20, 24, 40)
    im = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(260):
        x = rng.uniform(0, w)
        k = int(rng.integers(5))
        y = float(crest(k)[0, int(x) % w]) + rng.uniform(2, 9)
        r = rng.uniform(1, 2.5)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(250, 248, 240))
    return np.asarray(im)


def fit(img: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Centre-crop to a square and resize to the panel side."""
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, :3]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((side, side), Image.LANCZOS))


def main() -> None:
    from skimage import data

    ap = figure_options(__doc__)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--params", default="{}", help="extra stylize parameters as JSON")
    args = ap.parse_args()
    refs = [("swirling strokes", swirl_strokes()), ("woodcut wave", woodcut_wave()), ("mosaic", mosaic())]
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
