"""Synthetic clean images and known degradations for the restore, estimate and defect tests.

Everything is generated from a seed, so the tests need no image files and know the truth.
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw


def clean_scene(h: int = 128, w: int = 128, seed: int = 0) -> np.ndarray:
    """A photo-like noise-free u8 RGB image: smooth colour gradients, soft-edged shapes and a
    gentle low-frequency texture; no thin lines of its own."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img += rng.uniform(0.3, 0.6, 3) + (xx / w)[..., None] * rng.uniform(-0.2, 0.2, 3) \
        + (yy / h)[..., None] * rng.uniform(-0.2, 0.2, 3)
    for _ in range(6):  # soft disks and ellipses, several pixels of edge blur
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.08, 0.3) * h, rng.uniform(0.08, 0.3) * w
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        weight = 1 / (1 + np.exp(np.minimum((d - 1) * rng.uniform(6, 20), 50)))
        img = img * (1 - weight[..., None]) + weight[..., None] * rng.uniform(0.15, 0.85, 3)
    tex = torch.from_numpy(rng.normal(0, 1, (1, 3, h // 4 + 1, w // 4 + 1)).astype(np.float32))
    tex = F.interpolate(tex, size=(h, w), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    img += 0.03 * tex
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def textured_scene(size: int = 128, seed: int = 0) -> np.ndarray:
    """Dead leaves: sharp occlusion edges at every scale (many non-zero DCT coefficients)."""
    from engine.diffusion.data import dead_leaves

    return dead_leaves(size, np.random.default_rng(seed)).permute(1, 2, 0).numpy().copy()


def add_noise(img: np.ndarray, sigma: float, seed: int = 0, clip: bool = True) -> np.ndarray:
    """White Gaussian noise of `sigma` levels; clipped u8, or unclipped float levels."""
    noisy = img.astype(np.float64) + np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8) if clip else noisy


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through PIL's JPEG encoder (libjpeg tables, 4:2:0)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


def add_scratches(img: np.ndarray, seed: int = 0, lines: int = 6, dust: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Draw thin bright/dark scratches (1-3 px, gently curved, long) and dust specks.

    Returns (damaged u8 image, bool truth mask). Marks are clearly visible: bright ones at
    least 235 and dark ones at most 25, and at least 70 levels from what they cover.
    """
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    label = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(label)
    for _ in range(lines):
        length = rng.uniform(0.3, 0.8) * max(h, w)
        angle, bend = rng.uniform(0, np.pi), rng.uniform(-0.15, 0.15)
        cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
        pts = [(cx + t * length * np.cos(angle + 2 * bend * t), cy + t * length * np.sin(angle + 2 * bend * t))
               for t in np.linspace(-0.5, 0.5, 12)]
        draw.line(pts, fill=int(rng.integers(1, 3)), width=int(rng.integers(1, 4)))
    for _ in range(dust):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.8, 2.5)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(1, 3)))
    lab = np.asarray(label)
    out = img.astype(np.float32).copy()
    delta = rng.uniform(70, 130)
    out[lab == 1] = np.maximum(out[lab == 1] + delta, 235)
    out[lab == 2] = np.minimum(out[lab == 2] - delta, 25)
    return np.clip(out, 0, 255).astype(np.uint8), lab > 0


def dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (F.max_pool2d(t, 2 * r + 1, stride=1, padding=r)[0, 0] > 0).numpy()


def precision_recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision with one pixel of tolerance (repair masks are grown by a pixel on purpose),
    recall per truth pixel."""
    precision = float((found & dilate(truth)).sum() / max(found.sum(), 1))
    recall = float((truth & found).sum() / max(truth.sum(), 1))
    return precision, recall


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / max(mse, 1e-12)))
