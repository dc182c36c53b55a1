"""Tiny PIL-only figures for the trainer (no plotting library in the core install)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def image_grid(rows: list[list[torch.Tensor]], path: str | Path, pad: int = 2) -> Path:
    """Save rows of equally sized (3, H, W) images as one PNG."""
    h, w = rows[0][0].shape[-2:]
    ncol = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = to_uint8(img)
    Image.fromarray(canvas).save(path)
    return Path(path)


def line_plot(values: list[float], path: str | Path, title: str, size: tuple[int, int] = (640, 360),
              smooth: int = 50) -> Path:
    """Plot a series (raw in grey, moving average in blue) on a log-free linear axis."""
    w, h = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 60, 15, 30, 30
    draw.text((left, 8), title, fill="black")
    if len(values) >= 2:
        v = np.asarray(values, float)
        k = max(1, min(smooth, len(v) // 5 or 1))
        avg = np.convolve(v, np.ones(k) / k, mode="valid")
        lo, hi = float(np.percentile(v, 1)), float(np.percentile(v, 99))
        hi = hi if hi > lo else lo + 1e-9

        def pts(series: np.ndarray, offset: int) -> list[tuple[float, float]]:
            xs = left + (np.arange(len(series)) + offset) / max(len(v) - 1, 1) * (w - left - right)
            ys = top + (1 - (np.clip(series, lo, hi) - lo) / (hi - lo)) * (h - top - bottom)
            return list(zip(xs.tolist(), ys.tolist()))

        draw.line(pts(v, 0), fill=(190, 190, 190), width=1)
        draw.line(pts(avg, k - 1), fill=(30, 80, 200), width=2)
        draw.text((5, top - 5), f"{hi:.4g}", fill="black")
        draw.text((5, h - bottom - 5), f"{lo:.4g}", fill="black")
        draw.text((w - right - 80, h - bottom + 8), f"step {len(v)}", fill="black")
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    img.save(path)
    return Path(path)
