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
- objects:    2-3 overlapping rotated ellipses covering 4-10 % of the image, the shape of a
              generous selection around an object (the `removal` task's masks, not in KINDS;
              `object_mask` takes an exact cover for the speed rows).
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
    "objects": "object-shaped, 4-10%",
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


def _ellipses(h: int, w: int, shapes: list[tuple[float, float, float, float, float]], scale: float) -> np.ndarray:
    """Union of rotated ellipses (cy, cx, ry, rx, angle), axes and offsets from the centre
    of the first one scaled by `scale`, as a (h, w) bool array."""
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    cy0, cx0 = shapes[0][:2]
    for cy, cx, ry, rx, a in shapes:
        cy, cx = cy0 + (cy - cy0) * scale, cx0 + (cx - cx0) * scale
        ex, ey = rx * scale * np.cos(t), ry * scale * np.sin(t)
        xs = cx + ex * math.cos(a) - ey * math.sin(a)
        ys = cy + ex * math.sin(a) + ey * math.cos(a)
        draw.polygon(list(zip(xs.tolist(), ys.tolist())), fill=255)
    return np.asarray(im) > 0


def object_mask(h: int, w: int, index: int = 0, seed: int = 0, cover: float | None = None) -> np.ndarray:
    """2-3 overlapping rotated ellipses around one centre, scaled until they cover `cover` of
    the image (default: drawn from 4-10 %), kept 1/8 of the short side from every border."""
    rng = _rng("objects", h, w, index, seed)
    target = float(rng.uniform(0.04, 0.10)) if cover is None else float(cover)
    base = min(h, w) / 8.0
    shapes = []
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.3, 0.7) * w
    for i in range(int(rng.integers(2, 4))):
        ry, rx = base * rng.uniform(0.6, 1.0), base * rng.uniform(1.0, 2.2)
        oy, ox = (0.0, 0.0) if i == 0 else (rng.uniform(-0.6, 0.6) * base, rng.uniform(-1.0, 1.0) * base)
        shapes.append((cy + oy, cx + ox, ry, rx, float(rng.uniform(0, math.pi))))
    scale, m = 1.0, _ellipses(h, w, shapes, 1.0)
    for _ in range(12):  # coverage grows about as scale squared; converge on the target
        scale *= math.sqrt(target / max(m.mean(), 1e-6))
        m = _ellipses(h, w, shapes, scale)
        if abs(m.mean() - target) < 0.002:
            break
    ys, xs = np.nonzero(m)  # keep a margin of known pixels on every side (shift, do not clip)
    margin = min(h, w) // 8
    dy = max(0, margin - ys.min()) - max(0, ys.max() - (h - 1 - margin))
    dx = max(0, margin - xs.min()) - max(0, xs.max() - (w - 1 - margin))
    m = np.roll(m, (int(dy), int(dx)), axis=(0, 1))
    return m.astype(np.uint8) * 255


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
    if kind == "objects":
        return object_mask(h, w, index, seed)
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
