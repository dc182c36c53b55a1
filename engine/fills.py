"""Classical hole filling from the border (no model needed): harmonic, smooth and
tension-spline fills, and the hole measures that choose between them.

They serve the pre-fill that diffusion starts from in thin holes, and the trainer, which
shows the network the same fills it will be asked to refine. They sit below both ops and
training. Large holes are completed by exemplar synthesis instead (engine.synthesis).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .numerics import conjugate_gradient



def smooth_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill the hole with a smooth membrane interpolated from its border (push-pull pyramid)."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    w = torch.from_numpy((~hole).astype(np.float32))[None, None]
    if float(w.sum()) == 0:
        return np.full_like(img, 0.5)
    levels = [(t * w, w)]
    while levels[-1][1].shape[-1] > 1 or levels[-1][1].shape[-2] > 1:
        num, den = levels[-1]
        if float(den.min()) > 0 and len(levels) > 1:
            break
        levels.append((F.avg_pool2d(num, 2, ceil_mode=True), F.avg_pool2d(den, 2, ceil_mode=True)))
    num, den = levels[-1]
    est = num / den.clamp_min(1e-8)
    for num, den in reversed(levels[:-1]):
        up = F.interpolate(est, size=num.shape[-2:], mode="bilinear", align_corners=False)
        conf = den.clamp(0, 1)
        est = torch.where(den > 0, num / den.clamp_min(1e-8), up) * conf + up * (1 - conf)
    out = img.copy()
    out[hole] = est[0].permute(1, 2, 0).numpy()[hole]
    return out


def harmonic_fill(img: np.ndarray, hole: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Fill the hole with the harmonic (Laplace) interpolation of its border, coarse to fine.

    The smoothest fill there is, and for thin holes (scratches, strokes) the best classical
    estimate in PSNR terms (it beats OpenCV's Telea and Navier-Stokes fills on our masks).
    Each pyramid level starts from the level below and runs Jacobi sweeps on the hole only,
    so deep holes converge as fast as thin ones.
    """
    if not hole.any():
        return img.copy()
    if hole.all():
        return np.full_like(img, float(img.mean()) if img.size else 0.5)
    if min(hole.shape) > 8 and hole_radius(hole) > 2:
        start = _from_coarser(img, hole, lambda a, b: harmonic_fill(a, b, iterations))
    else:
        start = smooth_fill(img, hole)
    y0, y1, x0, x1 = _hole_box(hole, 1)
    t = torch.from_numpy(np.ascontiguousarray(start[y0:y1, x0:x1])).permute(2, 0, 1)[None]
    h = torch.from_numpy(hole[y0:y1, x0:x1])[None, None].expand_as(t)
    for _ in range(iterations):  # Jacobi: each hole pixel becomes the mean of its 4 neighbours
        p = F.pad(t, (1, 1, 1, 1), mode="replicate")
        t = torch.where(h, 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]), t)
    out = img.copy()
    out[y0:y1, x0:x1][hole[y0:y1, x0:x1]] = t[0].permute(1, 2, 0).numpy()[hole[y0:y1, x0:x1]]
    return out


def _laplace(u: torch.Tensor) -> torch.Tensor:
    """5-point Laplacian at the interior positions (slicing: far faster than conv2d on CPU)."""
    return u[..., :-2, 1:-1] + u[..., 2:, 1:-1] + u[..., 1:-1, :-2] + u[..., 1:-1, 2:] - 4 * u[..., 1:-1, 1:-1]


def _tension_gradient(u: torch.Tensor, a: float) -> torch.Tensor:
    """Gradient of sum |laplacian u|^2 + a |gradient u|^2 over the positions inside u (/2)."""
    g = _laplace(F.pad(_laplace(u), (2, 2, 2, 2)))  # the valid Laplacian's adjoint is itself, zero-padded by 2
    dx = F.pad(u[..., :, 1:] - u[..., :, :-1], (1, 1))
    dy = F.pad(u[..., 1:, :] - u[..., :-1, :], (0, 0, 1, 1))
    return g + a * ((dx[..., :, :-1] - dx[..., :, 1:]) + (dy[..., :-1, :] - dy[..., 1:, :]))


def tension_fill(img: np.ndarray, hole: np.ndarray, length: float = 1.0, iterations: int | None = None) -> np.ndarray:
    """Fill the hole with a thin-plate spline under tension: the minimiser of
    sum |laplacian u|^2 + |gradient u|^2 / length^2 over the hole, known pixels fixed.

    Unlike the harmonic fill it continues the border's slope into the hole, not just its
    values, so thin holes (scratches, narrow strokes) come out closer to the truth: on the
    benchmark's scratch masks about 0.5 dB over the harmonic fill on held-in training
    photos (docs/performance.md). The tension term keeps wide holes from overshooting, as a
    pure biharmonic fill does. Solved by conjugate gradients from the harmonic fill on the
    hole's bounding box, coarse to fine; the energy counts only stencils inside the image (a
    natural boundary at the image edge). iterations: CG steps per level; None = by the hole's
    depth (wider holes converge more slowly), 40 + 10 per pixel of depth, at most 250.
    """
    if not hole.any() or hole.all():
        return harmonic_fill(img, hole)
    radius = hole_radius(hole)
    if iterations is None:
        iterations = min(250, 40 + 10 * radius)
    if min(hole.shape) > 16 and radius > 4:  # coarse to fine: CG then only fixes detail
        start = _from_coarser(img, hole, lambda a, b: tension_fill(a, b, length / 2, iterations))
    else:
        start = harmonic_fill(img, hole)
    y0, y1, x0, x1 = _hole_box(hole, 2)
    u0 = torch.from_numpy(np.ascontiguousarray(start[y0:y1, x0:x1], dtype=np.float32)).permute(2, 0, 1)
    sub = hole[y0:y1, x0:x1]
    m = torch.from_numpy(sub.astype(np.float32))[None]
    a = 1.0 / max(length, 1e-3) ** 2
    v = conjugate_gradient(lambda p: m * _tension_gradient(m * p, a), -m * _tension_gradient(u0, a),
                           torch.zeros_like(u0), max_iter=iterations, tol=1e-6)
    u = (u0 + m * v).permute(1, 2, 0).numpy()
    out = img.copy()
    out[y0:y1, x0:x1][sub] = u[sub]
    return out


