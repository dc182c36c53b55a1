"""Blind estimates of an image's degradation: noise level (function) and JPEG quality.

`restore` with task=auto (or sigma/quality left null) uses these so that an artist does
not have to guess numbers. Both work on RGB arrays in [0, 255] (any float or int dtype).

- Noise: the eigenvalue method of Chen, Zhu and Heng (ICCV 2015). Patch covariance
  eigenvalues split into a signal part and a noise part; the noise eigenvalues are the
  tail whose mean equals its median, and that mean is sigma^2. Texture barely biases it,
  unlike a wavelet MAD. The same estimate per intensity bin gives the noise-level function
  var(y) = gain * y + sigma^2 of signal-dependent (camera) noise.
- JPEG: decoded luma DCT coefficients sit on multiples of the quantisation step of their
  frequency. The largest step that explains the non-zero coefficients is measured per
  frequency, and the IJG quality whose scaled table fits those steps best is the answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

# The IJG (libjpeg, PIL) base luminance quantisation table, row-major (Annex K of T.81).
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64).reshape(8, 8)


def ijg_table(quality: int, base: np.ndarray = IJG_LUMA) -> np.ndarray:
    """The quantisation table libjpeg writes for `quality` (1..100), baseline-clamped."""
    q = int(min(max(quality, 1), 100))
    scale = 5000 // q if q < 50 else 200 - 2 * q  # integer arithmetic, as libjpeg
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


def _as_rgb(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """float64 RGB; a large image is cut to its central max_side square, keeping the
    8x8 grid phase (the crop starts on a multiple of 8) so JPEG offsets stay valid."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 4:
        img = img[..., :3]
    h, w = img.shape[:2]
    y0 = max(0, (h - max_side) // 2) // 8 * 8
    x0 = max(0, (w - max_side) // 2) // 8 * 8
    return img[y0:y0 + max_side, x0:x0 + max_side].astype(np.float64)


# ---------------------------------------------------------------- noise


def _noise_patches(image: np.ndarray, patch: int, max_patches: int) -> np.ndarray:
    """(N, patch*patch*c) patches of the central square, strided to about max_patches.

    Patches touching 0 or 255 are skipped when enough others remain, because clipping
    shrinks the noise there.
    """
    img = _as_rgb(image)  # a central 1024 square is plenty of patches
    h, w, c = img.shape
    if h < patch or w < patch:
        return np.zeros((0, patch * patch * c))
    n_pos = (h - patch + 1) * (w - patch + 1)
    stride = max(1, int(np.sqrt(n_pos / max_patches)))
    x = sliding_window_view(img, (patch, patch, c))[::stride, ::stride, 0].reshape(-1, patch * patch * c)
    saturated = (x.min(axis=1) <= 0.5) | (x.max(axis=1) >= 254.5)
    if (~saturated).sum() >= max(200, 0.2 * len(x)):
        x = x[~saturated]
    return x


def _tail_variance(x: np.ndarray) -> float:
    """Noise variance of patches x: the mean of the covariance eigenvalue tail whose mean
    equals its median (Chen, Zhu and Heng 2015)."""
    if len(x) < 2:
        return 0.0
    xt = torch.from_numpy(x - x.mean(axis=0))
    # torch's GEMM, not numpy's: OpenBLAS threads thrash on a busy machine.
    eig = np.sort(torch.linalg.eigvalsh(xt.T @ xt / len(x)).numpy())[::-1]
    for i in range(len(eig)):
        tail = eig[i:]
        tau = tail.mean()
        if np.median(tail) >= tau:
            return float(max(tau, 0.0))
    return float(max(eig[-1], 0.0))


def noise_sigma(image: np.ndarray, patch: int = 7, max_patches: int = 30000) -> float:
    """Standard deviation (in 0..255 units) of additive white Gaussian noise in `image`."""
    return float(np.sqrt(_tail_variance(_noise_patches(image, patch, max_patches))))


@dataclass
class NoiseLevels:
    """The noise-level function var(y) = gain * y + sigma^2 (0..255 units) fitted to an image,
    with the per-level measurements it came from."""

    gain: float
    sigma: float
    levels: np.ndarray  # mean level of each intensity bin
    variances: np.ndarray  # noise variance measured in that bin


def noise_levels(image: np.ndarray, bins: int = 8, patch: int = 5, max_patches: int = 40000,
                 gain: float | None = None) -> NoiseLevels:
    """Fit var(y) = gain * y + sigma^2 (Foi et al. 2008's Poisson-Gaussian model) from the
    noise variance of patches grouped by their mean level; `gain` given: fit sigma only.

    Each bin's variance is the eigenvalue-tail estimate of noise_sigma, so texture barely
    biases it; saturated patches are left out, so clipping does not pull the bright and dark
    bins down. A line through the bins, weighted by their patch counts, gives gain and sigma^2,
    both kept non-negative.
    """
    x = _noise_patches(image, patch, max_patches)
    per_bin = max(400, 2 * x.shape[1] if len(x) else 400)
    nb = int(min(bins, len(x) // per_bin))
    if nb < 2:
        var = _tail_variance(x)
        return NoiseLevels(0.0 if gain is None else gain, float(np.sqrt(var)), np.zeros(0), np.zeros(0))
    means = x.mean(axis=1)
    order = np.argsort(means)
    groups = np.array_split(order, nb)
    lv = np.array([means[g].mean() for g in groups])
    var = np.array([_tail_variance(x[g]) for g in groups])
    wts = np.array([len(g) for g in groups], dtype=np.float64)
    if gain is None:
        a = np.stack([lv, np.ones_like(lv)], axis=1) * wts[:, None]
        g_fit, b_fit = np.linalg.lstsq(a, var * wts, rcond=None)[0]
        if g_fit < 0 or b_fit < 0:  # the line leaves the admissible region: fit on its edge
            flat = float(np.average(var, weights=wts))
            through0 = float(np.sum(wts * lv * var) / max(np.sum(wts * lv * lv), 1e-12))
            g_fit, b_fit = (0.0, flat) if g_fit < 0 else (max(through0, 0.0), 0.0)
    else:
        g_fit = float(gain)
        b_fit = max(float(np.average(var - g_fit * lv, weights=wts)), 0.0)
    return NoiseLevels(float(g_fit), float(np.sqrt(b_fit)), lv, var)


# ---------------------------------------------------------------- JPEG


@dataclass
class JpegEstimate:
    """What the quantisation fit found. `quality` is None when the image shows no JPEG grid."""

    quality: int | None
    luma_table: np.ndarray | None  # measured steps, 0 where a frequency gave no evidence
    offset: tuple[int, int]  # block grid origin (y, x) inside the image, 0..7
    frequencies: int  # how many of the 64 frequencies agree with the fitted table
    evidence_bits: float  # sum of log2(step) over the coefficients the table explains


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m  # orthonormal DCT-II == JPEG's FDCT scaling


_DCT = _dct_matrix()


def _luma(rgb: np.ndarray) -> np.ndarray:
    if rgb.shape[-1] == 1:
        return rgb[..., 0]
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _block_coefficients(rgb: np.ndarray, oy: int, ox: int, max_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 64) luma DCT coefficients of the 8x8 blocks on the grid at (oy, ox).

    Blocks with clipped pixels are dropped when enough remain: clipping after decoding
    moves coefficients off the quantisation lattice.
    """
    sub = rgb[oy:, ox:]
    h, w = (sub.shape[0] // 8) * 8, (sub.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return np.zeros((0, 64))
    sub = sub[:h, :w]
    blocks = (_luma(sub) - 128.0).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    clipped = ((sub <= 0.5) | (sub >= 254.5)).any(-1).reshape(h // 8, 8, w // 8, 8).any(axis=(1, 3)).ravel()
    if (~clipped).sum() >= 50:
        blocks = blocks[~clipped]
    if len(blocks) > max_blocks:
        blocks = blocks[rng.choice(len(blocks), max_blocks, replace=False)]
    return (_DCT @ blocks @ _DCT.T).reshape(-1, 64)


def _grid_offsets(luma: np.ndarray) -> tuple[list[tuple[int, int]], bool]:
    """Likely block-grid origins from where the pixel differences jump (blockiness), and
    whether the jump is decisive on both axes (then only that origin is worth fitting)."""
    def axis_candidates(diff: np.ndarray) -> tuple[list[int], bool]:
        n = (len(diff) // 8) * 8
        if n < 16:
            return [0], False
        per_phase = diff[:n].reshape(-1, 8).mean(axis=0)  # phase p: boundary between p and p+1
        order = np.argsort(per_phase)[::-1]
        decisive = per_phase[order[0]] > 1.25 * np.median(per_phase) + 1e-6
        return [int((p + 1) % 8) for p in order[:2]], bool(decisive)

    ys, dec_y = axis_candidates(np.abs(np.diff(luma, axis=0)).mean(axis=1))
    xs, dec_x = axis_candidates(np.abs(np.diff(luma, axis=1)).mean(axis=0))
    if dec_y and dec_x:
        return [(ys[0], xs[0])], True
    cands = [(0, 0)] + [(y, x) for y in ys for x in xs]
    return list(dict.fromkeys(cands)), False


def _quant_steps(coefs: np.ndarray, min_count: int = 50, max_values: int = 2000, max_step: int = 255,
                 frequencies: range | list[int] = range(64)) -> tuple[np.ndarray, np.ndarray]:
    """Per frequency: the largest step q such that the non-zero coefficients sit on non-zero
    multiples of q (within rounding noise); 0 where there is too little evidence.

    Coefficients within 2.5 of zero are ignored: rounding and clipping after decoding
    scatter the zero bin by up to about two levels.
    """
    steps, counts = np.zeros(64), np.zeros(64)
    for k in frequencies:
        v = coefs[:, k]
        v = v[np.abs(v) > 2.5]
        if len(v) < min_count:
            continue
        v = v[:max_values]
        top = min(max_step, int(np.abs(v).max() * 1.1) + 1)
        q = np.arange(top, 1, -1, dtype=np.float64)
        # Screen every step on a small sample, then confirm the survivors on all values.
        for sample, threshold in ((v[:150], 0.6), (v, 0.8)):
            r = np.round(sample[None, :] / q[:, None])
            ok = ((np.abs(sample[None, :] - q[:, None] * r) < np.minimum(1.0, q[:, None] / 4)) & (r != 0)).mean(axis=1)
            q = q[ok > threshold]
            if not len(q):
                break
        if len(q):
            steps[k], counts[k] = q[0], len(v)
    return steps, counts


def _fit_quality(steps: np.ndarray, counts: np.ndarray) -> tuple[int, float, np.ndarray]:
    """The IJG quality whose table explains the most lattice evidence.

    Evidence is counted in bits: each coefficient explained by a step that agrees with the
    table (within 15%) adds log2(step). A step of 100 explaining 200 coefficients so
    outweighs accidental steps of 2 or 3 that clipping produces at other frequencies.
    Returns (quality, bits, mask of agreeing frequencies).
    """
    m = counts > 0
    log_steps = np.log(np.maximum(steps, 1))
    fits = []
    for quality in range(1, 101):
        dev = np.abs(log_steps - np.log(ijg_table(quality).ravel()))
        agree = m & (dev < 0.15)
        bits = float((counts[agree] * log_steps[agree]).sum() / np.log(2))
        err = float((counts[agree] * dev[agree]).sum() / max(counts[agree].sum(), 1))
        fits.append((quality, bits, err, agree))
    top = max(f[1] for f in fits)
    # Neighbouring qualities share most steps: among the near-best, take the closest table.
    quality, bits, _, agree = min((f for f in fits if f[1] >= 0.98 * top), key=lambda f: f[2])
    return quality, bits, agree


def jpeg_quality(image: np.ndarray, max_blocks: int = 20000, seed: int = 0) -> JpegEstimate:
    """Estimate the JPEG quality an RGB image was last saved with (IJG scale, 1..100).

    Returns quality None when no frequency shows a quantisation lattice (never compressed,
    resampled, or noise added after compression).
    """
    rgb = _as_rgb(image)
    rng = np.random.default_rng(seed)
    offsets, decisive = _grid_offsets(_luma(rgb))
    best = _best_fit(rgb, offsets, max_blocks, rng)
    if best.quality is None and not decisive:
        # Weak blockiness (high quality) can hide the grid: scan all 64 origins cheaply on
        # the low AC frequencies, then fit the two most lattice-like ones in full.
        support = {}
        h, w = rgb.shape[:2]
        y0, x0 = max(0, h // 2 - 200) // 8 * 8, max(0, w // 2 - 200) // 8 * 8
        patch = rgb[y0:y0 + 400, x0:x0 + 400]
        for oy in range(8):
            for ox in range(8):
                coefs = _block_coefficients(patch, oy, ox, 1500, rng)
                steps, _ = _quant_steps(coefs, max_values=600, max_step=64, frequencies=_SCAN_FREQS)
                support[(oy, ox)] = int((steps >= 2).sum())
        top = sorted(support, key=support.get, reverse=True)[:2]
        best = _best_fit(rgb, [o for o in top if support[o] >= 1], max_blocks, rng)
    return best


# Low AC frequencies (zig-zag 1..14) carry non-zero coefficients at every quality.
_SCAN_FREQS = [1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4]


def _best_fit(rgb: np.ndarray, offsets: list[tuple[int, int]], max_blocks: int,
              rng: np.random.Generator, min_bits: float = 150.0) -> JpegEstimate:
    """The grid origin whose quality fit has the most lattice evidence."""
    best, best_bits = JpegEstimate(None, None, (0, 0), 0, 0.0), min_bits
    for oy, ox in offsets:
        steps, counts = _quant_steps(_block_coefficients(rgb, oy, ox, max_blocks, rng))
        if not (counts > 0).any():
            continue
        quality, bits, agree = _fit_quality(steps, counts)
        if bits >= best_bits:
            best = JpegEstimate(quality, steps.reshape(8, 8), (oy, ox), int(agree.sum()), bits)
            best_bits = bits
    return best


def describe(image: np.ndarray) -> dict:
    """Both estimates, as reported in `restore`'s meta for task=auto."""
    jpeg = jpeg_quality(image)
    return {"noise_sigma": round(noise_sigma(image), 2), "jpeg_quality": jpeg.quality,
            "jpeg_grid_offset": list(jpeg.offset) if jpeg.quality is not None else None}
