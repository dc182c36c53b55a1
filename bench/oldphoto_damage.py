"""Seeded synthetic old-photo damage with its ground truth: scratches, dust, hairs, tone, blur.

Why drawn here: real damaged prints come without a clean original, so the benchmark draws
damage the way it looks on old prints and scans over clean evaluation photos and keeps the
truth of every mark. Everything follows from the seed.

- scratches: long (0.4-1x the longer side), nearly straight or gently curved, 1-3 px wide,
  mostly bright (emulsion scraped off) and some dark;
- dust: specks 1-6 px across, bright or dark;
- hairs: 1-2 px curly strands 30-120 px long, mostly dark;
- tone: colour as is, monochrome (BT.601 luma) or sepia (luma through a brown ramp);
- blur: Gaussian sigma or linear motion (length, angle).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from engine.diffusion.operators import gaussian_kernel, motion_kernel

DUST, HAIR, SCRATCH = 1, 2, 3  # truth labels
VISIBLE = 16.0  # grey levels a mark must change a pixel by to count as damage (a dark hair on black is none)
SEPIA = np.array([1.12, 0.98, 0.78], np.float32)  # brown ramp applied to luma


@dataclass
class Damage:
    """A damaged image and its truth: `labels` (0 or DUST/HAIR/SCRATCH), `specks` (one id per dust speck)."""

    image: np.ndarray
    labels: np.ndarray
    specks: np.ndarray


def luma(img: np.ndarray) -> np.ndarray:
    return img[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def tone(img: np.ndarray, kind: str) -> np.ndarray:
    """'colour' (unchanged), 'mono' or 'sepia' version of a u8 RGB image."""
    if kind == "colour":
        return img.copy()
    y = luma(img)[..., None]
    rgb = np.repeat(y, 3, axis=-1) if kind == "mono" else y * SEPIA + np.array([8, 4, 0], np.float32)
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def curve(rng: np.random.Generator, start: np.ndarray, angle: float, length: float, wiggle: float,
          step: float = 3.0, memory: float = 0.8) -> list[tuple[float, float]]:
    """A polyline whose direction drifts by `wiggle` radians per step (0 = straight); `memory`
    is the share of the last step's turn that carries on (how smooth the curls are)."""
    pts, p, a, turn = [tuple(start)], start.astype(np.float64), angle, 0.0
    for _ in range(max(2, int(length / step))):
        turn = memory * turn + rng.normal(0, wiggle)
        a += turn
        p = p + step * np.array([np.cos(a), np.sin(a)])
        pts.append((float(p[0]), float(p[1])))
    return pts


def draw_damage(img: np.ndarray, seed: int, scratches: int = 4, dust: int = 40, hairs: int = 3) -> Damage:
    """Draw the marks over a u8 RGB image; each mark's grey level is a blend towards white or black."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    out = img.astype(np.float32).copy()
    labels = np.zeros((h, w), np.uint8)
    specks = np.zeros((h, w), np.int32)
    side = max(h, w)

    def paint(label_img: Image.Image, cls: int, bright: bool, opacity: float, speck: int = 0) -> None:
        m = np.asarray(label_img) > 0
        target = rng.uniform(225, 250) if bright else rng.uniform(8, 40)
        before = luma(out)
        out[m] = out[m] * (1 - opacity) + target * opacity
        m &= np.abs(luma(out) - before) >= VISIBLE
        labels[m] = cls
        if speck:
            specks[m] = speck

    for _ in range(scratches):
        lab = Image.new("L", (w, h))
        length = rng.uniform(0.4, 1.0) * side
        start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        pts = curve(rng, start, rng.uniform(0, 2 * np.pi), length, wiggle=rng.uniform(0.0, 0.01), step=6.0)
        ImageDraw.Draw(lab).line(pts, fill=255, width=int(rng.integers(1, 4)))
        paint(lab, SCRATCH, rng.random() < 0.75, rng.uniform(0.7, 1.0))
    for _ in range(hairs):
        lab = Image.new("L", (w, h))
        start = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h])
        pts = curve(rng, start, rng.uniform(0, 2 * np.pi), rng.uniform(30, 120), wiggle=rng.uniform(0.08, 0.2))
        ImageDraw.Draw(lab).line(pts, fill=255, width=int(rng.integers(1, 3)))
        paint(lab, HAIR, rng.random() < 0.3, rng.uniform(0.75, 1.0))
    for k in range(dust):
        lab = Image.new("L", (w, h))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        d = rng.uniform(1.0, 6.0)
        rx, ry = d / 2 * rng.uniform(0.7, 1.3), d / 2 * rng.uniform(0.7, 1.3)
        ImageDraw.Draw(lab).ellipse([x - rx, y - ry, x + max(rx - 1, -rx), y + max(ry - 1, -ry)], fill=255)
        if not np.asarray(lab).any():
            lab.putpixel((min(int(x), w - 1), min(int(y), h - 1)), 255)
        paint(lab, DUST, rng.random() < 0.6, rng.uniform(0.75, 1.0), speck=k + 1)
    return Damage(np.clip(out, 0, 255).round().astype(np.uint8), labels, specks)


def blur(img: np.ndarray, sigma: float | None = None, length: float | None = None, angle: float = 0.0) -> np.ndarray:
    """Gaussian (sigma) or motion (length, angle) blur with reflected borders, u8 out."""
    k = gaussian_kernel(sigma) if sigma is not None else motion_kernel(length, angle)
    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[:, None]
    p = k.shape[-1] // 2
    o = F.conv2d(F.pad(t, (p, p, p, p), mode="reflect"), k[None, None].float())
    return o[:, 0].permute(1, 2, 0).numpy().clip(0, 255).round().astype(np.uint8)
