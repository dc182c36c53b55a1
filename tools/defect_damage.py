"""Random old-print damage for training the defect detector, with a per-pixel truth.

Why broader than the benchmark's damage (bench/oldphoto_damage.py): the detector must find
marks it was not drawn from, so every property varies further here: widths 1-4 px, soft
(blurred) and hard edges, partly transparent marks, irregular specks, hairs 15-200 px long
and any curl, scratches that run off the picture, marks over colour, monochrome, sepia or
tinted prints that may be soft, noisy or JPEG-compressed. Some marks are hard-edged and
opaque (a deep scratch shows bare paper), and some crops are drawn scenes instead of photos:
flat paper, gradients and soft or hard-edged shapes, where any edge the detector invents
shows. Parallel stripe runs and lines of text are drawn as part of the picture: they are
texture, not damage. A pixel is damage where the mark changes it visibly; the rim around each
mark is left out of the loss (covering it is harmless, missing it too), and the pixels of a
small mark weigh more, so that a one-pixel speck counts about as much as a long scratch's
stretch of the same length.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from bench.oldphoto_damage import curve

VISIBLE = 14.0  # grey levels a mark must move a pixel by to count as damage
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
SUPERSAMPLE = 2  # soft marks are drawn at this scale and averaged down: sub-pixel edges
HARD_SHARE = 0.4  # marks drawn hard-edged and opaque
SCENE_SHARE = 0.3  # crops that are drawn scenes instead of photos
TEXT_SHARE = 0.15  # crops with lines of text drawn in (texture, not damage)
TEXT_SIZES = (8, 64)  # px: the text's size range, drawn log-uniformly
SMALL_MARK = 16.0  # px: the pixels of a mark smaller than this weigh SMALL_MARK / area ...
SMALL_MARK_WEIGHT = 4.0  # ... up to this


@dataclass
class Sample:
    """A damaged crop (H, W, 3) u8, its truth (H, W) bool and a loss weight (H, W) float."""

    image: np.ndarray
    truth: np.ndarray
    weight: np.ndarray


def _coverage(size: tuple[int, int], draw: callable, hard: bool = False) -> np.ndarray:
    """(H, W) coverage 0..1 of shapes drawn by `draw(ImageDraw, scale)`: anti-aliased, or
    binary when `hard`."""
    h, w = size
    s = 1 if hard else SUPERSAMPLE
    img = Image.new("L", (w * s, h * s))
    draw(ImageDraw.Draw(img), s)
    a = np.asarray(img, np.float32).reshape(h, s, w, s).mean(axis=(1, 3)) / 255.0
    return a


def _soften(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W) array, edges replicated."""
    if sigma <= 0:
        return alpha
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    h, w = alpha.shape
    p = np.pad(alpha.astype(np.float32), r, mode="edge")
    rows = sum(k[i] * p[:, i:i + w] for i in range(2 * r + 1))
    return sum(k[i] * rows[i:i + h] for i in range(2 * r + 1)).astype(np.float32)


def _scratch(rng: np.random.Generator, h: int, w: int, scale: float, hard: bool) -> tuple[np.ndarray, str]:
    side = max(h, w) * scale
    length = rng.uniform(0.3, 1.2) * side
    start = np.array([rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h])
    pts = curve(rng, start, rng.uniform(0, 2 * np.pi), length, rng.uniform(0.0, 0.02), step=6.0, memory=0.7)
    width = rng.choice([1, 1, 2, 2, 3, 4])
    return _coverage((h, w), lambda d, s: d.line([(x * s, y * s) for x, y in pts], fill=255, width=int(width * s)),
                     hard), ("bright" if rng.random() < 0.7 else "dark")


def _hair(rng: np.random.Generator, h: int, w: int, hard: bool) -> tuple[np.ndarray, str]:
    start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    pts = curve(rng, start, rng.uniform(0, 2 * np.pi), rng.uniform(15, 200), rng.uniform(0.03, 0.35), step=3.0,
                memory=rng.uniform(0.6, 0.85))
    width = rng.choice([1, 1, 2]) * rng.uniform(0.7, 1.3)
    return _coverage((h, w), lambda d, s: d.line([(x * s, y * s) for x, y in pts], fill=255,
                                                  width=max(1, round(width * s))), hard), \
        ("bright" if rng.random() < 0.3 else "dark")


