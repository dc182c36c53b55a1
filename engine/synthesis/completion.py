"""Hole completion, coarse to fine: the image fills its own hole with its own patches.

The work is cropped to the hole's neighbourhood first, so cost follows the hole, not the
image. At the coarsest level (where the hole is about a patch deep) the hole starts as a
smooth membrane and the field as random matches; each finer level starts from the coarser
field scaled up (each match doubled, plus the pixel's parity), votes once with it, then
iterates (match, vote). Fewer iterations run at the finer, costlier levels, where only detail
is left to settle. Optionally (Settings.fuse) the finest fill is then rebuilt from its pieces'
gradients, so pieces from the lit and the shaded side of a smooth area meet without a step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..fills import harmonic_fill
from . import pyramid
from .em import Target, em_level, match_weights, vote
from .features import basis, feature_map
from .fusion import fuse
from .nnf import Field
from .peel import peel
from .progress import Progress, Ticker



@dataclass(frozen=True)
class Settings:
    """Knobs of the completion; callers tune them per use (e.g. inpaint_large.REMOVAL, OUTPAINT)."""

    patch: int = 7
    em_coarse: int = 6  # EM iterations at the coarsest level, two fewer per finer level ...
    em_fine: int = 1  # ... down to this many
    pm_iterations: int = 2  # PatchMatch iterations in a level's first EM round (then one): a second one
    # gave removal fills a lower patch distance (0.275 -> 0.242) and +0.5 dB hole PSNR on six photos
    decay: float = 1.3  # confidence of a patch centred d pixels inside the hole: decay ** -d (Wexler et al.)
    guide_weight: float = 1.0  # guidance SSD counts this much against image SSD
    sharp: bool = True  # votes keep each pixel's best proposal, not the mean (see em.vote)
    margin: int | None = None  # context kept around the hole's box; None: its longer side, at least 8 patches
    near: float = 0.0  # price of copying from far from the target (nnf.near_price, in mean squared
    # difference per value at one hole depth away; the scale is the hole's depth at each level); 0: none
    near_levels: int | None = None  # the full price at this many coarsest levels only (None: all); finer
    # levels pay it only past near_free hole depths: the coarse levels lay out what continues the
    # border, the finer ones copy texture unstretched from around it (a price on every pixel of
    # distance makes each target copy the nearest border column: sideways streaks)
    near_free: float = 0.0  # (math.inf: the finer levels pay nothing)
    near_inside: float = 0.0  # ... and within near_free this share of the full price (breaks ties on flat areas)
    near_rounds: float = 1.0  # share of a level's EM rounds that pay the near price; the rest run free, so
    # the layout the price set up settles without the straight steps between pieces taken from
    # opposite borders that a price held to the end leaves
    round_depth: bool = False  # the confidence's depth is octagonal, not chessboard: a sharp vote takes each
    # pixel from the shallowest patch over it, so square depth contours cut the pieces square
    membrane_pull: float = 0.0  # at the coarsest level, each round after the near price's first moves the
    # estimate this far toward the membrane of the hole's border before matching: the layout leans toward
    # what surrounds the hole, while every vote still copies real patches
    fuse: float = 0.0  # rebuild the finest fill from its pieces' gradients (synthesis.fusion), keeping
    # steps larger than this (0-1 scale) as object edges; 0: no fusion


@dataclass
class _Level:
    img: torch.Tensor  # (c, h, w); hole pixels hold anything
    hole: torch.Tensor  # (h, w) bool
    source: torch.Tensor  # (h, w) bool, pixels that may be copied
    guide: torch.Tensor | None
    weight: torch.Tensor  # (h, w) per-pixel patch weight from the caller


def _crop_box(hole: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    h, w = hole.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)))


def _pyramid(base: _Level, patch: int, wrap: bool) -> list[_Level]:
    """Levels from fine to coarse, down until the hole is about a patch deep."""
    levels = [base]
    while True:
        lv = levels[-1]
        deep = float(pyramid.depth(lv.hole, patch + 1, wrap).max()) > patch
        if not deep or min(lv.hole.shape) < 4 * patch:
            return levels
        known = ~lv.hole
        levels.append(_Level(pyramid.down_image(lv.img, known, wrap), pyramid.down_any(lv.hole, wrap),
                             pyramid.down_all(lv.source, wrap),
                             None if lv.guide is None else pyramid.down_image(lv.guide, torch.ones_like(known), wrap),
                             pyramid.down_image(lv.weight[None], torch.ones_like(known), wrap)[0]))


def _upscale_field(grid: torch.Tensor, coarse_shape: tuple[int, int], ty: torch.Tensor, tx: torch.Tensor,
                   shape: tuple[int, int], wrap: bool) -> torch.Tensor:
    """Initial fine matches: the parent's match doubled, plus the pixel's parity (-1 where impossible)."""
    hc, wc = coarse_shape
    h, w = shape
    g = grid[(ty // 2).clamp(max=hc - 1) * wc + (tx // 2).clamp(max=wc - 1)]
    sy = g.div(wc, rounding_mode="floor") * 2 + ty % 2
    sx = (g % wc) * 2 + tx % 2
    if wrap:
        return (sy % h) * w + sx % w
    ok = (sy < h) & (sx < w) & (g >= 0)
    return torch.where(ok, sy * w + sx, torch.full_like(sy, -1))


def _membrane(img: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The harmonic interpolation of the hole's border (c, h, w): the smoothest guess at its layout."""
    filled = harmonic_fill(img.permute(1, 2, 0).cpu().numpy(), hole.cpu().numpy())
    return torch.from_numpy(filled).permute(2, 0, 1).to(img)


