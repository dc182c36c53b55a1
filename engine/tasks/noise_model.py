"""Real-world noise: clipped 8-bit files and signal-dependent (Poisson-Gaussian) noise.

The built-in denoiser is trained on additive white Gaussian noise. Real files differ in two
ways, both handled here by modelling rather than by another network:

- Signal dependence (a camera's photon noise): z = a * Poisson(y / a) + N(0, sigma^2), so
  var(z | y) = a * y + sigma^2 (the Poisson-Gaussian model of Foi et al., "Practical
  Poissonian-Gaussian noise modeling and fitting for single-image raw-data", IEEE TIP 2008).
  The generalized Anscombe transform (GAT) f(z) = 2/a * sqrt(a z + 3/8 a^2 + sigma^2) makes
  that noise nearly unit-variance Gaussian; the denoiser runs on f(z) at sigma 1.
- Clipping: a saved file holds clip(z, 0, 255), whose mean is not y near black and white,
  so a denoiser returns E[clip(z)] there, not y (Foi, "Clipped noisy images:
  heteroskedastic modeling and practical denoising", Signal Processing 2009).

Both are undone by one exact unbiased inverse (Makitalo and Foi, "Optimal inversion of the
generalized Anscombe transformation for Poisson-Gaussian noise", IEEE TIP 2013), computed
numerically: T(y) = E[f(clip(z)) | y] over a grid of clean levels y, and the denoised value D
is mapped to T^-1(D). With a = 0 and no clipping f is affine and nothing changes; with a = 0
and clipping, T^-1 is exactly Foi's clipped-mean correction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

WHITE = 255.0
_GRID = 769  # clean levels the inverse is tabulated on (one third of a level apart)
_NODES = 241  # Gaussian quadrature points (uniform in +-6 sd: robust to the clipping kinks)
_MAX_COUNT = 400.0  # above this mean photon count the Poisson part is treated as Gaussian
# The denoiser sees the stabilised image shrunk about mid-grey to this share of the range (sigma
# likewise): clipped areas pile up at exactly black or white, where the network, trained on
# images that end there, keeps a faint speckle that the steep inverse near the ends magnifies.
# First three CBSD68 images, clipped Poisson-Gaussian of bench/realnoise.py, mean RGB PSNR, with
# the refine pass below: range 1.0 -> 32.37, 0.85 -> 32.42, 0.7 -> 32.40 dB (CBM3D 32.54).
DENOISER_RANGE = 0.85
# ... and is then denoised once more at this fraction of its sigma, which removes the speckle
# left on flat areas (same images at range 0.85: one pass 32.35, 0.1 -> 32.42 dB; at range 1.0
# on the two with sky: 0.1 and 0.15 best, 0.2 no better than one pass, 0.35 and 0.5 worse).
REFINE_SIGMA = 0.1
# ... and its first pass is the mean of this many calls on the image and its mirrors (transposed,
# then flipped: mirrored_mean), whose errors partly cancel. First ten CBSD68 images, clipped
# Poisson-Gaussian, noise given, mean RGB PSNR (CBM3D inside the same GAT and inverse 32.98):
# 1 -> 32.96, 2 (+ transposed) -> 33.01, 2 (+ flipped) -> 33.00, 4 (flips) -> 33.03 dB. Cost: the
# 8-bit path goes from 2 to 3 network calls.
MIRRORS = 2


@dataclass(frozen=True)
class NoiseModel:
    """var(z | y) = gain * y + sigma^2 on the 0..255 scale; `clipped`: the file holds 0..255 only."""

    sigma: float
    gain: float = 0.0
    clipped: bool = False

    @property
    def plain(self) -> bool:
        """Additive, unclipped Gaussian noise: the denoiser's own model, no transform needed."""
        return self.gain <= 0.0 and not self.clipped

    def forward(self, z: np.ndarray | torch.Tensor):
        """f(z): the GAT (or z / sigma without gain); noise becomes about unit-variance."""
        s2 = max(self.sigma, 1e-3) ** 2
        if self.gain <= 0.0:
            return z / math.sqrt(s2)
        a = self.gain
        arg = a * z + 0.375 * a * a + s2
        if isinstance(arg, torch.Tensor):
            return (2.0 / a) * arg.clamp_min(0.0).sqrt()
        return (2.0 / a) * np.sqrt(np.maximum(arg, 0.0))

    def scale(self) -> float:
        """The factor that puts f(0..255) back on about the 0..255 range: the denoiser then sees
        an ordinary-looking image with Gaussian noise of this sigma (0..255 units)."""
        return WHITE / float(self.forward(np.float64(WHITE)) - self.forward(np.float64(0.0))) \
            if self.gain > 0.0 else max(self.sigma, 1e-3)

    def expected(self, y: np.ndarray) -> np.ndarray:
        """T(y) = E[f(clip(z)) | y] for clean levels y (0..255), by quadrature."""
        y = np.asarray(y, dtype=np.float64)
        t = np.linspace(-6.0, 6.0, _NODES)
        w = np.exp(-0.5 * t * t)
        w /= w.sum()
        a, s = self.gain, max(self.sigma, 1e-3)
        out = np.empty_like(y)
        counts = y / a if a > 0 else np.full_like(y, np.inf)
        gauss = counts > _MAX_COUNT
        if gauss.any():  # Gaussian part (and Poisson in its Gaussian limit)
            sd = np.sqrt(s * s + a * y[gauss])
            z = y[gauss, None] + sd[:, None] * t[None, :]
            out[gauss] = (self._f_clip(z) * w).sum(axis=1)
        low = np.flatnonzero(~gauss)
        if len(low):  # low counts: the exact Poisson sum, E[f | k] once per count k
            lam = counts[low]
            k = np.arange(0, int(lam.max() + 10 * math.sqrt(lam.max()) + 12), dtype=np.float64)
            e_k = (self._f_clip(a * k[:, None] + s * t[None, :]) * w).sum(axis=1)
            logp = k[None, :] * np.log(np.maximum(lam, 1e-300))[:, None] - lam[:, None] \
                - torch.lgamma(torch.from_numpy(k + 1)).numpy()[None, :]
            p = np.where(lam[:, None] > 0, np.exp(logp), (k[None, :] == 0).astype(np.float64))
            out[low] = p @ e_k
        return out

    def _f_clip(self, z: np.ndarray) -> np.ndarray:
        return self.forward(np.clip(z, 0.0, WHITE) if self.clipped else z)

    def inverse_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(T(y), y) on the grid, T increasing: np.interp(D, *table) is the unbiased inverse."""
        y = np.linspace(0.0, WHITE, _GRID)
        ty = self.expected(y)
        return np.maximum.accumulate(ty), y  # monotone against rounding at the flat ends


def in_range(rgb: np.ndarray) -> bool:
    """Whether an image (0..1 floats) stays inside the file range, as saved files do: their
    noise was clipped. A float image that leaves it carries unclipped noise."""
    return bool(rgb.min() >= 0.0 and rgb.max() <= 1.0)


def stabilise(z255: torch.Tensor, model: NoiseModel) -> tuple[torch.Tensor, float]:
    """z (0..255) -> (s * (f(z) - f(0)), s): an image on about 0..255 (black stays at 0) with
    Gaussian noise of sigma s, what the denoiser was trained on."""
    s = model.scale()
    zz = z255.clamp(0.0, WHITE) if model.clipped else z255
    return (model.forward(zz) - model.forward(np.float64(0.0))) * s, s


def mirrored_mean(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor, n: int = MIRRORS) -> torch.Tensor:
    """The mean of fn over the first n of: x, its transpose, x flipped left-right, flipped
    upside down (each output mirrored back): a self-ensemble of a denoiser fn(x, sigma)."""
    ops = ((lambda t: t, lambda t: t), (lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2)),
           (lambda t: t.flip(-1), lambda t: t.flip(-1)), (lambda t: t.flip(-2), lambda t: t.flip(-2)))
    outs = [back(fn(there(x), sigma)) for there, back in ops[:max(1, min(n, len(ops)))]]
    return torch.stack(outs).mean(0)


def squeeze(z255: torch.Tensor, sigma255: float) -> tuple[torch.Tensor, float]:
    """A stabilised image and its sigma shrunk to DENOISER_RANGE about mid-grey."""
    c = DENOISER_RANGE
    return c * z255 + (1.0 - c) * WHITE / 2.0, c * sigma255


def unsqueeze(d255: torch.Tensor) -> torch.Tensor:
    """The inverse of squeeze."""
    c = DENOISER_RANGE
    return (d255 - (1.0 - c) * WHITE / 2.0) / c


def unstabilise(d: torch.Tensor, model: NoiseModel) -> torch.Tensor:
    """The denoised stabilised image back to clean levels 0..255 through T^-1."""
    if model.plain:
        return d
    s = model.scale()
    ty, y = model.inverse_table()
    v = (d / s).detach().cpu().double().numpy() + float(model.forward(np.float64(0.0)))
    lo, hi = ty[0], ty[-1]
    x = np.interp(v, ty, y)
    if not model.clipped:  # unclipped: extend the inverse linearly beyond the table
        slope_lo = (y[1] - y[0]) / max(ty[1] - ty[0], 1e-12)
        slope_hi = (y[-1] - y[-2]) / max(ty[-1] - ty[-2], 1e-12)
        x = np.where(v < lo, y[0] + (v - lo) * slope_lo, x)
        x = np.where(v > hi, y[-1] + (v - hi) * slope_hi, x)
    return torch.from_numpy(x).to(d.dtype).to(d.device)
