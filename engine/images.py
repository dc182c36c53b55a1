"""Pixels in and out of the engine: bit depth, selection to work area, feathering, compositing.

Every operation that edits a region goes through here, so the guarantees an editor relies
on live in one place:

- 8-bit, 16-bit and float images come back in their own depth; pixels that were not edited
  come back bit for bit (`composite` copies them from the input rather than round-tripping).
- A selection becomes a work area: its bounding box plus context that grows with the
  selection, rounded to the network stride and processed at a capped resolution.
- Results are blended in through a feathered mask that only grows *outwards*, after a
  low-frequency colour correction measured on a ring of known pixels around the hole.

Float arrays here are (h, w, c) float32 in [0, 1]; the model works in [-1, 1] (`to_model`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .devices import work_side
from .numerics import gaussian_taps

SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
PREVIEW_SIDE = 128


# ---- bit depth -------------------------------------------------------------------------
def to_float(img: np.ndarray) -> np.ndarray:
    """(h, w, c) array of any supported depth -> float32, integers scaled to [0, 1].

    Float inputs are kept as they are (only made finite): a noisy float image legitimately
    leaves [0, 1], and clipping it before denoising throws information away.
    """
    img = np.asarray(img)
    scale = SCALES.get(img.dtype)
    if scale is not None:
        return img.astype(np.float32) / np.float32(scale)
    if img.dtype == np.bool_:
        return img.astype(np.float32)
    out = img.astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)


def from_float(arr: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """float [0, 1] -> dtype; integers are rounded, so to_float/from_float is exact for them."""
    dtype = np.dtype(dtype)
    arr = np.clip(arr, 0.0, 1.0)
    scale = SCALES.get(dtype)
    if scale is None:
        return arr.astype(dtype)
    return np.floor(arr * np.float32(scale) + np.float32(0.5)).astype(dtype)


def mask_to_float(mask: np.ndarray) -> np.ndarray:
    """A selection mask (h, w) or (h, w, 1), u8 / u16 / float / bool -> (h, w) float32 in [0, 1]."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    return to_float(mask)