def _speck(rng: np.random.Generator, h: int, w: int, hard: bool) -> tuple[np.ndarray, str]:
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    lobes = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
    d = rng.uniform(0.8, 7.0)

    def draw(dr: ImageDraw.ImageDraw, s: int) -> None:
        for _ in range(lobes):
            ox, oy = rng.normal(0, d / 4, 2) if lobes > 1 else (0.0, 0.0)
            rx, ry = d / 2 * rng.uniform(0.6, 1.4), d / 2 * rng.uniform(0.6, 1.4)
            x, y = cx + ox, cy + oy
            dr.ellipse([(x - rx) * s, (y - ry) * s, (x + rx) * s, (y + ry) * s], fill=255)
    return _coverage((h, w), draw, hard), ("bright" if rng.random() < 0.6 else "dark")


def tone(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour as is, monochrome, sepia or another tint, chosen at random."""
    kind = rng.choice(["colour", "colour", "mono", "sepia", "tint"])
    if kind == "colour":
        return rgb
    y = rgb @ LUMA
    if kind == "mono":
        return np.repeat(y[..., None], 3, axis=-1)
    ramp = np.array([1.12, 0.98, 0.78]) if kind == "sepia" else rng.uniform(0.75, 1.15, 3)
    return np.clip(y[..., None] * ramp + rng.uniform(-5, 12, 3), 0, 255).astype(np.float32)


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """After the damage: sometimes a soft scan, grain or JPEG compression (u8 in and out)."""
    out = img.astype(np.float32)
    if rng.random() < 0.2:
        sigma = rng.uniform(0.3, 0.9)
        out = np.stack([_soften(out[..., c], sigma) for c in range(3)], axis=-1)
    if rng.random() < 0.3:
        out = out + rng.normal(0, rng.uniform(1, 10), out.shape)
    out = np.clip(out, 0, 255).round().astype(np.uint8)
    if rng.random() < 0.15:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(50, 96)))
        out = np.asarray(Image.open(buf).convert("RGB")).copy()
    return out


def drawn_scene(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A (H, W, 3) float 0..255 picture of paper, gradients and shapes at least 8 px across,
    soft or hard-edged, under a faint low-frequency texture: no thin lines of its own."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = rng.uniform(0.1, 0.9, 3) + (xx / w)[..., None] * rng.uniform(-0.3, 0.3, 3) \
        + (yy / h)[..., None] * rng.uniform(-0.3, 0.3, 3)
    for _ in range(int(rng.integers(0, 8))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(8, 0.5 * h + 8), rng.uniform(8, 0.5 * w + 8)
        if rng.random() < 0.6:
            d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        else:
            d = np.maximum(np.abs(yy - cy) / ry, np.abs(xx - cx) / rx)
        sharp = rng.uniform(3, 40) if rng.random() < 0.7 else 200.0
        inside = 1 / (1 + np.exp(np.minimum((d - 1) * sharp, 50)))
        img = img * (1 - inside[..., None]) + inside[..., None] * rng.uniform(0.05, 0.95, 3)
    tex = torch.from_numpy(rng.normal(0, 1, (1, 3, h // 4 + 1, w // 4 + 1)).astype(np.float32))
    tex = F.interpolate(tex, size=(h, w), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    return (np.clip(img + rng.uniform(0, 0.05) * tex, 0, 1) * 255).astype(np.float32)


def _stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Coverage of a run of four or more parallel stripes (fabric, railings, blinds)."""
    n, gap, width = int(rng.integers(4, 12)), rng.uniform(4, 12), int(rng.integers(1, 4))
    length, angle = rng.uniform(30, 1.5 * max(h, w)), rng.uniform(0, np.pi)
    c, along, across = np.array([rng.uniform(0, w), rng.uniform(0, h)]), np.array([np.cos(angle), np.sin(angle)]), \
        np.array([-np.sin(angle), np.cos(angle)])

    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        for k in range(n):
            o = c + (k - n / 2) * gap * across
            a, b = o - along * length / 2, o + along * length / 2
            d.line([(a[0] * s, a[1] * s), (b[0] * s, b[1] * s)], fill=255, width=width * s)
    return _coverage((h, w), draw, hard=rng.random() < 0.5)


def _text(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Coverage of a few lines of random words, from footnote to headline size."""
    size = int(round(math.exp(rng.uniform(math.log(TEXT_SIZES[0]), math.log(TEXT_SIZES[1])))))
    font = ImageFont.load_default(size=size)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,"))

    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        y = rng.uniform(-size, h)
        x0 = rng.uniform(-w / 2, w / 2)
        for _ in range(int(rng.integers(1, 6))):
            words = " ".join("".join(rng.choice(letters, int(rng.integers(1, 9)))) for _ in range(8))
            d.text((x0, y), words, fill=255, font=font)
            y += size * rng.uniform(1.1, 1.6)
    return _coverage((h, w), draw, hard=True)


def _picture(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The undamaged crop: the photo or a drawn scene, toned, sometimes with stripes or text."""
    h, w = clean.shape[:2]
    out = drawn_scene(h, w, rng) if rng.random() < SCENE_SHARE else clean.astype(np.float32)
    for part, share in ((_stripes, 0.1), (_text, TEXT_SHARE)):
        if rng.random() < share:
            alpha = part(rng, h, w) * rng.uniform(0.4, 1.0)
            ink = rng.uniform(0, 255, 3) if rng.random() < 0.5 else np.full(3, rng.uniform(0, 255))
            out = out * (1 - alpha[..., None]) + ink * alpha[..., None]
    return tone(out, rng)


def damage(clean: np.ndarray, rng: np.random.Generator, side_scale: float = 1.0) -> Sample:
    """Damage a clean (H, W, 3) u8 crop (or a drawn scene in its place). `side_scale`: the full
    picture's side over the crop's, so a scratch keeps the length it would have on the whole
    picture. About one crop in four stays undamaged (it teaches what not to flag)."""
    h, w = clean.shape[:2]
    out = _picture(clean, rng)
    truth = np.zeros((h, w), bool)
    weight = np.ones((h, w), np.float32)
    if rng.random() >= 0.25:
        area = h * w / (256.0 * 256.0)
        kinds = [lambda hd: _scratch(rng, h, w, side_scale, hd)] * rng.poisson(1.2 * area * side_scale) \
            + [lambda hd: _hair(rng, h, w, hd)] * rng.poisson(1.0 * area) \
            + [lambda hd: _speck(rng, h, w, hd)] * rng.poisson(rng.uniform(5, 30) * area)
        for make in kinds:
            hard = rng.random() < HARD_SHARE
            alpha, kind = make(hard)
            if hard:  # mostly opaque
                alpha = alpha * (1.0 if rng.random() < 0.7 else rng.uniform(0.75, 1.0))
            else:
                alpha = _soften(alpha, rng.uniform(0.3, 0.8)) if rng.random() < 0.3 else alpha
                alpha = alpha * rng.uniform(0.5, 1.0)
            target = rng.uniform(200, 255) if kind == "bright" else rng.uniform(0, 50)
            before = out @ LUMA
            out = out * (1 - alpha[..., None]) + target * alpha[..., None]
            mark = np.abs(out @ LUMA - before) >= VISIBLE
            if mark.any():
                weight[mark] = np.maximum(weight[mark], min(SMALL_MARK_WEIGHT, SMALL_MARK / mark.sum()))
            truth |= mark
    image = degrade(out, rng)
    rim = F.max_pool2d(torch.from_numpy(truth.astype(np.float32))[None, None], 3, stride=1, padding=1)[0, 0].numpy() > 0
    weight = np.where(rim & ~truth, 0.0, weight).astype(np.float32)
    return Sample(image, truth, weight)
