"""Regenerate the pattern figures in docs/img and print their measurements.

    python docs/img/make_pattern.py [--out docs/img]

Material: zebra-like wavy stripes and a leaf motif drawn here by code, and scikit-image's
bundled brick() and grass() samples (CC0). The engine's operations run in-process.
Prints, per texture: the seam ratio of the tile, and for the stripes the dominant orientation
and period of reference and result.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.metrics import dominant_frequency, wrap_seam_ratio  # noqa: E402
from engine.synthesis.texture import synthesize  # noqa: E402
from engine.tasks import OPERATIONS  # noqa: E402
from engine.tasks.base import JobContext  # noqa: E402
from engine.protocol import Limits  # noqa: E402
from panels import grid, label  # noqa: E402  docs/img/panels.py, beside this script

TILE = 160  # side of a synthesised tile


def zebra(h: int = 128, w: int = 128) -> np.ndarray:
    """Black and cream stripes that wave and fork a little, as on a hide."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    phase = 2 * np.pi * (xx + 6 * np.sin(yy / 17) + 3 * np.sin(yy / 7 + xx / 23)) / 14
    on = (np.sin(phase) > 0.1)[..., None]
    return np.where(on, np.array([0.92, 0.88, 0.8], np.float32), np.array([0.08, 0.07, 0.07], np.float32))


def leaf(side: int = 56) -> np.ndarray:
    """RGBA leaf: a pointed green blade with a darker midrib and veins, transparent around."""
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    pts = [(side / 2 + (side * 0.32) * np.sin(np.pi * t) * s, side * 0.06 + side * 0.88 * t)
           for s in (1, -1) for t in (np.linspace(0, 1, 20) if s == 1 else np.linspace(1, 0, 20))]
    d.polygon(pts, fill=(64, 128, 60, 255))
    d.line([(side / 2, side * 0.06), (side / 2, side * 0.97)], fill=(30, 70, 32, 255), width=2)
    for t in np.linspace(0.2, 0.8, 5):
        y = side * (0.06 + 0.88 * t)
        for s in (1, -1):
            d.line([(side / 2, y), (side / 2 + s * side * 0.22 * np.sin(np.pi * t), y - side * 0.1)],
                   fill=(40, 90, 40, 255), width=1)
    return np.asarray(im)


def u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def op(name: str, inputs: dict, params: dict) -> dict:
    o = OPERATIONS[name]
    return o.run(inputs, o.check(inputs, params, Limits()), JobContext("fig"))[0]


def textures(out: Path) -> None:
    grey = data.brick()[:128, :128].astype(np.float32) / 255
    leaves = op("pattern", {"image": leaf(40)}, {"layout": "rotate4", "spacing": 2, "rotation": 30,
                                                  "jitter": 0.8, "background": "#e8dcc0", "seed": 2})["image"]
    refs = {"zebra stripes": zebra(), "bricks": np.repeat(grey[..., None], 3, axis=2),
            "leaves": np.tile(leaves, (2, 2, 1))[:128, :128].astype(np.float32) / 255}
    rows = []
    for i, (name, ref) in enumerate(refs.items()):
        t0 = time.perf_counter()
        tex = synthesize(ref, TILE, TILE, wrap=True, seed=i)
        dt = time.perf_counter() - t0
        line = f"{name}: seam ratio {wrap_seam_ratio(tex):.2f} (reference as a tile {wrap_seam_ratio(ref):.2f}), {dt:.1f} s"
        if name == "zebra stripes":
            line += f"; orientation/period reference {dominant_frequency(ref)}, result " \
                    f"{dominant_frequency(np.tile(tex, (2, 2, 1)))}"
        print(line)
        rows.append([label(u8(ref), name), label(u8(np.tile(ref, (2, 2, 1))), "reference tiled 2x2"),
                     label(u8(np.tile(tex, (2, 2, 1))), "grown seamless tile, 2x2")])
    Image.fromarray(grid(rows)).save(out / "pattern_textures.png")


def repeats(out: Path) -> None:
    motif = leaf()
    drop = op("pattern", {"image": motif}, {"layout": "half-drop", "spacing": 14, "rotation": -25,
                                            "background": "#f3ecd8", "preview": 3, "seed": 1})
    grass = data.grass()[:144, :144].astype(np.float32) / 255
    grass_rgb = np.stack([grass * 0.6, grass * 0.8, grass * 0.35], axis=2)
    grown = op("pattern", {"image": motif, "ground": u8(grass_rgb)},
               {"layout": "half-brick", "spacing": 10, "jitter": 0.6, "preview": 3, "seed": 3})
    seam_in = data.brick()[64:224, 64:224]
    seam_in = np.stack([seam_in, (seam_in * 0.8).astype(np.uint8), (seam_in * 0.6).astype(np.uint8)], axis=2)
    seam = op("pattern", {"image": seam_in}, {"layout": "seamless", "preview": 2, "seed": 0})
    print(f"seamless brick crop: seam ratio before {wrap_seam_ratio(seam_in):.2f}, after {wrap_seam_ratio(seam['image']):.2f}")
    ways = op("recolor", {"image": drop["image_1"]}, {"palette": "#1d3557,#e63946,#f1faee", "variants": 3, "seed": 5})
    Image.fromarray(grid([[label(np.where(motif[..., 3:] > 0, motif[..., :3], 255).astype(np.uint8), "motif"),
                           label(drop["image_1"], "half-drop 3x3"), label(grown["image_1"], "half-brick on grown grass")],
                          [label(np.tile(seam_in, (2, 2, 1)), "scan tiled as is"),
                           label(seam["image_1"], "pattern seamless, 2x2"), None]])).save(out / "pattern_repeats.png")
    Image.fromarray(grid([[label(drop["image_1"], "original")] + [label(ways[k], f"colourway {i + 1}")
                          for i, k in enumerate(sorted(ways))]])).save(out / "pattern_colourways.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    textures(args.out)
    repeats(args.out)


if __name__ == "__main__":
    main()