def split_alpha(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Float image -> (rgb, alpha or None)."""
    if img.shape[-1] == 4:
        return img[..., :3], img[..., 3]
    return img, None


def to_model(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h, w, 3) float [0, 1] (or a list of them, stacked) -> (B, 3, h, w) in [-1, 1]."""
    arr = np.stack(rgb) if isinstance(rgb, (list, tuple)) else rgb[None]
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(0, 3, 1, 2)
    return (t * 2 - 1).to(device)


def from_model(x: torch.Tensor) -> np.ndarray:
    """(B, 3, h, w) in [-1, 1] -> (B, h, w, 3) float32 in [0, 1]."""
    return ((x.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()


def mask_to_model(mask: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h, w) float mask -> (1, 1, h, w) tensor."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None].to(device)


# ---- selection to work area --------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """A rectangle [y0, y1) x [x0, x1) in image pixels."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def mask_bbox(mask: np.ndarray, threshold: float = 0.0) -> Box | None:
    """Bounding box of mask > threshold, or None when the mask is empty."""
    m = mask_to_float(mask) > threshold
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def auto_context(bbox: Box, shape: tuple[int, int]) -> int:
    """Context padding: max(longest image side / 16, mean selection side / 2)."""
    return int(math.ceil(max(max(shape) / 16, (bbox.h + bbox.w) / 4)))


def grow_to_multiple(lo: int, hi: int, limit: int, multiple: int) -> tuple[int, int]:
    """Grow [lo, hi) to a length that is a multiple, staying inside [0, limit) when possible."""
    length = hi - lo
    target = min(limit, -(-length // multiple) * multiple)
    extra = target - length
    lo -= extra // 2
    hi += extra - extra // 2
    if lo < 0:
        hi, lo = hi - lo, 0
    if hi > limit:
        lo, hi = max(0, lo - (hi - limit)), limit
    return lo, hi


def work_area(mask: np.ndarray, context: int | None = None, *, stride: int) -> Box | None:
    """Selection bounding box plus context, clamped to the image, sides rounded to `stride`
    (the model's, from its descriptor)."""
    bbox = mask_bbox(mask)
    if bbox is None:
        return None
    h, w = mask.shape[:2]
    pad = auto_context(bbox, (h, w)) if context is None else max(0, int(context))
    y0, y1 = max(0, bbox.y0 - pad), min(h, bbox.y1 + pad)
    x0, x1 = max(0, bbox.x0 - pad), min(w, bbox.x1 + pad)
    y0, y1 = grow_to_multiple(y0, y1, h, stride)
    x0, x1 = grow_to_multiple(x0, x1, w, stride)
    return Box(y0, x0, y1, x1)


def work_cap(device: str, override: int | None = None) -> int:
    """Longest side the sampler works at: explicit, $SFUMATO_WORK_CAP, or the device default."""
    if override:
        return int(override)
    env = os.environ.get("SFUMATO_WORK_CAP")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return work_side("inpaint", device)


def work_size(h: int, w: int, cap: int, stride: int) -> tuple[int, int]:
    """(h, w) scaled so the longest side is at most cap, rounded to stride (at least one stride)."""
    s = min(1.0, cap / max(h, w))
    if s >= 1.0:
        return h, w
    return (max(stride, int(round(h * s / stride)) * stride), max(stride, int(round(w * s / stride)) * stride))


LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601 weights of R, G, B


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of (..., 3, H, W) RGB as (..., 1, H, W), in the input's own scale."""
    w = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return (rgb * w).sum(dim=-3, keepdim=True)


def resize(x: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize (B, C, h, w); antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=shrink)


# ---- feathering and seam matching --------------------------------------------------------
def auto_feather(mask: np.ndarray) -> float:
    """Feather width in pixels: grows with the selection (sqrt of its area / 16), 1..12 px."""
    area = float((mask_to_float(mask) > 0).sum())
    return float(np.clip(math.sqrt(area) / 16, 1.0, 12.0))


def max_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Grey dilation of (B, C, H, W) by a (2r+1) square, separably (a 2-D pool is slow on CPU)."""
    if r <= 0:
        return x
    x = F.max_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, 2 * r + 1), stride=1)
    return F.max_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (2 * r + 1, 1), stride=1)


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of a (h, w) mask by a (2r+1) square."""
    if r <= 0:
        return mask.astype(bool)
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    return (max_filter(t, r)[0, 0] > 0).numpy()


def feather_mask(mask: np.ndarray, width: float) -> np.ndarray:
    """Soften the mask edge outwards: weight 1 - d / (width + 1) at distance d <= width.

    Inside the selection the weight stays exactly as given (1 where the user selected fully),
    so the hole never shows the object being removed; the ramp lies on known pixels, where
    the generated image already agrees with the original. The support is compact: the
    weight is exactly 0 farther than `width` pixels from the selection.
    """
    m = mask_to_float(mask)
    steps = int(round(width))
    if steps <= 0:
        return m
    t = torch.from_numpy((m >= 0.5).astype(np.float32))[None, None]
    ramp = t.clone()
    for d in range(1, steps + 1):
        # alternate square and cross neighbourhoods: an octagonal, nearly round distance
        t = F.max_pool2d(t, 3, stride=1, padding=1) if d % 2 else torch.maximum(
            t, F.max_pool2d(t, (3, 1), stride=1, padding=(1, 0)).maximum(F.max_pool2d(t, (1, 3), stride=1, padding=(0, 1))))
        ramp = torch.maximum(ramp, t * (1 - d / (steps + 1)))
    return np.maximum(m, ramp[0, 0].numpy()).astype(np.float32)


def gaussian_blur(x: torch.Tensor, sigma: float, edge: str = "replicate") -> torch.Tensor:
    """Separable Gaussian low-pass of (B, C, H, W). edge 'replicate' repeats the border (zeros
    when the radius reaches across the image); 'reflect' mirrors it, the radius clipped to fit."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3 * sigma))
    if edge == "reflect":
        r, mode = min(r, x.shape[-1] - 1, x.shape[-2] - 1), "reflect"
    else:
        mode = "replicate" if r < min(x.shape[-2:]) else "constant"
    g = gaussian_taps(sigma, r).to(x)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), g.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), g.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def seam_correction(original: np.ndarray, generated: np.ndarray, mask: np.ndarray,
                    ring: int | None = None) -> np.ndarray:
    """Smooth colour/brightness offset that makes `generated` meet `original` at the seam.

    The offset original - generated is measured on a ring of known pixels just outside the
    mask and spread over the hole by normalised convolution at a scale of the hole size (a
    low-frequency field, so it never adds detail). Returns the (h, w, 3) offset to add.
    """
    m = mask_to_float(mask)
    hole = m > 0
    if not hole.any() or hole.all():
        return np.zeros_like(generated[..., :3])
    ring = ring or max(2, int(round(auto_feather(m))) + 2)
    band = dilate(hole, ring) & ~hole
    if not band.any():
        return np.zeros_like(generated[..., :3])
    diff = (original[..., :3] - generated[..., :3]) * band[..., None]
    h, w = m.shape
    # Work on a coarse grid: the correction is low-frequency by construction.
    factor = max(1, int(max(h, w) // 96))
    hs, ws = -(-h // factor), -(-w // factor)
    num = torch.from_numpy(np.ascontiguousarray(np.concatenate([diff, band[..., None]], axis=2), dtype=np.float32))
    num = num.permute(2, 0, 1)[None]
    small = F.adaptive_avg_pool2d(num, (hs, ws)) if factor > 1 else num
    box = mask_bbox(m)
    sigma = max(1.0, (box.h + box.w) / 8 / factor) if box else 1.0
    blurred = gaussian_blur(small, sigma)
    weight = blurred[:, 3:]
    offset = blurred[:, :3] / weight.clamp_min(1e-6)
    mean = small[:, :3].sum(dim=(2, 3), keepdim=True) / small[:, 3:].sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    trust = (weight / 1e-3).clamp(0, 1)  # far from any ring pixel: fall back to the mean offset
    offset = offset * trust + mean * (1 - trust)
    if factor > 1:
        offset = F.interpolate(offset, size=(h, w), mode="bilinear", align_corners=False)
    return offset[0].permute(1, 2, 0).numpy()


# ---- compositing -------------------------------------------------------------------------
def composite(original: np.ndarray, generated: np.ndarray, mask: np.ndarray,
              feather: float | None = None, match_colors: bool = True) -> np.ndarray:
    """Blend `generated` into `original` through the (feathered) mask; returns original's dtype.

    original: (h, w, 3|4) u8 / u16 / f32. generated: same size, in original's dtype or float
    [0, 1], 3 channels (alpha kept from original) or 4 (alpha blended too, for outpainting).
    mask: (h, w[, 1]), 255 / 1.0 = take generated. feather: pixels, None = auto, 0 = none.
    Pixels where the feathered mask is 0 are copied from `original`, bit for bit.
    """
    m = mask_to_float(mask)
    if original.shape[:2] != m.shape or generated.shape[:2] != m.shape:
        raise ValueError(f"composite: sizes differ: original {original.shape}, generated {generated.shape}, mask {m.shape}")
    width = auto_feather(m) if feather is None else max(0.0, float(feather))
    fm = feather_mask(m, width)
    out = original.copy()
    touched = fm > 0
    if not touched.any():
        return out
    # crop to the blend region plus the ring the colour match is measured on
    box, ring = mask_bbox(fm), int(round(width)) + 4
    h, w = m.shape
    sl = (slice(max(0, box.y0 - ring), min(h, box.y1 + ring)), slice(max(0, box.x0 - ring), min(w, box.x1 + ring)))
    orig = to_float(original[sl])
    gen = generated[sl] if generated.dtype == np.float32 else to_float(generated[sl])
    gen = gen.astype(np.float32, copy=True)
    wt = fm[sl][..., None]
    rgb = gen[..., :3]
    if match_colors:
        rgb = np.clip(rgb + seam_correction(orig, rgb, m[sl], ring), 0.0, 1.0)
    blended = orig.copy()
    blended[..., :3] = orig[..., :3] * (1 - wt) + rgb * wt
    if original.shape[-1] == 4 and gen.shape[-1] == 4:
        a0, a1 = orig[..., 3], gen[..., 3]
        blended[..., 3] = np.where(a0 == a1, a0, a0 * (1 - wt[..., 0]) + a1 * wt[..., 0])
    res = from_float(blended, original.dtype)
    if original.shape[-1] == 4:  # alpha the result does not change stays exactly the input's
        if gen.shape[-1] == 4:
            res[..., 3] = np.where(blended[..., 3] == orig[..., 3], original[sl][..., 3], res[..., 3])
        else:
            res[..., 3] = original[sl][..., 3]
    keep = ~touched[sl]
    res[keep] = original[sl][keep]
    out[sl] = res
    return out


# ---- previews ----------------------------------------------------------------------------
def preview(img: np.ndarray, max_side: int = PREVIEW_SIDE) -> np.ndarray:
    """Small u8 RGB copy (longest side <= max_side) for progress frames."""
    f = img if img.dtype == np.float32 and img.max(initial=0) <= 1.0 else to_float(img)
    f = f[..., :3]
    h, w = f.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        t = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
        f = t[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(from_float(f, np.uint8))
