"""Seeded inpainting mask sets, so every method and every run fills the same holes.

Masks are (h, w) uint8 arrays with 255 = hole (the engine's "regenerate") and 0 = known.
A mask depends only on (kind, image size, image index, seed): the benchmark is
reproducible across machines and independent of the training masks in
engine/diffusion/masks.py.

Kinds (widths in pixels, for the ~481x321 BSD images):
- scratches:  3-6 thin (1-3 px) long polylines, like film scratches and cracks.
- strokes_s / strokes_m / strokes_l: free-form brush strokes of width 5-9 / 13-19 / 25-35,
  drawn until the hole covers about 8 / 15 / 25 % of the image.
- box64:      one 64x64 square.
- area25:     one rectangle of half the width and half the height (25 % of the image).
"""
from __future__ import annotations

import math
import zlib

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("scratches", "strokes_s", "strokes_m", "strokes_l", "box64", "area25")
LABELS = {
    "scratches": "thin scratches",
    "strokes_s": "strokes, thin",
    "strokes_m": "strokes, medium",
    "strokes_l": "strokes, wide",
    "box64": "64x64 box",
    "area25": "25% of the image",
}
_STROKES = {"strokes_s": ((5, 9), 0.08), "strokes_m": ((13, 19), 0.15), "strokes_l": ((25, 35), 0.25)}


def _rng(kind: str, h: int, w: int, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(kind.encode()), h, w, index])


def _polyline(rng: np.random.Generator, h: int, w: int, n: int, step: float) -> list[tuple[float, float]]:
    """A random walk with smoothly turning direction, clipped to the image."""
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, 2 * math.pi)
    pts = [(x, y)]
    for _ in range(n):
        angle += rng.normal(0, 0.6)
        x = float(np.clip(x + step * math.cos(angle), 0, w - 1))
        y = float(np.clip(y + step * math.sin(angle), 0, h - 1))
        pts.append((x, y))
    return pts


def _scratches(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 7))):
        # long, nearly straight: small turning, long segments
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, math.pi)
        length = rng.uniform(0.4, 0.9) * math.hypot(h, w)
        pts = []
        for t in np.linspace(-0.5, 0.5, 12):
            bend = rng.normal(0, 0.01 * length)
            pts.append((x + t * length * math.cos(angle) - bend * math.sin(angle),
                        y + t * length * math.sin(angle) + bend * math.cos(angle)))
        draw.line(pts, fill=255, width=int(rng.integers(1, 4)), joint="curve")
    return np.asarray(im, dtype=np.uint8).copy()


def _strokes(rng: np.random.Generator, h: int, w: int, widths: tuple[int, int], cover: float) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    scale = min(h, w) / 321.0  # widths are specified for BSD-sized images
    arr = np.zeros((h, w), np.uint8)
    for _ in range(200):
        width = max(1, int(round(rng.integers(widths[0], widths[1] + 1) * scale)))
        pts = _polyline(rng, h, w, int(rng.integers(4, 10)), rng.uniform(0.05, 0.15) * max(h, w))
        draw.line(pts, fill=255, width=width, joint="curve")
        r = width / 2
        for x, y in (pts[0], pts[-1]):  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        arr = np.asarray(im, dtype=np.uint8)
        if (arr > 0).mean() >= cover:
            break
    return arr.copy()


def _box(rng: np.random.Generator, h: int, w: int, bh: int, bw: int) -> np.ndarray:
    bh, bw = min(bh, h), min(bw, w)
    y = int(rng.integers(0, h - bh + 1))
    x = int(rng.integers(0, w - bw + 1))
    m = np.zeros((h, w), np.uint8)
    m[y:y + bh, x:x + bw] = 255
    return m


def make_mask(kind: str, h: int, w: int, index: int = 0, seed: int = 0) -> np.ndarray:
    """The (h, w) uint8 mask of `kind` for image number `index` of a set."""
    rng = _rng(kind, h, w, index, seed)
    if kind == "scratches":
        return _scratches(rng, h, w)
    if kind in _STROKES:
        widths, cover = _STROKES[kind]
        return _strokes(rng, h, w, widths, cover)
    if kind == "box64":
        margin = 16  # keep some context on every side, as a user's selection would have
        m = np.zeros((h, w), np.uint8)
        m[margin:h - margin, margin:w - margin] = _box(rng, h - 2 * margin, w - 2 * margin, 64, 64)
        return m
    if kind == "area25":
        return _box(rng, h, w, h // 2, w // 2)
    raise ValueError(f"unknown mask kind {kind!r}; known: {', '.join(KINDS)}")


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """'all' or a comma list of kinds; unknown names are an error listing the known ones."""
    if not text or text == "all":
        return KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown mask kind {k!r}; known: {', '.join(KINDS)}")
    return kinds
