"""Training data: image folders (jpg/png/webp, recursive) and synthetic dead leaves."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..images import luma

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def find_images(folders: list[str | Path]) -> list[Path]:
    """All images below the given folders, sorted for reproducibility."""
    files: list[Path] = []
    for folder in folders:
        root = Path(folder)
        if root.is_file() and root.suffix.lower() in IMAGE_SUFFIXES:
            files.append(root)
            continue
        files.extend(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(set(files))


def load_rgb(path: Path) -> torch.Tensor:
    """uint8 (3, H, W) tensor; alpha is dropped."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def shrink_to(img: torch.Tensor, max_side: int | None) -> torch.Tensor:
    """Downscale a uint8 (3, H, W) image (antialiased) so its long side is at most max_side."""
    if not max_side or max(img.shape[-2:]) <= max_side:
        return img
    h, w = img.shape[-2:]
    s = max_side / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    out = F.interpolate(img[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].round().clamp(0, 255).to(torch.uint8)


def dead_leaves(size: int, rng: np.random.Generator) -> torch.Tensor:
    """A dead-leaves image: occluding disks with power-law radii (scale-invariant stats)."""
    img = np.zeros((size, size, 3), np.float32)
    covered = np.zeros((size, size), bool)
    rmin, rmax = 1.5, size / 3
    remaining = size * size
    while remaining > 0.005 * size * size:
        u = rng.uniform()
        r = (rmin ** -2 + u * (rmax ** -2 - rmin ** -2)) ** -0.5  # density ~ r^-3
        cx, cy = rng.uniform(-r, size + r), rng.uniform(-r, size + r)
        y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disk = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) & ~covered[y0:y1, x0:x1]
        img[y0:y1, x0:x1][disk] = rng.uniform(0, 1, 3)
        covered[y0:y1, x0:x1] |= disk
        remaining -= int(disk.sum())
    return torch.from_numpy((img * 255).astype(np.uint8)).permute(2, 0, 1)


def recolour(crop: torch.Tensor, order: tuple[int, int, int], saturation: float) -> torch.Tensor:
    """Permute a float (3, H, W) 0..255 crop's channels and scale its chroma about the luma.

    BSDS photos are mostly muted earth tones; saturated scenes (McMaster-like flowers, paint,
    fabric) are rare. Recoloured crops show the network strong, correlated chroma edges."""
    crop = crop[list(order)]
    y = luma(crop)  # BT.601: the axis the chroma scaling keeps fixed
    return (y + saturation * (crop - y)).clamp(0, 255)


class PatchSampler:
    """Random crops with flips, downscales and (optionally) recolouring, returned in [-1, 1]
    as (B, 3, P, P)."""

    PERMUTATIONS = tuple(itertools.permutations(range(3)))

    def __init__(self, images: list[torch.Tensor], patch: int, seed: int = 0,
                 dead_leaves_fraction: float = 0.0, max_downscale: float = 2.0,
                 colour_fraction: float = 0.0, max_saturation: float = 2.0):
        if not images and dead_leaves_fraction <= 0:
            raise ValueError("no training images")
        self.images = images
        self.patch = patch
        self.rng = np.random.default_rng(seed)
        self.dead_leaves_fraction = dead_leaves_fraction if images else 1.0
        self.max_downscale = max_downscale
        self.colour_fraction = colour_fraction
        self.max_saturation = max_saturation
        self._leaves: list[torch.Tensor] = []

    def _leaf(self) -> torch.Tensor:
        # A small pool, refreshed slowly, keeps dead leaves cheap to draw.
        if len(self._leaves) < 32 or self.rng.uniform() < 0.05:
            self._leaves.append(dead_leaves(max(self.patch * 2, 64), self.rng))
            self._leaves = self._leaves[-32:]
        return self._leaves[self.rng.integers(len(self._leaves))]

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        p = self.patch
        _, h, w = img.shape
        max_s = min(self.max_downscale, h / p, w / p)
        s = math.exp(self.rng.uniform(0, math.log(max(max_s, 1.0))))
        ch, cw = min(h, int(round(p * s))), min(w, int(round(p * s)))
        y, x = self.rng.integers(0, h - ch + 1), self.rng.integers(0, w - cw + 1)
        crop = img[:, y : y + ch, x : x + cw].float().unsqueeze(0)
        if ch != p or cw != p:
            crop = F.interpolate(crop, size=(p, p), mode="bilinear", antialias=True, align_corners=False)
        crop = crop[0]
        if self.rng.uniform() < 0.5:
            crop = crop.flip(-1)
        if self.rng.uniform() < 0.5:
            crop = crop.transpose(1, 2)
        if self.colour_fraction > 0 and self.rng.uniform() < self.colour_fraction:
            order = self.PERMUTATIONS[self.rng.integers(len(self.PERMUTATIONS))]
            crop = recolour(crop, order, math.exp(self.rng.uniform(0, math.log(self.max_saturation))))
        return crop

    def batch(self, n: int) -> torch.Tensor:
        out = []
        for _ in range(n):
            if self.rng.uniform() < self.dead_leaves_fraction:
                img = self._leaf()
            else:
                img = self.images[self.rng.integers(len(self.images))]
            out.append(self._crop(img))
        return torch.stack(out) / 127.5 - 1.0
