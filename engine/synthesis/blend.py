"""Seam blending of a completed hole: the copied patches meet the known pixels without a step.

Copied patches carry the brightness of where they came from, so at the hole's border a fill
can be a shade off its neighbours (a visible seam; for outpainting, a line down the old edge).
The step is measured on the hole's first ring of pixels (the jump beyond a straight
continuation from the known neighbours through the fill),
smoothed along the border, spread over the hole as a smooth offset from the nearest stretch
of border (as in gradient-domain cloning, the copied texture's gradients are kept), and faded out
with the distance from the border, so a mismatch at one place on the border does not tint
the middle of the fill. What the smoothing leaves (the pixel-to-pixel part of the step, where
the copied texture meets the known texture out of phase) is removed too, over the first two or
three pixels only, so the line along the border goes without the texture fading.
In a removal, large steps are left alone: there the fill meets a different object (sky against
a dark floor), and spreading that step would stain the fill. An outpainted strip has no object
beyond the old edge, so there every step is a seam (keep_edges=False).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..fills import harmonic_fill, hole_depth
from ..images import gaussian_blur
from . import pyramid

SMOOTH = 3.0  # the step is averaged along the border over a Gaussian of this many pixels ...
FADE = 16  # ... and its correction fades as exp(-depth / FADE) into the hole
STEP_MAX = 0.15  # smoothed steps larger than this (any channel, 0-1 scale) are object edges, not seams
FINE_SIGMA = 0.7  # the pixel-to-pixel rest of the step is spread over a Gaussian this wide ...
FINE_FADE = 2.0  # ... and fades as exp(-(depth - 1) / FINE_FADE) into the hole


def _smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma)
    g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).to(x.device)
    c = x.shape[0]
    x = F.conv2d(F.pad(x[None], (r, r, 0, 0)), g.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r)), g.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)[0]


def _neighbour_mean(x: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of x (c, h, w) over each pixel's 8-neighbours where `which` is set, and their share."""
    k = which.float()
    num = F.avg_pool2d(F.pad((x * k)[None], (1, 1, 1, 1)), 3, stride=1)[0]
    den = F.avg_pool2d(F.pad(k[None, None], (1, 1, 1, 1)), 3, stride=1)[0]
    return num / den.clamp_min(1e-8), den[0]


def _spread(values: torch.Tensor, where: torch.Tensor, sigma: float) -> torch.Tensor:
    """Normalised Gaussian average of `values` (c, h, w) over the pixels `where`, at every pixel."""
    return _smooth(values * where[None], sigma) / _smooth(where[None].float(), sigma).clamp_min(1e-8)


def seam_blend(filled: np.ndarray, hole: np.ndarray, keep_edges: bool = True) -> np.ndarray:
    """filled (h, w, c) float32 with its hole completed; returns it with the border step removed
    (only hole pixels change). keep_edges: leave large steps alone (object edges; see above).
    Works on the hole's box and two known rings around it, so the cost follows the hole."""
    return _on_hole_box(filled, hole, 2, lambda f, h: _blend_box(f, h, keep_edges))


