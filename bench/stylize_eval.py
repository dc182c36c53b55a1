"""Style and content distances of stylize against baselines, on paintings x photos.

    python -m bench.stylize_eval --styles DIR --photos DIR [--baseline DIR.npz] [--pairs N]

Methods: the photo itself, Reinhard colour transfer in Lab (per-channel mean and deviation),
ours (the engine's stylize at the given params), and optionally a saved set of results of
another build (an .npz with one array per pair, written by --save). Prints a table of the
mean style distance (to the painting) and content distance (to the photo), and seconds.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .ours import Ours
from .style_metrics import content_distance, style_distance


def load(path: Path, side: int) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    s = side / max(im.size)
    if s < 1:
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS)
    return np.asarray(im)


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab
    return rgb2lab(rgb)


def reinhard(photo: np.ndarray, painting: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001 colour transfer, in CIELAB: each channel's mean and deviation matched."""
    from skimage.color import lab2rgb
    a, b = _lab(photo / 255.0), _lab(painting / 255.0)
    out = (a - a.mean((0, 1))) / (a.std((0, 1)) + 1e-6) * b.std((0, 1)) + b.mean((0, 1))
    return (np.clip(lab2rgb(out), 0, 1) * 255).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--styles", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--paintings", default="starry_night,great_wave_hokusai,the_scream")
    ap.add_argument("--pairs", type=int, default=2, help="photos per painting")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--params", default="{}", help="JSON params for ours")
    ap.add_argument("--baseline", help=".npz of another build's results, measured as 'baseline'")
    ap.add_argument("--save", help="write ours' results to this .npz")
    a = ap.parse_args()
    photos = sorted(Path(a.photos).glob("*.png"))[:a.pairs]
    pairs = [(p, Path(a.styles) / f"{s}.jpg") for s in a.paintings.split(",") for p in photos]
    base = np.load(a.baseline) if a.baseline else None
    rows: dict[str, list[tuple[float, float, float]]] = {}
    saved = {}
    with Ours() as ours:
        for i, (pp, sp) in enumerate(pairs):
            photo, painting = load(pp, a.side), load(sp, 2 * a.side)
            t = time.perf_counter()
            mine = ours.stylize(photo, painting, seed=0, **json.loads(a.params))
            dt = time.perf_counter() - t
            saved[f"p{i}"] = mine
            results = {"photo": (photo, 0.0), "reinhard": (reinhard(photo, painting), 0.0), "ours": (mine, dt)}
            if base is not None:
                results["baseline"] = (base[f"p{i}"], 0.0)
            for name, (img, sec) in results.items():
                f = img.astype(np.float32) / 255
                rows.setdefault(name, []).append((style_distance(f, painting / 255.0),
                                                  content_distance(f, photo / 255.0), sec))
            print(pp.name, sp.stem, {k: tuple(round(x, 4) for x in v[-1]) for k, v in rows.items()}, flush=True)
    if a.save:
        np.savez_compressed(a.save, **saved)
    print(f"{'method':10s} {'style':>8s} {'content':>8s} {'seconds':>8s}   ({len(pairs)} pairs)")
    for name, v in rows.items():
        m = np.mean(np.array(v), 0)
        print(f"{name:10s} {m[0]:8.4f} {m[1]:8.4f} {m[2]:8.2f}")


if __name__ == "__main__":
    main()
