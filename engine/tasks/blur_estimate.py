"""Blind blur estimate: Gaussian sigma, or motion length and angle, from the edges.

Why this way: a step edge blurred by a Gaussian of sigma s and blurred again by a known
sigma s0 keeps a gradient ratio R = sqrt(s^2 + s0^2) / s at the edge (the re-blur idea of
Zhuo and Sim, Pattern Recognition 2011), so s = s0 / sqrt(R^2 - 1) at every strong edge
point. Real edges are not all ideal steps (lines, texture), so the sharpest edges speak for
the image: a low percentile of the per-edge estimates. Measured per edge orientation, the
same estimate separates isotropic defocus from motion: a motion blur widens only the edges
whose normal runs along the motion, as a box of the motion's length (std length/sqrt(12)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..diffusion.operators import gaussian_kernel
from ..images import luma

REBLUR = 2.0  # the known second blur, in pixels
BINS = 8  # edge-normal orientations, 22.5 degrees apart
PERCENTILE = 50  # the median edge
MIN_EDGES = 40  # per orientation, below which it gives no vote
SHARP = 0.6  # below this sigma an image counts as sharp (a pixel-sharp edge reads ~0.3-0.5)
# The measurement itself blurs: the 0.5-pixel pre-smoothing and the central difference (a
# 2-pixel box, variance 1/4) add in quadrature to every edge's sigma, and are taken out again.
OWN_VARIANCE = 0.5 ** 2 + 0.25
ANISOTROPY = 2.2  # width along the motion / across it, above which the blur is motion
TROUGH_ANISOTROPY = 0.6  # trough across / along the motion below which it is motion (Gaussian: 0.75-0.95)
MAX_LENGTH = 48  # longest motion the autocorrelation search looks for, in pixels


@dataclass(frozen=True)
class BlurEstimate:
    """What the edges say. `kind` is 'none', 'gaussian' or 'motion'."""

    kind: str
    sigma: float  # Gaussian sigma (for 'gaussian'; the isotropic width otherwise)
    length: float = 0.0  # motion length in pixels ('motion')
    angle: float = 0.0  # motion direction in degrees, 0 = horizontal, counter-clockwise
    edges: int = 0

    def params(self) -> dict:
        """The restore parameters that describe this blur."""
        if self.kind == "gaussian":
            return {"blur_sigma": round(self.sigma, 2)}
        if self.kind == "motion":
            return {"motion_length": round(self.length, 1), "motion_angle": round(self.angle, 1)}
        return {}


def _conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    p = k.shape[-1] // 2
    return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), k[None, None])


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gx = F.pad(x[..., :, 2:] - x[..., :, :-2], (1, 1, 0, 0), mode="replicate") / 2
    gy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1), mode="replicate") / 2
    return gx, gy


@torch.no_grad()
def estimate_blur(image: np.ndarray, ignore: np.ndarray | None = None, max_side: int = 768) -> BlurEstimate:
    """Blur of an RGB image in [0, 255] (H, W, 3), from its central max_side square.

    `ignore`: optional (H, W) bool mask of pixels whose edges do not count (scratches and
    dust sit sharp on top of a blurred photo and would read as sharp)."""
    img = np.asarray(image)[..., :3]
    h, w = img.shape[:2]
    y0, x0 = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    img = img[y0:y0 + max_side, x0:x0 + max_side]
    rgb = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    y = luma(rgb)
    if min(y.shape[-2:]) < 32:
        return BlurEstimate("none", 0.0)
    # a hair of smoothing keeps pixel noise and JPEG ringing from passing for sharp edges
    y = _conv(y, gaussian_kernel(0.5))
    gx, gy = _gradients(y)
    mag = torch.sqrt(gx * gx + gy * gy)
    rx, ry = _gradients(_conv(y, gaussian_kernel(REBLUR)))
    rmag = torch.sqrt(rx * rx + ry * ry)
    # edge points: local maxima of the gradient along its direction, and strong
    ang = torch.atan2(-gy, gx)  # normal direction, counter-clockwise with y pointing down
    ox, oy = torch.cos(ang).round().long(), (-torch.sin(ang)).round().long()
    pad = F.pad(mag, (1, 1, 1, 1), mode="replicate")[0, 0]
    hh, ww = mag.shape[-2:]
    iy, ix = torch.meshgrid(torch.arange(hh), torch.arange(ww), indexing="ij")
    m0 = mag[0, 0]
    nms = (m0 >= pad[iy + 1 + oy[0, 0], ix + 1 + ox[0, 0]]) & (m0 >= pad[iy + 1 - oy[0, 0], ix + 1 - ox[0, 0]])
    border = torch.zeros_like(m0, dtype=torch.bool)
    border[8:-8, 8:-8] = True
    strong = m0 > max(0.02, float(torch.quantile(m0[border].flatten()[::7], 0.9)))
    edge = nms & strong & border
    if ignore is not None:
        near = torch.from_numpy(np.ascontiguousarray(ignore[y0:y0 + max_side, x0:x0 + max_side]).astype(np.float32))
        edge &= F.max_pool2d(near[None, None], 9, stride=1, padding=4)[0, 0] == 0  # marks and their flanks
    ratio = m0[edge] / rmag[0, 0][edge].clamp_min(1e-6)
    sig = REBLUR / torch.sqrt((ratio * ratio - 1).clamp_min(1e-3))
    sig = torch.sqrt((sig * sig - OWN_VARIANCE).clamp_min(0.0)).clamp(max=12.0)
    theta = torch.remainder(ang[0, 0][edge], math.pi)  # normal orientation, 0..pi
    if len(sig) < MIN_EDGES:
        return BlurEstimate("none", 0.0, edges=int(len(sig)))
    overall = float(np.percentile(sig.numpy(), PERCENTILE))
    bins = torch.remainder(torch.round(theta / (math.pi / BINS)), BINS).long()
    width = np.full(BINS, np.nan)
    for b in range(BINS):
        s = sig[bins == b]
        if len(s) >= MIN_EDGES:
            width[b] = float(np.percentile(s.numpy(), PERCENTILE))
    b_max = int(np.nanargmax(width)) if np.isfinite(width).any() else 0
    across = width[(b_max + BINS // 2) % BINS]
    anisotropic = bool(np.isfinite(across) and width[b_max] >= 1.2
                       and width[b_max] > ANISOTROPY * max(across, 0.3))
    if not anisotropic and overall < SHARP:
        return BlurEstimate("none", overall, edges=int(len(sig)))
    angle, length, depth, depth_across = _motion_refine(y)
    # Edges of a few orientations only (a motion oblique to all of them widens every edge)
    # can hide the motion from the widths; the trough's direction still shows it.
    if anisotropic or depth_across > TROUGH_ANISOTROPY * depth:
        angle = (angle + 90.0) % 180.0 - 90.0
        return BlurEstimate("motion", overall, length=length, angle=angle, edges=int(len(sig)))
    return BlurEstimate("gaussian", overall, edges=int(len(sig)))


def _motion_refine(y: torch.Tensor) -> tuple[float, float, float, float]:
    """(angle, length, depth, depth across) of the deepest autocorrelation trough of the
    second directional derivative over all directions (1 degree apart) and lags
    3..MAX_LENGTH (shorter lags hold the sharp image's own trough); `depth across` is the
    deepest trough at right angles to it.

    The second derivative along (c, s) is c^2 gxx + 2cs gxy + s^2 gyy, so its autocorrelation
    is a fixed combination of the six cross-correlations of gxx, gxy, gyy: six inverse FFTs
    serve every direction."""
    gx, gy = _gradients(y)
    gxx, gxy = _gradients(gx)
    _, gyy = _gradients(gy)
    hh, ww = y.shape[-2:]
    size = (2 * hh, 2 * ww)  # zero-padded: no wrap-around
    specs = [torch.fft.rfft2((g - g.mean())[0, 0], s=size) for g in (gxx, gxy, gyy)]
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    corr = torch.stack([torch.fft.fftshift(torch.fft.irfft2(specs[i] * specs[j].conj(), s=size))
                        for i, j in pairs])[None]  # (1, 6, 2h, 2w), zero lag at (h, w)
    angles = torch.arange(0.0, 180.0, 1.0)
    lags = torch.arange(3.0, MAX_LENGTH + 0.25, 0.5)
    ca, sa = torch.cos(torch.deg2rad(angles)), -torch.sin(torch.deg2rad(angles))
    px, py = lags[None, :] * ca[:, None], lags[None, :] * sa[:, None]  # (A, L) offsets
    grid = torch.stack([(ww + px) / (size[1] - 1) * 2 - 1, (hh + py) / (size[0] - 1) * 2 - 1], dim=-1)
    vals = F.grid_sample(corr, grid[None].float(), mode="bilinear", align_corners=True)[0]  # (6, A, L)
    c2, s2, cs = (ca * ca)[:, None], (sa * sa)[:, None], (ca * sa)[:, None]
    w = [c2 * c2, 4 * cs * cs, s2 * s2, 4 * c2 * cs, 2 * c2 * s2, 4 * cs * s2]  # weights of the six pairs
    zero = corr[0, :, hh, ww]
    ac = sum(wk * v for wk, v in zip(w, vals))
    ac0 = sum(wk[:, 0] * z for wk, z in zip(w, zero))
    ac = ac / ac0[:, None].clamp_min(1e-12)
    k = int(torch.argmin(ac))
    a, i = k // len(lags), k % len(lags)
    across = ac[(a + len(angles) // 2) % len(angles)].min()
    return float(angles[a]), float(lags[i]), float(ac[a, i]), float(across)
