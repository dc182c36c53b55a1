"""Find thin bright or dark defects (scratches, dust, hairs) in a photo, as an inpainting mask.

Why this shape: a scratch is narrower than any morphological structuring element a few
pixels wide, so a top-hat (image minus its opening, or closing minus image) isolates it,
while edges and broad shapes vanish. Texture also survives a top-hat, so the response is
then (a) averaged along short line segments at many angles, which favours long straight
or gently curved marks over isolated texture specks, and (b) compared with the local
texture energy, so that grass or foliage needs a far stronger mark than a clear sky.
Compact, very strong spots are kept too (dust). Weak pixels joined to strong ones are
grown by hysteresis, and the mask is dilated by a pixel to cover the anti-aliased rim.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DefectParams:
    """Detector knobs. `sensitivity` 0..1 scales every threshold (higher finds more)."""

    max_width: int = 3  # widest defect, in pixels, treated as thin
    line_length: int = 15  # segment over which line evidence is averaged
    angles: int = 16
    context: int = 31  # window of the local texture energy
    sensitivity: float = 0.5
    dust: bool = True
    dilate: int = 1


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) luma in [0, 1] from (1, 3, H, W) in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(dim=1, keepdim=True)


def _dilate(x: torch.Tensor, r: int) -> torch.Tensor:
    """Grey dilation by a (2r+1) square, separably (a 2-D pool is slow on CPU)."""
    if r <= 0:
        return x
    x = F.max_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, 2 * r + 1), stride=1)
    return F.max_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (2 * r + 1, 1), stride=1)


def _erode(x: torch.Tensor, r: int) -> torch.Tensor:
    return -_dilate(-x, r)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)


def _line_kernels(length: int, angles: int, device: torch.device) -> torch.Tensor:
    """(angles, 1, L, L) normalised kernels that average along a centred segment."""
    c = (length - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(length, dtype=torch.float32), torch.arange(length, dtype=torch.float32),
                            indexing="ij")
    ks = []
    for i in range(angles):
        a = math.pi * i / angles
        dx, dy = math.cos(a), math.sin(a)
        # distance of each cell centre from the line through the centre, and along it
        across = ((xx - c) * dy - (yy - c) * dx).abs()
        along = ((xx - c) * dx + (yy - c) * dy).abs()
        k = (1 - across).clamp(min=0) * (along <= c + 0.5)
        ks.append(k / k.sum())
    return torch.stack(ks)[:, None].to(device)


def _oriented_mean(r: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Max over angles of the mean response along a segment."""
    p = kernels.shape[-1] // 2
    return F.conv2d(F.pad(r, (p, p, p, p), mode="replicate"), kernels).amax(dim=1, keepdim=True)


def _hysteresis(strong: torch.Tensor, weak: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """Grow `strong` through 8-connected `weak` pixels (both bool (1,1,H,W)), a few pixels
    at most: seeds lie all along a mark, so long growth is never needed."""
    grown = strong & weak
    for _ in range(iterations):
        nxt = _dilate(grown.float(), 1).bool() & weak
        if torch.equal(nxt, grown):
            break
        grown = nxt
    return grown | strong


@torch.no_grad()
def detect_defects(image: np.ndarray | torch.Tensor, params: DefectParams = DefectParams(),
                   region: np.ndarray | None = None) -> np.ndarray:
    """Boolean (H, W) mask of thin bright/dark defects in an RGB image.

    `image`: (H, W, 3) in [0, 255] (numpy), or (1, 3, H, W) in [-1, 1] (torch).
    `region`: optional (H, W) bool/float mask; defects are only reported inside it.
    """
    if isinstance(image, np.ndarray):
        rgb = torch.from_numpy(np.ascontiguousarray(image[..., :3], dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    else:
        rgb = (image[:, :3].float().cpu() + 1) / 2
    lum = _luma(rgb)
    r = max(1, params.max_width)
    # Top-hats with a (2r+1) square: anything at most 2r wide survives.
    bright = lum - _dilate(_erode(lum, r), r)
    dark = _erode(_dilate(lum, r), r) - lum
    # Thin marks are tested polarity by polarity: a bright scratch on dark texture must
    # not be excused by the dark specks around it and vice versa.
    kernels = _line_kernels(params.line_length, params.angles, lum.device)
    s = float(np.clip(params.sensitivity, 0.0, 1.0))
    k_line = 6.0 - 4.0 * s  # line evidence vs local texture energy (4 at the default)
    k_dust = 2.0 * k_line
    floor = 0.06 - 0.04 * s  # absolute contrast floor in [0, 1] luma (0.04 = 10 levels at the default)
    mask = torch.zeros_like(lum, dtype=torch.bool)
    for resp in (bright, dark):
        energy = _box(resp, params.context // 2)  # texture energy, a scratch barely moves it
        line = _oriented_mean(resp, kernels)
        strong = (line > k_line * energy) & (line > floor)
        # pixels of the mark itself: at least half the segment's evidence
        weak = (resp > 0.5 * torch.maximum(line, floor * torch.ones_like(line))) & (resp > floor * 0.5)
        strong = strong & weak
        if params.dust:
            local_max = _dilate(resp, 2) <= resp + 1e-6
            strong |= (resp > k_dust * energy) & (resp > 2 * floor) & local_max
        mask |= _hysteresis(strong, (resp > floor * 0.5) & (resp > 0.35 * k_line * energy))
    mask = _dilate(mask.float(), params.dilate) > 0.5
    out = mask[0, 0].cpu().numpy()
    if region is not None:
        out &= np.asarray(region).reshape(out.shape) > 0
    return out