def _on_hole_box(filled: np.ndarray, hole: np.ndarray, margin: int,
                 work: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Run work(filled box, hole box) on the hole's bounding box grown by `margin` known pixels and
    put the result back: the cost follows the hole, not the picture. No hole (or all hole): as is."""
    hole = np.asarray(hole, bool)
    if not hole.any() or hole.all():
        return filled
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    box = (slice(max(0, rows[0] - margin), rows[-1] + margin + 1),
           slice(max(0, cols[0] - margin), cols[-1] + margin + 1))
    out = np.array(filled, np.float32, copy=True)
    out[box] = work(out[box], hole[box])
    return out


def _blend_box(filled: np.ndarray, hole: np.ndarray, keep_edges: bool) -> np.ndarray:
    hole_t = torch.from_numpy(np.ascontiguousarray(hole))
    x = torch.from_numpy(np.ascontiguousarray(filled, np.float32)).permute(2, 0, 1)
    depth = pyramid.depth(hole_t, 4 * FADE)
    # per first-ring pixel p: the jump beyond a straight continuation, (mean of its known
    # neighbours) - 2 p + (mean of its neighbours one ring deeper); 0 wherever the picture is
    # locally linear across the border (a gradient is not a seam)
    out_mean = _neighbour_mean(x, ~hole_t)
    in_mean = _neighbour_mean(x, depth == 2)
    ring = (depth == 1) & (out_mean[1] > 0) & (in_mean[1] > 0)
    step = torch.where(ring[None], out_mean[0] - 2 * x + in_mean[0], torch.zeros_like(x))
    # smoothed along the border: a texture's pixel-to-pixel noise averages out, an object edge does not
    first = ring
    if keep_edges:
        edge = ring & (_spread(step, ring, SMOOTH).abs().amax(0) > STEP_MAX)
        first = ring & ~pyramid.dilate(edge, int(2 * SMOOTH))  # and no smoothing across an edge's ends
    if not bool(first.any()):
        return filled
    smooth = _spread(step, first, SMOOTH)
    # spread by a normalised Gaussian over the distance: each hole pixel takes the steps of the
    # border nearest to it (a pyramid membrane would mix in the far side of the hole)
    fade = torch.exp(-depth / FADE)  # exp(-4) past the cap: no visible step
    correction = _spread(smooth, first, FADE) * fade[None]
    fine_fade = torch.exp(-(depth - 1).clamp_min(0) / FINE_FADE)
    correction += _spread(step - smooth, first, FINE_SIGMA) * fine_fade[None]
    out = torch.where(hole_t[None], x + correction, x)
    return out.permute(1, 2, 0).numpy()


# The fill's low frequencies pulled toward the membrane of its border (pull_low):
PULL_SIGMA = 0.5  # the correction is smoothed over a Gaussian of this share of the hole's depth ...
PULL_RAMP = 0.25  # ... and fades in from the border over this share of it (no step at the border)
PULL_CAP = 0.1  # smoothed differences well above this (any channel, 0-1 scale) are a different layout, not
# a tone offset: pulled by exp(-(difference / cap)²), so they are left alone (pulled fully, a white
# cloud or a dark coat turned into a washed-out grey stain)
PULL_GRID = 4  # the smooth parts are computed on a grid of sigma / this pixels (2048², 5 % hole, one
# thread, load average 8: 7.9 s for the blur at full resolution, 2.8 s for the whole pull this way)


def pull_low(filled: np.ndarray, hole: np.ndarray, strength: float) -> np.ndarray:
    """filled (h, w, c) float32 with its hole completed; returns it with the fill's smooth part
    moved `strength` of the way toward the harmonic membrane of the hole's border.

    Why: a completion copies whole pieces with their own brightness, so a fill can sit a shade
    off what its border suggests over a large area, which is most of its squared error. The
    membrane is the smoothest guess from the border; moving only the fill's low frequencies
    toward it keeps the copied texture (its high frequencies are untouched). Only offsets up
    to about PULL_CAP are pulled: a larger difference is a different layout (sky where the
    border has trees), and pulling it leaves a grey stain. Only hole pixels change; the cost
    follows the hole's box.
    """
    if strength <= 0:
        return filled
    return _on_hole_box(filled, hole, 1, lambda f, h: _pull_box(f, h, strength))


def _pull_box(filled: np.ndarray, hole: np.ndarray, strength: float) -> np.ndarray:
    depth_q = max(2.0, hole_depth(hole))
    sigma = max(2.0, PULL_SIGMA * depth_q)
    # everything but the fade-in is smooth: computed on a grid PULL_GRID times finer than sigma
    k = max(1, int(sigma / PULL_GRID))
    hole_t = torch.from_numpy(np.ascontiguousarray(hole))
    x = torch.from_numpy(np.ascontiguousarray(filled, np.float32)).permute(2, 0, 1)[None]
    small = F.avg_pool2d(x, k, ceil_mode=True)[0]
    small_hole = F.max_pool2d(hole_t[None, None].float(), k, ceil_mode=True)[0, 0] > 0
    membrane = torch.from_numpy(harmonic_fill(small.permute(1, 2, 0).numpy(), small_hole.numpy())).permute(2, 0, 1)
    diff = torch.where(small_hole[None], membrane - small, torch.zeros_like(small))
    # normalised over the hole: the known pixels (no difference by definition) do not dilute it
    low = gaussian_blur(diff[None], sigma / k, "reflect") / gaussian_blur(
        small_hole[None, None].float(), sigma / k, "reflect").clamp_min(1e-6)
    low = low * torch.exp(-(low.abs().amax(1, keepdim=True) / PULL_CAP) ** 2)
    low = F.interpolate(low, size=hole.shape, mode="bilinear", align_corners=False)[0]
    ramp_px = max(2.0, PULL_RAMP * depth_q)
    ramp = (pyramid.depth(hole_t, int(ramp_px) + 2).float() / ramp_px).clamp(0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the fade ends
    corrected = x[0] + strength * low * ramp[None]
    return np.where(hole[..., None], corrected.permute(1, 2, 0).numpy(), filled)
