"""One pyramid level of expectation-maximisation synthesis (Wexler, Shechtman and Irani 2007).

M-step (vote): every pixel to be synthesised becomes the weighted mean of the values that the
source patches matched to the target patches covering it propose. E-step (match): the
target descriptors are recomputed from the new estimate and the PatchMatch field improved.
A target patch's weight is its confidence (set by the caller: e.g. decaying into a hole, as
known pixels are more trustworthy than synthesised ones) times exp(-d / 2 sigma^2), where
sigma^2 is the 75th percentile of the distances, so poor matches count less.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .features import features_at
from .nnf import Field

Tick = Callable[[], None]


@dataclass
class Target:
    """What one level synthesises: the grid, which pixels change and which patches are matched."""

    est: torch.Tensor  # (c, h, w) current estimate; pixels outside `update` are fixed
    guide: torch.Tensor | None  # (g, h, w) guidance channels of the target, or None
    update: torch.Tensor  # (h, w) bool, the pixels the votes write
    ty: torch.Tensor  # target patch centres
    tx: torch.Tensor
    confidence: torch.Tensor  # (h, w) patch weight at each centre
    wrap: bool
    keep_picked: bool = False  # sharp votes leave which source pixel each pixel took in `picked`
    picked: torch.Tensor | None = None  # (h, w) flat source index (-1: none), see keep_picked


def vote(src_img: torch.Tensor, src_wrap: bool, field: Field, weight: torch.Tensor, t: Target, r: int,
         sharp: bool = False) -> torch.Tensor:
    """The new estimate: each `update` pixel is the weighted mean of its covering patches' proposals.

    Dense over the box of the pixels to update: the field and weights are laid out as maps
    (weight 0 where no target), and for each of the p * p offsets the map shifted by that
    offset says which source pixel each pixel receives; no scatter is needed.
    sharp: each pixel takes the proposal of its most heavily weighted patch instead of the
    mean (no averaging blur where the field is not coherent); which source pixel each took is
    left in t.picked if t.keep_picked (for synthesis.fusion).
    """
    c, h, w = t.est.shape
    hs, ws = src_img.shape[-2:]
    rows = src_img.reshape(c, -1).T
    if t.wrap:
        y0, y1, x0, x1 = 0, h, 0, w
    else:
        ys, xs = torch.nonzero(t.update, as_tuple=True)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    bh, bw = y1 - y0, x1 - x0
    # maps over the box grown by r (targets outside the image stay weight 0)
    wmap = torch.zeros((h + 2 * r, w + 2 * r), device=rows.device)
    smap = torch.zeros((h + 2 * r, w + 2 * r), dtype=torch.long, device=rows.device)
    wmap[t.ty + r, t.tx + r] = weight
    smap[t.ty + r, t.tx + r] = field.idx
    if t.wrap:  # targets near one edge also cover pixels across the other
        wmap = F.pad(wmap[r:h + r, r:w + r][None, None], (r, r, r, r), mode="circular")[0, 0]
        smap = F.pad(smap[r:h + r, r:w + r][None, None].float(), (r, r, r, r), mode="circular")[0, 0].long()
    if src_wrap:
        sy_map, sx_map = smap.div(ws, rounding_mode="floor"), smap % ws
    acc = torch.zeros((bh * bw, c), device=rows.device)
    wsum = torch.zeros((bh, bw), device=rows.device)
    best = torch.zeros((bh, bw), dtype=torch.long, device=rows.device)
    for oy in range(-r, r + 1):
        for ox in range(-r, r + 1):
            win = (slice(y0 + r - oy, y1 + r - oy), slice(x0 + r - ox, x1 + r - ox))
            wt = wmap[win]
            if src_wrap:
                q = ((sy_map[win] + oy) % hs) * ws + (sx_map[win] + ox) % ws
            else:  # a valid source patch lies inside the source: no bounds to check
                q = smap[win] + (oy * ws + ox)
            if sharp:  # remember the best proposal's source; one gather at the end
                better = wt > wsum
                best = torch.where(better, q, best)
                wsum = torch.maximum(wsum, wt)
            else:
                acc.addcmul_(rows.index_select(0, q.clamp(0, hs * ws - 1).reshape(-1)), wt.reshape(-1, 1))
                wsum += wt
    upd = t.update[y0:y1, x0:x1] & (wsum > 0)
    if sharp:
        acc = rows.index_select(0, best.clamp(0, hs * ws - 1).reshape(-1))
        if t.keep_picked:
            t.picked = torch.full((h, w), -1, dtype=torch.long, device=rows.device)
            t.picked[y0:y1, x0:x1] = torch.where(upd, best, torch.full_like(best, -1))
    out = t.est.clone()
    box = out[:, y0:y1, x0:x1]
    new = (acc if sharp else acc / wsum.reshape(-1, 1).clamp_min(1e-30)).T.reshape(c, bh, bw)
    out[:, y0:y1, x0:x1] = torch.where(upd[None], new, box)
    return out


def match_weights(field: Field, t: Target) -> torch.Tensor:
    d = field.dist
    finite = torch.isfinite(d)
    if not bool(finite.any()):
        return t.confidence[t.ty, t.tx]
    k = max(1, int(0.75 * int(finite.sum())))
    sigma2 = float(d[finite].kthvalue(k).values) + 1e-6
    sim = torch.exp(-torch.where(finite, d, torch.full_like(d, 1e30)) / (2 * sigma2))
    return t.confidence[t.ty, t.tx] * sim


def em_level(src_img: torch.Tensor, src_wrap: bool, field: Field, t: Target, kernels: torch.Tensor,
             iterations: int, pm_iterations: int, tick: Tick, sharp: bool = True) -> torch.Tensor:
    """Run `iterations` rounds of match-then-vote at one level; returns the estimate.

    The field must hold an initial match for every target (random or from the coarser level).
    sharp: votes keep each pixel's best proposal (see `vote`): the mean of an incoherent field
    is a blur, which then matches smooth sources better than textured ones, and so on.
    """
    r = kernels.shape[-1] // 2
    for it in range(iterations):
        x = t.est if t.guide is None else torch.cat([t.est, t.guide])
        field.set_targets(features_at(x, kernels, t.ty, t.tx, t.wrap))
        field.iterate(pm_iterations if it == 0 else 1)
        t.est = vote(src_img, src_wrap, field, match_weights(field, t), t, r, sharp)
        tick()
    return t.est
