"""Classical hole filling (no model needed): harmonic and smooth fills, and multi-scale
PatchMatch with patch voting.

They serve the `patch` method of `inpaint` (fast, model-free, copies real texture from the
image), the pre-fill that diffusion starts from, and the trainer, which shows the network
the same harmonic fills it will be asked to refine. They sit below both ops and training.

The algorithm follows Wexler et al. 2007 (space-time completion) with the randomized
nearest-neighbour search of Barnes et al. 2009 (PatchMatch), vectorised with numpy:
coarse to fine, each level alternates (1) PatchMatch propagation and random search for the
best fully-known source patch of every patch touching the hole and (2) voting, where each
hole pixel becomes the similarity-weighted mean of the pixels those patches propose.
Patch distances are computed on a fixed low-frequency (DCT, opponent colour) projection of
the patches, one convolution per iteration, which keeps a 512 x 512 hole to a few seconds
on a laptop CPU.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .numerics import conjugate_gradient

PATCH = 7
Progress = Callable[[int, int], None] | None


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


OPPONENT = np.array([[1, 1, 1], [1, -1, 0], [1, 1, -2]], np.float32) / np.array([[3 ** 0.5], [2 ** 0.5], [6 ** 0.5]], np.float32)
REACH = (3, 1, 1)  # DCT functions with u + v <= reach, per opponent channel (luma, red-green, yellow-blue)


@lru_cache(maxsize=4)
def dct_filters(p: int) -> torch.Tensor:
    """Orthonormal 1-D DCT-II filters of length p, (p, p), row k = frequency k."""
    n = np.arange(p)
    rows = [np.cos(np.pi * (n + 0.5) * k / p) * (np.sqrt(1 / p) if k == 0 else np.sqrt(2 / p)) for k in range(p)]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


@lru_cache(maxsize=4)
def patch_basis(p: int) -> torch.Tensor:
    """Orthonormal low-frequency basis of p x p RGB patches, as (dims, 3, p, p) kernels.

    2-D DCT functions in an opponent colour space: luma keeps u + v <= 3, each chroma
    channel u + v <= 1. Natural-image patch PCA looks much like this, and a fixed basis
    needs no per-image eigendecomposition. Orthonormal, so feature distances are
    projections of the true patch distances.
    """
    dct = dct_filters(p)
    kernels = []
    for c, reach in enumerate(REACH):
        colour = torch.from_numpy(OPPONENT[c])[:, None, None]
        for u in range(reach + 1):
            for v in range(reach + 1 - u):
                kernels.append(colour * torch.outer(dct[u], dct[v])[None])
    return torch.stack(kernels).contiguous()


def patch_features(img: torch.Tensor, p: int) -> torch.Tensor:
    """Basis coefficients of the p x p patch around every pixel of (1, 3, h, w): (dims, h, w).

    One dense convolution (faster on CPU than the separable form with one-channel convs);
    zero padding outside the image.
    """
    return F.conv2d(img, patch_basis(p), padding=p // 2)[0]


class _Level:
    """One pyramid level: patch features, valid sources, the target set and its nearest-neighbour field."""

    def __init__(self, img: np.ndarray, hole: np.ndarray, patch: int, rng: np.random.Generator):
        self.img, self.hole, self.p, self.r, self.rng = img, hole, patch, patch // 2, rng
        h, w = hole.shape
        self.h, self.w = h, w
        r = self.r
        valid = ~_dilate(hole, r)
        valid[:r], valid[h - r:], valid[:, :r], valid[:, w - r:] = False, False, False, False
        self.valid = valid
        self.valid_idx = np.flatnonzero(valid.ravel())
        self.target = _dilate(hole, r)
        self.ty, self.tx = np.nonzero(self.target)
        self.src_feat = np.empty((0, 0), np.float32)
        self.tgt_feat = np.empty((0, 0), np.float32)

    # -- features ------------------------------------------------------------------------
    def _patches(self, img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        r = self.r
        padded = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect" if min(self.h, self.w) > r else "edge")
        view = np.lib.stride_tricks.sliding_window_view(padded, (self.p, self.p), axis=(0, 1))
        return view[ys, xs].reshape(len(ys), -1)

    def feature_map(self, img: np.ndarray, y0: int = 0, y1: int | None = None, x0: int = 0,
                    x1: int | None = None) -> np.ndarray:
        """Basis coefficients of the patch around every pixel of [y0:y1, x0:x1], (n, dims).

        One convolution; outside the image the patch is zero-padded, which only touches
        targets at the border (sources are at least r pixels inside by construction).
        """
        r, h, w = self.r, self.h, self.w
        y1, x1 = h if y1 is None else y1, w if x1 is None else x1
        cy0, cy1, cx0, cx1 = max(0, y0 - r), min(h, y1 + r), max(0, x0 - r), min(w, x1 + r)
        t = torch.from_numpy(np.ascontiguousarray(img[cy0:cy1, cx0:cx1])).permute(2, 0, 1)[None]
        out = patch_features(t, self.p)[:, y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
        return np.ascontiguousarray(out.reshape(out.shape[0], -1).T.numpy())

    def prepare_sources(self) -> None:
        """The fixed features of the known (source) patches; invalid sources get far-away values."""
        self.src_feat = self.feature_map(self.img)
        self.src_feat[~self.valid.ravel()] = 1e3

    def target_features(self) -> None:
        y0, y1, x0, x1 = self.ty.min(), self.ty.max() + 1, self.tx.min(), self.tx.max() + 1
        fmap = self.feature_map(self.img, y0, y1, x0, x1)
        self.tgt_feat = fmap[(self.ty - y0) * (x1 - x0) + (self.tx - x0)]

    # -- nearest-neighbour field -----------------------------------------------------------
    def init_field(self, coarse: tuple[np.ndarray, np.ndarray] | None) -> None:
        n = len(self.ty)
        if coarse is not None:
            cy, cx = coarse
            sy = np.clip(cy[self.ty // 2, self.tx // 2] * 2 + self.ty % 2, 0, self.h - 1)
            sx = np.clip(cx[self.ty // 2, self.tx // 2] * 2 + self.tx % 2, 0, self.w - 1)
            idx = sy * self.w + sx
            bad = ~self.valid.ravel()[idx]
            idx[bad] = self.valid_idx[self.rng.integers(0, len(self.valid_idx), int(bad.sum()))]
        else:
            idx = self.valid_idx[self.rng.integers(0, len(self.valid_idx), n)]
        self.idx = idx.astype(np.int64)
        self.dist = np.full(n, np.inf, np.float32)
        grid = np.arange(self.h * self.w, dtype=np.int64).reshape(self.h, self.w)
        self.grid = grid  # source index per pixel; identity off the target set
        self.grid[self.ty, self.tx] = self.idx

    def _try(self, cand: np.ndarray, ok: np.ndarray) -> None:
        ok = ok & self.valid.ravel()[np.where(ok, cand, 0)]
        if not ok.any():
            return
        sel = np.flatnonzero(ok)
        d = ((self.tgt_feat[sel] - self.src_feat[cand[sel]]) ** 2).sum(axis=1)
        better = d < self.dist[sel]
        sel = sel[better]
        self.idx[sel] = cand[sel]
        self.dist[sel] = d[better]

    def patchmatch(self, iterations: int) -> None:
        ty, tx, h, w = self.ty, self.tx, self.h, self.w
        self.dist = ((self.tgt_feat - self.src_feat[self.idx]) ** 2).sum(axis=1)
        for it in range(iterations):
            jumps = [8, 4, 2, 1] if it % 2 == 0 else [1, 2, 4, 8]
            for j in jumps:
                for dy, dx in ((0, j), (0, -j), (j, 0), (-j, 0)):
                    qy, qx = ty + dy, tx + dx
                    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
                    q = self.grid[np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1)]
                    sy, sx = q // w - dy, q % w - dx
                    ok = inside & (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
                    self._try(np.clip(sy, 0, h - 1) * w + np.clip(sx, 0, w - 1), ok)
                self.grid[ty, tx] = self.idx
            radius = max(h, w) // 2
            while radius >= 1:
                sy, sx = self.idx // w, self.idx % w
                ny = sy + self.rng.integers(-radius, radius + 1, len(sy))
                nx = sx + self.rng.integers(-radius, radius + 1, len(sx))
                ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
                self._try(np.clip(ny, 0, h - 1) * w + np.clip(nx, 0, w - 1), ok)
                radius //= 2
            self.grid[ty, tx] = self.idx

    def vote(self) -> None:
        """Every hole pixel := weighted mean of what the overlapping patches' sources say."""
        h, w, r = self.h, self.w, self.r
        sigma2 = float(np.percentile(self.dist, 75)) + 1e-6
        wt = np.exp(-self.dist / (2 * sigma2)).astype(np.float32)
        acc = np.zeros((h, w, 3), np.float32)
        wsum = np.zeros((h, w), np.float32)
        sy, sx = self.idx // w, self.idx % w
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                py, px = self.ty + oy, self.tx + ox
                ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
                ok &= self.hole[np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)]
                if not ok.any():
                    continue
                py, px, ww = py[ok], px[ok], wt[ok]
                vals = self.img[sy[ok] + oy, sx[ok] + ox]
                acc[py, px] += vals * ww[:, None]
                wsum[py, px] += ww
        filled = wsum > 0
        upd = self.hole & filled
        self.img[upd] = acc[upd] / wsum[upd][:, None]