THIN_DEPTH = 16.0  # holes whose pixels lie mostly (3 in 4) this close to a known pixel are "thin"


def border_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The fill a hole is refined from at full resolution: the tension spline for thin holes
    (scratches, strokes), the harmonic membrane for deeper ones. The inpaint op and the
    trainer's pre-filled samples both use it, so the network learns to correct what it is
    given."""
    if hole_depth(hole, 0.75) <= THIN_DEPTH:
        return tension_fill(img, hole)
    return harmonic_fill(img, hole)


def _from_coarser(img: np.ndarray, hole: np.ndarray,
                  fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The image with its hole taken from `fill` run at half size and upsampled: a start
    from which fine-level iterations only have to fix detail."""
    small, small_hole = _downscale(img, hole)
    t = torch.from_numpy(fill(small, small_hole)).permute(2, 0, 1)[None]
    up = F.interpolate(t, size=hole.shape, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    start = img.copy()
    start[hole] = up[hole]
    return start


def _hole_box(hole: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the hole's bounding box grown by `margin`, clipped to the image."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    return (max(0, rows[0] - margin), min(hole.shape[0], rows[-1] + margin + 1),
            max(0, cols[0] - margin), min(hole.shape[1], cols[-1] + margin + 1))


def _downscale(img: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half size: known pixels are averaged; a coarse pixel is hole if any fine pixel was."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    k = torch.from_numpy((~hole).astype(np.float32))[None, None]
    num = F.avg_pool2d(t * k, 2, ceil_mode=True)
    den = F.avg_pool2d(k, 2, ceil_mode=True)
    small = (num / den.clamp_min(1e-8))[0].permute(1, 2, 0).numpy()
    small_hole = (F.max_pool2d(torch.from_numpy(hole.astype(np.float32))[None, None], 2, ceil_mode=True)[0, 0] > 0).numpy()
    return np.ascontiguousarray(small), small_hole


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return mask.copy()
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (F.max_pool2d(t, 2 * r + 1, stride=1, padding=r)[0, 0] > 0).numpy()


def _depths(hole: np.ndarray) -> tuple[np.ndarray, int]:
    """Chessboard distance to the nearest known pixel, on a conservatively shrunk grid.

    A coarse pixel is hole if any of its pixels is, so the map costs a few dozen small
    max-pools even for a 4k hole. Returns (coarse depths in coarse pixels, factor).
    """
    factor = max(1, max(hole.shape) // 128)
    t = torch.from_numpy(hole.astype(np.float32))[None, None]
    if factor > 1:
        t = F.max_pool2d(t, factor, ceil_mode=True)
    known = 1 - t
    depth = torch.zeros_like(t)
    while float(known.min()) == 0:
        depth += 1 - known
        known = F.max_pool2d(known, 3, stride=1, padding=1)
    return depth[0, 0].numpy(), factor


def hole_extent(hole: np.ndarray, quantile: float = 0.75) -> tuple[int, float]:
    """(radius, depth) from one depth map: the largest distance (chessboard, pixels) from a
    hole pixel to a known pixel, and the distance that `quantile` of the hole pixels stay
    within. Unlike the radius the depth tells brush strokes from blobs: where wide strokes
    cross, a few pixels lie as deep as in a 64 px box, but most of the stroke stays shallow.
    """
    if hole.all():
        return max(hole.shape), float(max(hole.shape))
    if not hole.any():
        return 0, 0.0
    depth, factor = _depths(hole)
    return int(depth.max()) * factor, float(np.quantile(depth[depth > 0], quantile)) * factor


def share_within(hole: np.ndarray, distance: int) -> float:
    """Share of the hole's pixels within `distance` (chessboard, full-resolution pixels) of a
    known pixel: tells hairlines from narrow strokes, which the coarse depth map cannot."""
    n = int(hole.sum())
    if n == 0:
        return 1.0
    known = torch.from_numpy(~hole).float()[None, None]
    near = F.max_pool2d(known, 2 * distance + 1, stride=1, padding=distance)[0, 0].numpy() > 0
    return float((near & hole).sum()) / n


def hole_radius(hole: np.ndarray) -> int:
    """About the largest distance (chessboard, pixels) from a hole pixel to a known pixel."""
    return hole_extent(hole)[0]


def hole_depth(hole: np.ndarray, quantile: float = 0.9) -> float:
    """How deep most of the hole is: this quantile of its pixels' distance to a known pixel."""
    return hole_extent(hole, quantile)[1]
