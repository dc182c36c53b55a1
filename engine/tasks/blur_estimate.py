"""Blind blur estimate: Gaussian sigma, or motion length and angle.

Why this way, in two measurements:
- Edge widths (the re-blur idea of Zhuo and Sim, Pattern Recognition 2011): a step edge
  blurred by a Gaussian of sigma s and blurred again by a known s0 keeps a gradient ratio
  R = sqrt(s^2 + s0^2) / s at the edge, so s = s0 / sqrt(R^2 - 1). Lines and texture are
  not steps and read far too sharp (a thin line blurred by 1 px reads ~0.5 with s0 = 1 and
  ~0.15 with s0 = 3), so only the edges whose estimates from s0 = 1 and s0 = 3 agree (a
  true step gives the same answer at both) set the Gaussian sigma.
- The autocorrelation of the second derivative along each direction: a sharp image's own
  trough sits at a lag of 2-3 px in every direction. A Gaussian moves it out evenly (to
  about 2.5 sigma), while a linear motion of length L puts two opposite spikes L apart on
  every edge along the motion, so the trough jumps to lag L in that one direction only.
  The direction whose trough is both far out and deep is the motion, and its lag the
  length, when that lag is well beyond the least of all directions and the edges facing
  along it are wider than those across it (a Gaussian widens all edges alike).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..diffusion.operators import gaussian_kernel
from ..images import luma

REBLUR = (1.0, 3.0)  # the two known second blurs, in pixels; a step edge reads the same through both
AGREE = 1.25  # the two readings of a step edge agree within this ratio
MIN_EDGES = 40  # below this many edges (in all, or agreeing) a reading gives no vote
FACING = 11.25  # degrees either side of a direction: the edges whose normal faces that way
FEW_EDGES = 8  # fewer edges than this facing one way tell nothing of their width
SHARP = 0.6  # below this sigma an image (or an orientation's edges) counts as sharp
# The measurement itself blurs: the pre-smoothing and the central difference (a 2-pixel box,
# variance 1/4) add in quadrature to every edge's sigma, and are taken out again.
PRESMOOTH = 0.5  # pixels, on a clean image
NOISE_SMOOTH = 0.1  # more pre-smoothing per unit of noise sigma (0..255): 1 px at sigma 5
DIFF_VARIANCE = 0.25
MIN_LAG = 1.5  # shortest lag searched for the trough (the second derivative's own lobe is at 1)
MAX_LENGTH = 48  # longest motion the autocorrelation search looks for, in pixels
MIN_LENGTH = 4.0  # a trough nearer than this is the sharp image's own (or a Gaussian's)
TROUGH_WIDTH = 3.0  # pixels either side of the trough, across it, where its half-depth points are looked for
SMOOTH = 2  # half-width in degrees of the running median over the directions' trough lags
ANISOTROPY = 1.35  # trough lag along the motion / its least over all directions, above which it is motion
# edge width along the motion / across it, at least: a 5 px motion (a box of std 1.44 px) makes
# this 1.5 on edges up to 1.3 px wide of their own, while a Gaussian widens all ways alike
WIDENED = 1.5


@dataclass(frozen=True)
class BlurEstimate:
    """What the image says. `kind` is 'none', 'gaussian' or 'motion'."""

    kind: str
    sigma: float  # Gaussian sigma (for 'gaussian'; the isotropic edge width otherwise)
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
def estimate_blur(image: np.ndarray, ignore: np.ndarray | None = None, max_side: int = 768,
                  noise: float = 0.0) -> BlurEstimate:
    """Blur of an RGB image in [0, 255] (H, W, 3), from its central max_side square.

    `ignore`: optional (H, W) bool mask of pixels whose edges do not count (scratches and
    dust sit sharp on top of a blurred photo and would read as sharp). `noise`: the image's
    noise sigma (0..255) when known; the measurement smooths it away first."""
    img = np.asarray(image)[..., :3]
    h, w = img.shape[:2]
    y0, x0 = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    img = img[y0:y0 + max_side, x0:x0 + max_side]
    rgb = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    y = luma(rgb)
    if min(y.shape[-2:]) < 32:
        return BlurEstimate("none", 0.0)
    # a hair of smoothing keeps pixel noise and JPEG ringing from passing for sharp edges;
    # more on a noisy image, where the noise would otherwise fill every trough at short lags
    smooth = PRESMOOTH + NOISE_SMOOTH * max(noise, 0.0)
    y = _conv(y, gaussian_kernel(smooth))
    near = None
    if ignore is not None:
        near = torch.from_numpy(np.ascontiguousarray(ignore[y0:y0 + max_side, x0:x0 + max_side]).astype(np.float32))
    sig, steps, theta = _edge_widths(y, near, smooth * smooth + DIFF_VARIANCE)
    if len(sig) < MIN_EDGES:
        return BlurEstimate("none", 0.0, edges=len(sig))
    overall = float(np.median(sig))
    sigma = float(np.median(sig[steps])) if steps.sum() >= MIN_EDGES else overall
    angle, length, spread = _motion(y)
    # a motion widens the edges facing along it and leaves those across it as they were
    along, across = _width_along(sig, theta, angle), _width_along(sig, theta, angle + 90.0)
    if spread >= ANISOTROPY and length >= MIN_LENGTH and along >= max(SHARP, WIDENED * across):
        return BlurEstimate("motion", overall, length=length, angle=(angle + 90.0) % 180.0 - 90.0, edges=len(sig))
    # the step edges' sigma is also what an explicit deblur of a 'none' image runs with
    return BlurEstimate("none" if overall < SHARP else "gaussian", sigma, edges=len(sig))


def _edge_widths(y: torch.Tensor, near: torch.Tensor | None, own: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per strong edge point: its sigma through the first re-blur (less the measurement's
    own variance `own`), whether the two re-blurs agree (a step edge), and its normal's
    orientation in radians (0..pi)."""
    gx, gy = _gradients(y)
    m0 = torch.sqrt(gx * gx + gy * gy)[0, 0]
    # edge points: local maxima of the gradient along its direction, and strong
    ang = torch.atan2(-gy, gx)[0, 0]  # normal direction, counter-clockwise with y pointing down
    ox, oy = torch.cos(ang).round().long(), (-torch.sin(ang)).round().long()
    pad = F.pad(m0[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    hh, ww = m0.shape
    iy, ix = torch.meshgrid(torch.arange(hh), torch.arange(ww), indexing="ij")
    nms = (m0 >= pad[iy + 1 + oy, ix + 1 + ox]) & (m0 >= pad[iy + 1 - oy, ix + 1 - ox])
    border = torch.zeros_like(m0, dtype=torch.bool)
    border[8:-8, 8:-8] = True
    strong = m0 > max(0.02, float(torch.quantile(m0[border].flatten()[::7], 0.9)))
    edge = nms & strong & border
    if near is not None:
        edge &= F.max_pool2d(near[None, None], 9, stride=1, padding=4)[0, 0] == 0  # marks and their flanks
    reads = []
    for s0 in REBLUR:
        rx, ry = _gradients(_conv(y, gaussian_kernel(s0)))
        ratio = m0[edge] / torch.sqrt(rx * rx + ry * ry)[0, 0][edge].clamp_min(1e-6)
        s = s0 / torch.sqrt((ratio * ratio - 1).clamp_min(1e-3))
        reads.append(torch.sqrt((s * s - own).clamp_min(0.0)).clamp(max=12.0).numpy())
    first, second = reads
    steps = (first > 0) & (second > first / AGREE) & (second < first * AGREE)
    return first, steps, torch.remainder(ang[edge], math.pi).numpy()


def _width_along(sig: np.ndarray, theta: np.ndarray, angle: float) -> float:
    """Median width of the edges whose normal runs along `angle` (degrees), within FACING.
    Infinite when hardly any strong edge faces that way (a long motion weakens the
    edges it widens until they drop out of the strong ones)."""
    off = np.abs((np.degrees(theta) - angle + 90.0) % 180.0 - 90.0)
    s = sig[off <= FACING]
    return float(np.median(s)) if len(s) >= FEW_EDGES else math.inf


def _motion(y: torch.Tensor) -> tuple[float, float, float]:
    """(angle, length, spread) of the motion's trough in the autocorrelation of the second
    directional derivative. For every direction (1 degree apart): the lag of its deepest
    trough in MIN_LAG..MAX_LENGTH (sub-sample by a parabola) and that trough's depth; the
    direction where lag x depth is largest gives the angle and the length, and `spread` is
    that lag over the least lag of all directions (near 1 for a Gaussian or a sharp image).

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
    step = 0.5
    angles = torch.arange(0.0, 180.0, 1.0)
    lags = torch.arange(MIN_LAG - step, min(MAX_LENGTH, min(hh, ww) / 2) + step / 2, step)
    ca, sa = torch.cos(torch.deg2rad(angles)), -torch.sin(torch.deg2rad(angles))
    px, py = lags[None, :] * ca[:, None], lags[None, :] * sa[:, None]  # (A, L) offsets
    grid = torch.stack([(ww + px) / (size[1] - 1) * 2 - 1, (hh + py) / (size[0] - 1) * 2 - 1], dim=-1)
    vals = F.grid_sample(corr, grid[None].float(), mode="bilinear", align_corners=True)[0]  # (6, A, L)
    c2, s2, cs = (ca * ca)[:, None], (sa * sa)[:, None], (ca * sa)[:, None]
    w = [c2 * c2, 4 * cs * cs, s2 * s2, 4 * c2 * cs, 2 * c2 * s2, 4 * cs * s2]  # weights of the six pairs
    ac = sum(wk * v for wk, v in zip(w, vals)).numpy()  # (A, L); the first lag only bounds the parabola
    i = 1 + np.argmin(ac[:, 1:-1], axis=1)
    a_idx = np.arange(len(angles))
    lo, mid, hi = ac[a_idx, i - 1], ac[a_idx, i], ac[a_idx, i + 1]
    curv = lo - 2 * mid + hi
    shift = np.where(curv > 1e-12, 0.5 * (lo - hi) / np.maximum(curv, 1e-12), 0.0).clip(-0.5, 0.5)
    zero = sum(wk[:, 0] * z for wk, z in zip(w, corr[0, :, hh, ww])).numpy()
    # a motion's trough holds over neighbouring directions (about +-1.5 / L radians); a lone
    # far trough from the image's own texture does not: running medians over 5 degrees
    lag = _running_median(lags.numpy()[i] + step * shift)
    depth = _running_median(-mid / np.maximum(zero, 1e-12))  # 0..1, about 0.5 for a motion's trough
    # the motion's direction has its trough both far out and deep (a texture's far troughs are
    # shallow, the near troughs of the other directions are deep)
    score = np.where(lag >= MIN_LENGTH, lag * depth, 0.0)
    k = int(np.argmax(score))
    # the trough at that lag, round the circle, is symmetric about the motion, while the
    # image's own structure skews the scores: the middle of its half-depth points is the angle
    reach = max(SMOOTH, int(math.degrees(TROUGH_WIDTH / lag[k])))  # how far round the circle it reaches
    angle = _centre(-ac[:, int(np.argmin(np.abs(lags.numpy() - lag[k])))] / np.maximum(zero, 1e-12), k, reach)
    return angle, float(lag[k]), float(lag[k]) / max(float(lag.min()), 1e-6)


def _centre(v: np.ndarray, k: int, reach: int) -> float:
    """The middle, in degrees, of the peak of v (one value a degree round the half circle)
    around index k, between the points either side where it falls to half its height, looked
    for no more than `reach` degrees away."""
    n = len(v)
    half = v[k] / 2
    left = right = 0
    while left < reach and v[(k - left - 1) % n] > half:
        left += 1
    while right < reach and v[(k + right + 1) % n] > half:
        right += 1
    # interpolate each crossing between the last point above half and the first below
    lo, hi = left + _crossing(v[(k - left) % n], v[(k - left - 1) % n], half), \
        right + _crossing(v[(k + right) % n], v[(k + right + 1) % n], half)
    return float((k + (hi - lo) / 2) % n)


def _crossing(a: float, b: float, level: float) -> float:
    """Where between two neighbours (0 at a, 1 at b) the values cross `level`; 0 when they do not."""
    return float(np.clip((a - level) / (a - b), 0.0, 1.0)) if a > level > b else 0.0


def _running_median(v: np.ndarray) -> np.ndarray:
    """Median over SMOOTH directions either side, round the half circle."""
    return np.median(np.stack([np.roll(v, k) for k in range(-SMOOTH, SMOOTH + 1)]), axis=0)
