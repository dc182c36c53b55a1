"""Uniform patch usage: a price on the source patches that the field already uses often.

Plain nearest-neighbour synthesis copies whatever source patches match best, and in a
smooth area of the target those are the source's smoothest: a painting's strokes, lines and
flat areas other than its blandest corner go unused, and the result is a wash. Pricing every
source patch by how many target patches already cover its pixels (the occurrence map of
Kaspar et al. 2015, "Self Tuning Texture Optimization"; the same goal as the reversed
nearest-neighbour fields of StyLit, Fiser et al. 2016, and of Jamriska et al. 2015) pushes
the field to spread its matches over the whole source: every part of the painting is
used about equally often, so its line work and strokes must appear in the result.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def occurrence(idx: torch.Tensor, source: tuple[int, int], p: int) -> torch.Tensor:
    """(hs, ws): mean over each p x p source patch of how many target patches cover its pixels,
    over what a perfectly even use of the source would give (1 = used as often as average)."""
    hs, ws = source
    counts = torch.bincount(idx.clamp_min(0), minlength=hs * ws).float().reshape(1, 1, hs, ws)
    r = p // 2
    # pixels covered by each matched patch, then the mean over a candidate patch's pixels
    cover = F.avg_pool2d(F.pad(counts, (r, r, r, r)), p, stride=1) * (p * p)
    occ = F.avg_pool2d(F.pad(cover, (r, r, r, r), mode="replicate"), p, stride=1)[0, 0]
    even = len(idx) * p * p / (hs * ws)
    return occ / max(even, 1e-6)


def usage_price(idx: torch.Tensor, dist: torch.Tensor, source: tuple[int, int], p: int, weight: float) -> torch.Tensor:
    """(hs * ws,) price per source centre: weight x occurrence x the field's median match
    distance, so the price is in the distances' own units whatever the images."""
    finite = dist[torch.isfinite(dist)]
    scale = float(finite.median()) if len(finite) else 1.0
    return (weight * scale * occurrence(idx, source, p)).reshape(-1)