def _complete_levels(levels: list[_Level], s: Settings, wrap: bool, gen: torch.Generator, progress: Progress
                     ) -> torch.Tensor:
    r = s.patch // 2
    counts = [max(s.em_fine, s.em_coarse - 2 * (len(levels) - 1 - i)) for i in range(len(levels))]
    tick = Ticker(sum(counts), progress)

    est: torch.Tensor | None = None
    prev: tuple[torch.Tensor, tuple[int, int]] | None = None
    for i in range(len(levels) - 1, -1, -1):
        lv = levels[i]
        c, h, w = lv.img.shape
        known = ~lv.hole
        ok = pyramid.erode(lv.source & known, r, wrap)
        near = None
        coarse = s.near_levels is None or len(levels) - 1 - i < s.near_levels
        if s.near > 0 and not wrap and (coarse or math.isfinite(s.near_free)):
            band = (0.0, 0.0) if coarse else (s.near_free, s.near_inside)
            near = (s.near, float(pyramid.depth(lv.hole, max(h, w)).max()), *band)
        if est is None:
            est = peel(lv.img, lv.hole, ok, s.patch, wrap, gen, near)
        else:
            est = torch.where(lv.hole[None], pyramid.upsample(est, (h, w)), lv.img)
        kernels = basis(c, 0 if lv.guide is None else lv.guide.shape[0], s.patch, s.guide_weight).to(est.device)
        if not bool(ok.any()):  # nothing to copy at this level: keep the smooth estimate
            prev = None
            for _ in range(counts[i]):
                tick()
            continue
        x = lv.img if lv.guide is None else torch.cat([lv.img, lv.guide])
        src = feature_map(x, kernels, wrap)
        ty, tx = torch.nonzero(pyramid.dilate(lv.hole, r, wrap), as_tuple=True)
        grid = torch.arange(h * w, device=est.device)
        field = Field(src, ok, ty, tx, (h, w), grid, wrap, gen,
                      near=None if near is None else (near[0] * c * s.patch ** 2, *near[1:]))
        conf = lv.weight * s.decay ** -pyramid.depth(lv.hole, 2 * s.patch, wrap, s.round_depth)
        t = Target(est, lv.guide, lv.hole, ty, tx, conf, wrap, keep_picked=i == 0 and s.fuse > 0)
        if prev is None:
            field.random_init()
        else:
            field.set_init(_upscale_field(prev[0], prev[1], ty, tx, (h, w), wrap))
            field.dist = torch.zeros_like(field.dist)
            t.est = vote(lv.img, wrap, field, match_weights(field, t), t, r)
        priced = counts[i] if near is None else max(1, round(s.near_rounds * counts[i]))
        est = em_level(lv.img, wrap, field, t, kernels, priced, s.pm_iterations, tick, s.sharp)
        if priced < counts[i]:
            field.near = None
            pull = s.membrane_pull if i == len(levels) - 1 and not wrap else 0.0
            if pull > 0:  # one round at a time, each matched against the pulled estimate
                membrane = _membrane(lv.img, lv.hole)
                for _ in range(counts[i] - priced):
                    t.est = torch.where(lv.hole[None], t.est + pull * (membrane - t.est), t.est)
                    est = em_level(lv.img, wrap, field, t, kernels, 1, s.pm_iterations, tick, s.sharp)
            else:
                est = em_level(lv.img, wrap, field, t, kernels, counts[i] - priced, s.pm_iterations, tick, s.sharp)
        prev = (field.grid, (h, w))
        if i == 0 and s.fuse > 0 and s.sharp and t.picked is not None and not wrap:
            del field, src  # the source descriptors are the largest tensors: freed before the fusion's
            est = fuse(lv.img, est, lv.hole, t.picked, s.fuse)
    assert est is not None
    return est


