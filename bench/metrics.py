"""Image quality metrics, implemented the way the published tables compute them.

Images are numpy arrays on the 0..255 scale (uint8 or float), shaped (h, w) or (h, w, c).
Only numpy is needed, so the metrics work without the benchmark extra installed.

- PSNR: 10 log10(255^2 / MSE), optionally restricted to a mask (inpainting holes).
- SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  over the 'valid' region (no padding), per channel and averaged, as in the MATLAB
  reference code and the DnCNN/DRUNet/EDSR evaluation scripts.
- Y channel: ITU-R BT.601 luma as MATLAB's rgb2ycbcr computes it (16..235).
- PSNR-B: Yim and Bovik 2011, PSNR with a blocking-effect factor over the 8x8 grid.
- SWD: sliced Wasserstein distance between Laplacian-pyramid 7x7 patch descriptors,
  following Karras et al. 2018 (ProGAN, section 5 and appendix), restricted to hole
  positions and normalised with the reference's statistics so that blur is penalised.
- Large-hole fills (object removal, outpainting): texture ratio (fine detail in the hole
  relative to its surroundings, over the same for the real picture), patch distance (per
  image SWD of the hole's 7x7 patches on a 3-level Laplacian pyramid) and seam ratio (the
  jump across an outpainting edge over the column-to-column differences before it).
"""
from __future__ import annotations

import math

import numpy as np

PEAK = 255.0


def as_float(img: np.ndarray) -> np.ndarray:
    """float64 copy on the 0..255 scale (uint8 and uint16 are rescaled)."""
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 257.0
    return np.asarray(img, dtype=np.float64)


def quantize(img: np.ndarray) -> np.ndarray:
    """Round to uint8 the way saved results are evaluated (clip, round half up)."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.floor(as_float(img) + 0.5), 0, 255).astype(np.uint8)


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    """Drop `border` pixels on every side (the SR protocol shaves `scale` pixels)."""
    if border <= 0:
        return img
    return img[border:-border, border:-border, ...]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 16..235 scale, as MATLAB rgb2ycbcr (float64, (h, w))."""
    x = as_float(img)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = (as_float(a) - as_float(b)) ** 2
    if mask is None:
        return float(diff.mean())
    sel = _mask_bool(mask, diff.shape[:2])
    if not sel.any():
        raise ValueError("empty mask")
    return float(diff[sel].mean())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB on the 0..255 scale; inside `mask` (non-zero = counted) when given."""
    m = mse(a, b, mask)
    return float("inf") if m == 0 else 10.0 * math.log10(PEAK * PEAK / m)


def _mask_bool(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != tuple(shape):
        raise ValueError(f"mask shape {m.shape} does not match image {shape}")
    return m > (127 if m.dtype == np.uint8 else 0.5)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian (SSIM's 2-D window is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a (h, w) float image with the window g x g."""
    k = len(g)
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ g  # (h-k+1, w)
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g  # (h-k+1, w-k+1)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM index map of two single-channel images (valid region, (h-10, w-10))."""
    x, y = as_float(a), as_float(b)
    g = gaussian_window()
    c1, c2 = (0.01 * PEAK) ** 2, (0.03 * PEAK) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x * mu_x
    syy = _filter_valid(y * y, g) - mu_y * mu_y
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM (per channel, then averaged); inside `mask` when given.

    With a mask, the SSIM map (whose pixel i describes the 11x11 window centred on i)
    is averaged over window centres that lie inside the hole.
    """
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < 11:
        raise ValueError("SSIM needs images of at least 11x11 pixels")
    chans = [(a, b)] if a.ndim == 2 else [(a[..., c], b[..., c]) for c in range(a.shape[2])]
    sel = None
    if mask is not None:
        sel = crop_border(_mask_bool(mask, a.shape[:2]), 5)
        if not sel.any():
            raise ValueError("empty mask")
    vals = []
    for ca, cb in chans:
        m = ssim_map(ca, cb)
        vals.append(float(m[sel].mean() if sel is not None else m.mean()))
    return float(np.mean(vals))


def blocking_effect_factor(img: np.ndarray, block: int = 8) -> float:
    """Yim and Bovik's BEF of a single-channel image: excess difference across block edges."""
    x = as_float(img)
    h, w = x.shape
    col_edges = np.arange(block - 1, w - 1, block)
    row_edges = np.arange(block - 1, h - 1, block)
    dh = (x[:, :-1] - x[:, 1:]) ** 2  # horizontal neighbour differences, (h, w-1)
    dv = (x[:-1, :] - x[1:, :]) ** 2  # vertical neighbour differences, (h-1, w)
    col_on = np.zeros(w - 1, bool)
    col_on[col_edges] = True
    row_on = np.zeros(h - 1, bool)
    row_on[row_edges] = True
    n_b = h * len(col_edges) + w * len(row_edges)
    n_nb = h * (w - 1) + w * (h - 1) - n_b
    if n_b == 0 or n_nb == 0:
        return 0.0
    d_b = (dh[:, col_on].sum() + dv[row_on, :].sum()) / n_b
    d_nb = (dh[:, ~col_on].sum() + dv[~row_on, :].sum()) / n_nb
    if d_b <= d_nb:
        return 0.0
    eta = math.log2(block) / math.log2(min(h, w))
    return float(eta * (d_b - d_nb))


