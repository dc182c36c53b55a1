"""Onion-peel initialisation of a hole at the coarsest level.

A smooth membrane is a poor start for matching: its flat mean colour matches whatever
flat, mid-grey thing the picture holds (an animal on snow, a shadow), and EM then copies
that thing into the hole. Instead the hole is filled ring by ring from its border inward:
each ring pixel takes the centre of the source patch that best matches the pixels already
known around it (exact SSD over the known part only, normalised by its size), so edges
and horizons run on into the hole. The coarsest level is small, so exact brute-force
distances are cheap (sources are subsampled past a cap).

Peeling alone lets anything that touches the hole's border grow into it as fast as the
background does (a shoulder at the foot of a removed object rises into the sky). So each
candidate's cost also carries a prior against colours that are rare in the ring of known
pixels around the hole. What surrounds much of the hole may fill it; a colour met along a
short stretch of the border stays near that stretch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import pyramid
from .nnf import near_price

MAX_SOURCES = 8192
RING = 2  # width of the known ring whose colours make the prior
COLOUR_SIGMA = 0.08  # colours this far apart (per channel, 0-1 scale) count as about the same
PRIOR_WEIGHT = 0.02  # the prior's weight against the mean squared pixel difference of a match
COMMON = 0.1  # colours at least this common (relative to the commonest) in the ring cost nothing


def _unfold(x: torch.Tensor, p: int, wrap: bool) -> torch.Tensor:
    r = p // 2
    xp = F.pad(x[None], (r, r, r, r), mode="circular" if wrap else "replicate")
    return F.unfold(xp, p)[0]  # (c * p * p, h * w)


def peel(img: torch.Tensor, hole: torch.Tensor, ok: torch.Tensor, p: int, wrap: bool,
         gen: torch.Generator, near: tuple[float, ...] | None = None) -> torch.Tensor:
    """img (c, h, w) with the hole filled ring by ring from matched known patches.
    near: the arguments after dx of nnf.near_price, in mean squared difference per known value (or None)."""
    c, h, w = img.shape
    idx = torch.nonzero(ok.reshape(-1)).squeeze(1)
    if len(idx) == 0:
        return pyramid.push_pull(img, ~hole)
    if len(idx) > MAX_SOURCES:
        pick = torch.randperm(len(idx), generator=gen, device=gen.device)[:MAX_SOURCES].to(idx.device)
        idx = idx[pick]
    src = _unfold(img, p, wrap)[:, idx]  # (c p p, n), all known
    src_sq = (src * src)
    centre = (p * p) // 2
    prior = _ring_prior(img, hole, src.view(c, p * p, -1)[:, centre, :], wrap)
    est = img.clone()
    filled = ~hole
    while not bool(filled.all()):
        ring = pyramid.dilate(filled, 1, wrap) & ~filled
        if not bool(ring.any()):
            break
        flat = torch.nonzero(ring.reshape(-1)).squeeze(1)
        tp = _unfold(est, p, wrap)[:, flat]  # (c p p, m)
        km = _unfold(filled[None].float(), p, wrap)[:, flat].repeat(c, 1)
        n = km.sum(0).clamp_min(1)
        d = (km * tp * tp).sum(0)[:, None] - 2 * (km * tp).T @ src + km.T @ src_sq
        d = d / n[:, None] + prior[None]
        if near is not None:
            d = d + near_price((idx // w)[None] - (flat // w)[:, None], (idx % w)[None] - (flat % w)[:, None], *near)
        best = d.argmin(1)
        vals = src.view(c, p * p, -1)[:, centre, :][:, best]  # (c, m)
        est.view(c, -1)[:, flat] = vals
        filled = filled | ring
    return est


def _ring_prior(img: torch.Tensor, hole: torch.Tensor, colours: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Cost (n,) of each source colour (c, n): PRIOR_WEIGHT * -log of its kernel density among
    the ring's colours relative to COMMON times the commonest one's; 0 for common colours (a
    hole between two statues may well hold the background that is only part of its ring)."""
    ring = pyramid.dilate(hole, RING, wrap) & ~hole
    rc = img[:, ring]  # (c, m)
    if rc.shape[1] == 0:
        return torch.zeros(colours.shape[1], device=img.device)
    d2 = (colours * colours).sum(0)[:, None] - 2 * colours.T @ rc + (rc * rc).sum(0)[None]
    dens = torch.exp(-d2.clamp_min(0) / (2 * COLOUR_SIGMA ** 2)).mean(1)
    rel = dens / (COMMON * dens.max().clamp_min(1e-30))
    return PRIOR_WEIGHT * -torch.log(rel.clamp(1e-4, 1.0))
