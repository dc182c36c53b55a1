"""Seam blending of a completed hole: the copied patches meet the known pixels without a step.

Copied patches carry the brightness of where they came from, so at the hole's border a fill
can be a shade off its neighbours (a visible seam; for outpainting, a line down the old edge).
The step is measured on the hole's first ring of pixels (known neighbour minus fill),
smoothed along the border, spread over the hole as a membrane (as in gradient-domain
cloning: the offset is smooth, so the copied texture's gradients are kept), and faded out
with the distance from the border, so a mismatch between two objects at one place on the
border does not tint the middle of the fill.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import pyramid

SMOOTH = 3.0  # the step is averaged along the border over a Gaussian of this many pixels ...
FADE = 16  # ... and its correction fades as exp(-depth / FADE) into the hole


def _smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma)
    g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).to(x.device)
    c = x.shape[0]
    x = F.conv2d(F.pad(x[None], (r, r, 0, 0)), g.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r)), g.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)[0]


def seam_blend(filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """filled (h, w, c) float32 with its hole completed; returns it with the border step removed
    (only hole pixels change)."""
    hole_t = torch.from_numpy(np.asarray(hole, bool))
    if not bool(hole_t.any()) or bool(hole_t.all()):
        return filled
    x = torch.from_numpy(np.ascontiguousarray(filled, np.float32)).permute(2, 0, 1)
    known = (~hole_t).float()
    # per first-ring pixel: mean of its known 8-neighbours minus its own value
    kx = F.avg_pool2d(F.pad((x * known)[None], (1, 1, 1, 1)), 3, stride=1)[0]
    kn = F.avg_pool2d(F.pad(known[None, None], (1, 1, 1, 1)), 3, stride=1)[0]
    first = hole_t & (kn[0] > 0)
    step = torch.where(first[None], kx / kn.clamp_min(1e-8) - x, torch.zeros_like(x))
    w = _smooth(first[None].float(), SMOOTH)
    step = _smooth(step, SMOOTH) / w.clamp_min(1e-8)
    membrane = pyramid.push_pull(step, first)
    fade = torch.exp(-pyramid.depth(hole_t, 6 * FADE) / FADE)
    out = torch.where(hole_t[None], x + membrane * fade[None], x)
    return out.permute(1, 2, 0).numpy()