def patch_fill(img: np.ndarray, hole: np.ndarray, seed: int = 0, patch: int = PATCH,
               progress: Progress = None) -> np.ndarray:
    """Fill `hole` (h, w bool) of `img` (h, w, 3 float32 in [0, 1]); known pixels stay exact."""
    img = np.ascontiguousarray(img[..., :3], dtype=np.float32)
    hole = np.asarray(hole, bool)
    if not hole.any():
        return img.copy()
    if hole.all():
        return np.full_like(img, 0.5)
    rng = np.random.default_rng(seed)
    r = patch // 2
    # Coarse to fine: go down until the hole is a few patches across (or the image is small).
    pyramid = [(img, hole)]
    radius = hole_radius(hole)
    while radius > 2 * r and min(pyramid[-1][1].shape) >= 4 * patch:
        pyramid.append(_downscale(*pyramid[-1]))
        radius = (radius + 1) // 2
    n_levels = len(pyramid)
    total = sum(max(2, 6 - i) for i in range(n_levels))
    done = 0
    cur = smooth_fill(*pyramid[-1])
    coarse_field = None
    for level in range(n_levels - 1, -1, -1):
        base, lhole = pyramid[level]
        if level < n_levels - 1:
            t = torch.from_numpy(cur).permute(2, 0, 1)[None]
            up = F.interpolate(t, size=lhole.shape, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
            cur = base.copy()
            cur[lhole] = up[lhole]
        lv = _Level(cur.copy(), lhole, patch, rng)
        em = max(2, 6 - (n_levels - 1 - level))
        if len(lv.valid_idx) == 0:
            cur = smooth_fill(base, lhole)
            coarse_field = None
            done += em
            continue
        lv.prepare_sources()
        lv.init_field(coarse_field)
        for it in range(em):
            lv.target_features()
            lv.patchmatch(2 if it == 0 else 1)
            lv.vote()
            done += 1
            if progress is not None:
                progress(done, total)
        cur = lv.img
        gy, gx = np.divmod(lv.grid, lv.w)
        coarse_field = (gy, gx)
    out = img.copy()
    out[hole] = cur[hole]
    return out
