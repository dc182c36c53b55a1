"""Random training masks (1 = regenerate): strokes, boxes, scratches, dots, none, all.

One network learns inpainting of every shape an artist or a restoration task produces,
and denoising / generation through the all-ones mask.
"""
from __future__ import annotations

import math

import numpy as np

KINDS = ("strokes", "box", "scratches", "dots", "none", "all")
DEFAULT_WEIGHTS = {"strokes": 0.14, "box": 0.12, "scratches": 0.1, "dots": 0.04, "none": 0.03, "all": 0.57}


def _disk_line(mask: np.ndarray, x0: float, y0: float, x1: float, y1: float, radius: float) -> None:
    """Paint a thick segment by stamping disks along it."""
    h, w = mask.shape
    n = max(2, int(math.hypot(x1 - x0, y1 - y0) / max(radius * 0.5, 0.5)) + 1)
    r = max(radius, 0.5)
    yy, xx = np.ogrid[:h, :w]
    for t in np.linspace(0.0, 1.0, n):
        cx, cy = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        y_lo, y_hi = max(0, int(cy - r - 1)), min(h, int(cy + r + 2))
        x_lo, x_hi = max(0, int(cx - r - 1)), min(w, int(cx + r + 2))
        if y_lo >= y_hi or x_lo >= x_hi:
            continue
        sub = (yy[y_lo:y_hi] - cy) ** 2 + (xx[:, x_lo:x_hi] - cx) ** 2 <= r * r
        mask[y_lo:y_hi, x_lo:x_hi] |= sub


def strokes(h: int, w: int, rng: np.random.Generator, width: float | None = None) -> np.ndarray:
    """Free-form brush strokes: random walks with a thick round brush."""
    m = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        radius = width / 2 if width else rng.uniform(2, max(3, min(h, w) / 10))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(rng.integers(2, 7)):
            angle += rng.normal(0, 0.8)
            length = rng.uniform(0.1, 0.4) * max(h, w)
            nx, ny = x + length * math.cos(angle), y + length * math.sin(angle)
            _disk_line(m, x, y, nx, ny, radius)
            x, y = float(np.clip(nx, 0, w - 1)), float(np.clip(ny, 0, h - 1))
    return m


def box(h: int, w: int, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """One axis-aligned rectangle (about 1/8 to 1/2 of each side unless size is given)."""
    m = np.zeros((h, w), bool)
    bh = size or int(rng.uniform(0.15, 0.5) * h)
    bw = size or int(rng.uniform(0.15, 0.5) * w)
    bh, bw = max(1, min(bh, h)), max(1, min(bw, w))
    y, x = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    m[y : y + bh, x : x + bw] = True
    return m


def scratches(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Thin long lines (1-3 px), like scratches on an old print."""
    m = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 6)):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, math.pi)
        length = rng.uniform(0.3, 1.2) * max(h, w)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        _disk_line(m, x0, y0, x1, y1, rng.uniform(0.5, 1.5))
    return m


def dots(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Sparse small blobs, like dust."""
    m = np.zeros((h, w), bool)
    for _ in range(rng.integers(3, 20)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        _disk_line(m, x, y, x, y, rng.uniform(0.5, 2.5))
    return m


def random_mask(h: int, w: int, rng: np.random.Generator, weights: dict[str, float] | None = None) -> np.ndarray:
    """Draw one mask kind by weight and return it as float32 (h, w) in {0, 1}."""
    weights = weights or DEFAULT_WEIGHTS
    kinds = list(weights)
    p = np.array([weights[k] for k in kinds], float)
    kind = kinds[rng.choice(len(kinds), p=p / p.sum())]
    if kind == "all":
        return np.ones((h, w), np.float32)
    if kind == "none":
        return np.zeros((h, w), np.float32)
    maker = {"strokes": strokes, "box": box, "scratches": scratches, "dots": dots}[kind]
    return maker(h, w, rng).astype(np.float32)