def psnr_b(test: np.ndarray, ref: np.ndarray) -> float:
    """PSNR-B of `test` against `ref` on the BT.601 luma (single-channel inputs used as-is).

    The blocking factor is measured on the test image, so blocky results are penalised.
    """
    t = rgb_to_y(test) if test.ndim == 3 else as_float(test)
    r = rgb_to_y(ref) if ref.ndim == 3 else as_float(ref)
    m = float(((t - r) ** 2).mean()) + blocking_effect_factor(t)
    return float("inf") if m == 0 else 10.0 * math.log10(PEAK * PEAK / m)


# --- sliced Wasserstein distance on Laplacian-pyramid patches (ProGAN) -------------------

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: np.ndarray) -> np.ndarray:
    """5x5 binomial blur with reflected borders, applied per channel of (h, w, c)."""
    p = np.pad(x, ((2, 2), (2, 2), (0, 0)), mode="reflect")
    rows = sum(_BINOMIAL[i] * p[i:i + x.shape[0]] for i in range(5))
    return sum(_BINOMIAL[i] * rows[:, i:i + x.shape[1]] for i in range(5))


def _down(x: np.ndarray) -> np.ndarray:
    return _blur(x)[::2, ::2]


def _up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    z = np.zeros((shape[0], shape[1], x.shape[2]))
    z[::2, ::2] = x[: (shape[0] + 1) // 2, : (shape[1] + 1) // 2]
    return _blur(z) * 4.0


def laplacian_pyramid(img: np.ndarray, min_size: int = 16, levels: int | None = None) -> list[np.ndarray]:
    """Band-pass levels, finest first, ending with the low-pass residual (>= min_size);
    with `levels`, exactly that many entries (levels - 1 band-pass ones, then the residual)."""
    g = as_float(img)
    if g.ndim == 2:
        g = g[..., None]
    out = []
    while (len(out) < levels - 1) if levels is not None else (min(g.shape[:2]) // 2 >= min_size):
        small = _down(g)
        out.append(g - _up(small, g.shape[:2]))
        g = small
    out.append(g)
    return out


def _mask_pyramid(mask: np.ndarray, n: int) -> list[np.ndarray]:
    """Hole masks matching each pyramid level (a coarse pixel is a hole if any child is)."""
    m = _mask_bool(mask, mask.shape[:2])
    out = [m]
    for _ in range(n - 1):
        h, w = m.shape
        p = np.pad(m, ((0, h % 2), (0, w % 2)))
        m = p[0::2, 0::2] | p[1::2, 0::2] | p[0::2, 1::2] | p[1::2, 1::2]
        out.append(m)
    return out


def patch_descriptors(result_pyr: list[np.ndarray], reference_pyr: list[np.ndarray], mask: np.ndarray,
                      rng: np.random.Generator, per_level: int = 128, size: int = 7
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Patches of both pyramids at the same random hole positions, per level.

    Returns two lists (one entry per level) of (n, size*size*c) arrays. Positions are
    patch centres inside the (level-resized) hole, drawn with replacement.
    """
    masks = _mask_pyramid(mask, len(result_pyr))
    r = size // 2
    out_a, out_b = [], []
    for la, lb, m in zip(result_pyr, reference_pyr, masks):
        m = m[: la.shape[0], : la.shape[1]]
        valid = np.zeros_like(m)
        valid[r:m.shape[0] - r, r:m.shape[1] - r] = m[r:m.shape[0] - r, r:m.shape[1] - r]
        ys, xs = np.nonzero(valid)
        if len(ys) == 0:
            out_a.append(np.zeros((0, size * size * la.shape[2])))
            out_b.append(np.zeros((0, size * size * la.shape[2])))
            continue
        pick = rng.integers(0, len(ys), per_level)
        dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
        yy = ys[pick][:, None, None] + dy
        xx = xs[pick][:, None, None] + dx
        out_a.append(la[yy, xx].reshape(per_level, -1))
        out_b.append(lb[yy, xx].reshape(per_level, -1))
    return out_a, out_b


def _normalise(desc: np.ndarray, ref: np.ndarray, channels: int) -> np.ndarray:
    """Zero mean, unit std per colour channel, using the reference set's statistics.

    ProGAN normalises each set by its own statistics; here both sets use the
    reference's, so a fill that lost contrast (blur) is not scaled back up and its
    missing texture counts against it.
    """
    r = ref.reshape(len(ref), -1, channels)
    mean = r.mean(axis=(0, 1), keepdims=True)
    std = r.std(axis=(0, 1), keepdims=True) + 1e-8
    return ((desc.reshape(len(desc), -1, channels) - mean) / std).reshape(len(desc), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                       repeats: int = 4, directions: int = 128) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance of projections."""
    if len(a) != len(b):
        raise ValueError("descriptor sets must have equal size")
    vals = []
    for _ in range(repeats):
        d = rng.standard_normal((a.shape[1], directions))
        d /= np.sqrt((d * d).sum(axis=0, keepdims=True))
        pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
        vals.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(vals))


class PatchSWD:
    """Set-level SWD between results and references, accumulated one image at a time.

    Descriptors are pooled over all added images, normalised with the reference set's
    statistics (see `_normalise`), and compared level by level; the value is x1e3 as
    ProGAN reports it, lower is better. Reference pyramids are cached by `key`, so one
    ground truth compared against several methods is decomposed once.
    """

    def __init__(self, seed: int = 0, per_level: int = 128):
        self.rng = np.random.default_rng(seed)
        self.per_level = per_level
        self._a: dict[int, list[np.ndarray]] = {}
        self._b: dict[int, list[np.ndarray]] = {}
        self._channels = 3

    def add(self, result: np.ndarray, reference: np.ndarray, mask: np.ndarray,
            reference_pyramid: list[np.ndarray] | None = None) -> None:
        ref_pyr = reference_pyramid or laplacian_pyramid(reference)
        da, db = patch_descriptors(laplacian_pyramid(result), ref_pyr, mask, self.rng, self.per_level)
        self._channels = ref_pyr[0].shape[2]
        for i, (x, y) in enumerate(zip(da, db)):
            self._a.setdefault(i, []).append(x)
            self._b.setdefault(i, []).append(y)

    def result(self) -> dict[str, float]:
        """{'1/1': finest band, '1/2', ..., 'avg': mean over levels}."""
        out: dict[str, float] = {}
        for i in sorted(self._a):
            a, b = np.concatenate(self._a[i]), np.concatenate(self._b[i])
            if len(a) < 2:
                continue
            c = self._channels
            out[f"1/{2 ** i}"] = 1e3 * sliced_wasserstein(_normalise(a, b, c), _normalise(b, b, c), self.rng)
        out["avg"] = float(np.mean(list(out.values()))) if out else float("nan")
        return out


def swd(results: list[np.ndarray], references: list[np.ndarray], masks: list[np.ndarray],
        seed: int = 0, per_level: int = 128) -> dict[str, float]:
    """SWD of a whole set at once (see PatchSWD)."""
    acc = PatchSWD(seed, per_level)
    for res, ref, m in zip(results, references, masks):
        acc.add(res, ref, m)
    return acc.result()


# --- fill measures for large holes: texture ratio, patch distance, seam ratio ----------------
# PSNR rewards blur inside a large hole; these three measure what an artist sees instead:
# missing fine detail (a smear), texture unlike the real one, and a visible seam.

RING = 24  # px: the band of known pixels around a hole that the texture ratio compares with


def _luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 0..255 scale (full range), (h, w) float64."""
    x = as_float(img)
    return x if x.ndim == 2 else 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def laplacian(img: np.ndarray) -> np.ndarray:
    """4-neighbour discrete Laplacian of the luma, borders replicated, (h, w)."""
    y = np.pad(_luma(img), 1, mode="edge")
    return y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Boolean dilation by an octagon of the given radius (alternating 4- and 8-neighbour steps)."""
    m = np.asarray(mask, bool)
    for i in range(radius):
        p = np.pad(m, 1)
        grown = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
        if i % 2:
            grown |= p[:-2, :-2] | p[:-2, 2:] | p[2:, :-2] | p[2:, 2:]
        m = grown
    return m


def detail_ratio(img: np.ndarray, mask: np.ndarray, ring: int = RING) -> float:
    """std of the Laplacian inside the hole / std in the `ring`-px band of known pixels around it."""
    hole = _mask_bool(mask, img.shape[:2])
    band = dilate(hole, ring) & ~hole
    if not hole.any() or not band.any():
        raise ValueError("texture ratio needs a hole and known pixels around it")
    lap = laplacian(img)
    outside = float(lap[band].std())
    return float(lap[hole].std()) / outside if outside > 0 else float("nan")


def texture_ratio(result: np.ndarray, reference: np.ndarray, mask: np.ndarray, ring: int = RING) -> float:
    """The fill's detail ratio over the real picture's: 1 = as much fine detail as the real hole
    had, relative to its surroundings; a smear is far below 1, added noise above it."""
    ref = detail_ratio(reference, mask, ring)
    return detail_ratio(result, mask, ring) / ref if ref > 0 else float("nan")


def _patches(level: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """(n, size*size*c) patches centred on (ys, xs); the level is reflected at its borders."""
    r = size // 2
    p = np.pad(level, ((r, r), (r, r), (0, 0)), mode="reflect")
    dy, dx = np.mgrid[0:size, 0:size]
    return p[ys[:, None, None] + dy, xs[:, None, None] + dx].reshape(len(ys), -1)


def patch_distance(result: np.ndarray, reference: np.ndarray, mask: np.ndarray, seed: int = 0,
                   levels: int = 3, size: int = 7, max_patches: int = 4096, directions: int = 256) -> float:
    """Sliced Wasserstein distance between the 7x7 patches of the filled hole and of the real hole.

    Both images are decomposed into a `levels`-level Laplacian pyramid (band-pass levels, then
    the low-pass residual, which carries colour). At each level the patches centred in the
    (level-resized) hole are taken from both images, normalised per channel by the real
    image's statistics at that level (so a fill that lost contrast is not scaled back up),
    projected on seeded random unit directions, and the sorted projections compared (Rabin et
    al. 2011; Karras et al. 2018). Mean over levels; 0 for identical fills, lower is better.
    """
    rng = np.random.default_rng(seed)
    pa, pb = laplacian_pyramid(result, levels=levels), laplacian_pyramid(reference, levels=levels)
    masks = _mask_pyramid(mask, levels)
    vals = []
    for la, lb, m in zip(pa, pb, masks):
        ys, xs = np.nonzero(m[: la.shape[0], : la.shape[1]])
        if len(ys) == 0:
            continue
        if len(ys) > max_patches:
            pick = rng.choice(len(ys), max_patches, replace=False)
            ys, xs = ys[pick], xs[pick]
        c = lb.shape[2]
        mean = lb.reshape(-1, c).mean(axis=0)
        std = lb.reshape(-1, c).std(axis=0) + 1e-8
        a = ((_patches(la, ys, xs, size).reshape(len(ys), -1, c) - mean) / std).reshape(len(ys), -1)
        b = ((_patches(lb, ys, xs, size).reshape(len(ys), -1, c) - mean) / std).reshape(len(ys), -1)
        d = rng.standard_normal((a.shape[1], directions))
        d /= np.sqrt((d * d).sum(axis=0, keepdims=True))
        vals.append(float(np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0)).mean()))
    if not vals:
        raise ValueError("empty mask")
    return float(np.mean(vals))


def seam_ratio(img: np.ndarray, edge: int, band: int = RING) -> float:
    """Outpainting seam: mean absolute difference across column `edge` (between edge-1 and edge)
    over the same between neighbouring columns of the `band` known columns before it.

    About 1 for a seamless continuation; a hard seam is well above it.
    """
    x = as_float(img)
    if not 1 < edge < x.shape[1]:
        raise ValueError(f"edge column {edge} outside the image")
    lo = max(0, edge - 1 - band)
    across = float(np.abs(x[:, edge] - x[:, edge - 1]).mean())
    inside = float(np.abs(np.diff(x[:, lo:edge], axis=1)).mean())
    return across / inside if inside > 0 else float("nan")