def complete(image: np.ndarray, hole: np.ndarray, source: np.ndarray | None = None, guide: np.ndarray | None = None,
             weight: np.ndarray | None = None, wrap: bool = False, seed: int = 0, settings: Settings = Settings(),
             device: str | torch.device = "cpu", progress: Progress = None) -> np.ndarray:
    """Fill `hole` of `image` with patches copied from the rest of it.

    image: (h, w, c) float32; hole: (h, w) bool; source: (h, w) bool, where patches may be
    copied from (default: everywhere outside the hole; the hole is never a source);
    guide: (h, w, g) float32 guidance channels known everywhere (structure, labels), compared
    with weight settings.guide_weight; weight: (h, w) per-pixel patch weights in the vote
    (e.g. to trust some context more); wrap: the image is a torus (tileable output).
    Returns the image with only the hole's pixels changed. Same seed, same result (per device).
    """
    image = np.asarray(image, np.float32)
    hole = np.asarray(hole, bool)
    if not hole.any():
        return image.copy()
    if source is not None and not np.asarray(source, bool).any():
        raise ValueError("the source region is empty")
    box = (slice(None), slice(None))
    if not wrap:
        bh, bw = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        side = max(bh[-1] - bh[0], bw[-1] - bw[0]) + 1
        margin = settings.margin if settings.margin is not None else max(side, 8 * settings.patch)
        box = _crop_box(hole, margin)
    dev = torch.device(device)

    def t(a: np.ndarray) -> torch.Tensor:
        a = np.ascontiguousarray(a[box])
        x = torch.from_numpy(a).to(dev)
        return x.permute(2, 0, 1) if x.ndim == 3 else x

    h_t = t(hole)
    base = _Level(t(image), h_t, torch.ones_like(h_t) if source is None else t(np.asarray(source, bool)),
                  None if guide is None else t(np.asarray(guide, np.float32)),
                  torch.ones(h_t.shape, device=dev) if weight is None else t(np.asarray(weight, np.float32)))
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    with torch.inference_mode():
        levels = _pyramid(base, settings.patch, wrap)
        est = _complete_levels(levels, settings, wrap, gen, progress)
    out = image.copy()
    sub = out[box]
    sub[hole[box]] = est.permute(1, 2, 0).cpu().numpy()[hole[box]]
    return out
