"""Style and content distances for stylize, with a fixed random-weight multi-scale conv net.

Random convolution filters followed by rectification capture texture statistics well enough
for texture synthesis (Ustyuzhaninov et al. 2017), and need no downloaded weights. Both
distances are means over the net's layers:
- style: Frobenius distance between the Gram matrices (channel correlations, normalised
  to unit Frobenius norm) of the result's and the painting's features: what texture and
  colour statistics they share, wherever they are;
- content: squared feature difference between the result and the photo, over the photo's
  feature energy: how much of the photo's layout is left.

What the style distance is most sensitive to (measured on Léger, Kandinsky and Starry Night
against themselves, 256 px): the unit-norm Gram cannot see contrast scaled about mid-grey
(0.8 x contrast: 0.000), while +0.05 brightness costs 0.24-0.29, more than a Gaussian blur of
4 px (0.06-0.07) or the painting cut into 64-px tiles and shuffled (0.09-0.13); shuffling single
pixels costs 0.45-0.95. Matching the photo's full colour distribution to the painting's (sliced
optimal transport) alone scores as well as ours on the bench's ten pairs (0.152 / 0.388), and an
exact mean-colour shift of ours makes it worse (0.150 -> 0.160): the distance is about colour
and fine-scale contrast together, not about strokes and their shapes; read it with the figures.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

WIDTHS = (32, 64, 128)  # channels of the three stages (each halves the resolution first, but the first)
KERNEL = 5
SEED = 20170501
SIDE = 256  # images are measured with this longest side


@lru_cache(maxsize=1)
def _weights() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(SEED)
    out, c = [], 3
    for w in WIDTHS:
        k = torch.randn((w, c, KERNEL, KERNEL), generator=g)
        out.append(k / (c * KERNEL * KERNEL) ** 0.5)
        c = w
    return tuple(out)


def features(img: np.ndarray, side: int | None = SIDE) -> list[torch.Tensor]:
    """Feature maps (c, h, w) of each stage for an (h, w, 3) float [0, 1] image, measured with
    the longest side at most `side` (None: at full resolution, where fine detail counts)."""
    x = torch.from_numpy(np.ascontiguousarray(img[..., :3], np.float32)).permute(2, 0, 1)[None]
    s = side / max(x.shape[-2:]) if side else 1.0
    if s < 1:
        x = F.interpolate(x, scale_factor=s, mode="bilinear", antialias=True, align_corners=False)
    x = x - 0.5
    feats = []
    with torch.no_grad():
        for i, k in enumerate(_weights()):
            if i:
                x = F.avg_pool2d(x, 2)
            x = F.relu(F.conv2d(F.pad(x, (KERNEL // 2,) * 4, mode="reflect"), k))
            feats.append(x[0])
    return feats


def _gram(f: torch.Tensor) -> torch.Tensor:
    m = f.reshape(f.shape[0], -1)
    g = m @ m.T / m.shape[1]
    return g / g.norm().clamp_min(1e-12)


def gram_distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> float:
    """Mean over stages of the distance between unit-norm Gram matrices of two feature lists."""
    return float(np.mean([(_gram(a) - _gram(b)).norm().item() for a, b in zip(fa, fb)]))


def feature_distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> float:
    """Mean over stages of |fa - fb|^2 / |fb|^2 (fb is the reference; same sizes)."""
    return float(np.mean([((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12)).item() for a, b in zip(fa, fb)]))


def style_distance(result: np.ndarray, painting: np.ndarray) -> float:
    return gram_distance(features(result), features(painting))


def content_distance(result: np.ndarray, photo: np.ndarray) -> float:
    """Relative feature difference; result and photo must have the same size."""
    return feature_distance(features(result), features(photo))
