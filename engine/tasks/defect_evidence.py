"""How strongly a defect mask is backed by the image: the count of marks that are clear outliers.

Why: the detector's mask is tuned to cover marks, so on an undamaged photo it still picks
up a few highlights, eyelashes or noise specks; on a clean, noisy, JPEG or blurred photo
those few must not make `auto` run a repair pass. A real scratch or speck of dust stands
far out of its surroundings (the emulsion is gone or dirt sits on it), while a texture
ridge stands out only a little more than the texture around it. So each detected mark is
judged by its strong pixels' contrast against a local median, compared with an absolute
floor and with the mean contrast of the unmarked pixels around it (texture and noise
together), and `auto` repairs only when several marks pass.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .defect_classes import label_components

MEDIAN_RADIUS = 5  # px: background window, wider than a mark (scratches <= ~5 px, specks <= ~8 px)
MARGIN = 10  # px of surroundings around each mark where its texture is measured
TEXTURE_GAP = 2  # px around a mark left out of its surroundings' texture (its rim and blur)
CLEAR_CONTRAST = 80.0  # grey levels: a clear mark's strong pixels differ this much from the background
CLEAR_RATIO = 8.0  # ... and this many times the mean contrast of the texture around it
CLEAR_QUANTILE = 0.9  # the mark's "strong pixels": its contrast at this quantile
AUTO_MIN_CLEAR_MARKS = 6  # auto repairs when at least this many marks are clear, on up to ...
AUTO_REFERENCE_AREA = 256 * 256  # ... this many pixels; more on larger pictures (see min_clear_marks)


def median_filter(x: np.ndarray, r: int) -> np.ndarray:
    """(h, w) median over a (2r+1)² window, edges replicated: the background a mark stands out of."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    p = F.pad(t, (r, r, r, r), mode="replicate").unfold(2, 2 * r + 1, 1).unfold(3, 2 * r + 1, 1)
    return p.reshape(*p.shape[:4], -1).median(-1).values[0, 0].numpy()


def grow(mask: np.ndarray, r: int) -> np.ndarray:
    """mask dilated by r px (square)."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (F.max_pool2d(t, 2 * r + 1, stride=1, padding=r)[0, 0] > 0).numpy()


def mark_contrasts(u8: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, strong, texture): the 8-connected marks of `mask` over an (H, W, 3) u8 image,
    and per label 1..n (index 0 unused) its strong pixels' contrast against the local median
    and the mean contrast of the unmarked pixels around it."""
    labels, n = label_components(mask)
    strong, texture = np.zeros(n + 1), np.zeros(n + 1)
    if n == 0:
        return labels, strong, texture
    lum = u8[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = mask.shape
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs]
    y0 = np.full(n + 1, h)
    x0 = np.full(n + 1, w)
    y1 = np.full(n + 1, -1)
    x1 = np.full(n + 1, -1)
    np.minimum.at(y0, ids, ys)
    np.minimum.at(x0, ids, xs)
    np.maximum.at(y1, ids, ys)
    np.maximum.at(x1, ids, xs)
    for k in range(1, n + 1):
        a, b = max(0, y0[k] - MARGIN), min(h, y1[k] + MARGIN + 1)
        c, d = max(0, x0[k] - MARGIN), min(w, x1[k] + MARGIN + 1)
        crop = lum[a:b, c:d]
        contrast = np.abs(crop - median_filter(crop, MEDIAN_RADIUS))
        own = labels[a:b, c:d] == k
        around = ~grow(mask[a:b, c:d], TEXTURE_GAP)
        texture[k] = float(contrast[around].mean()) if around.any() else 0.0
        strong[k] = float(np.quantile(contrast[own], CLEAR_QUANTILE))
    return labels, strong, texture


def clear_marks(u8: np.ndarray, mask: np.ndarray) -> int:
    """Number of marks of `mask` that stand clearly out of an (H, W, 3) u8 image."""
    _, strong, texture = mark_contrasts(u8, mask)
    clear = (strong >= CLEAR_CONTRAST) & (strong >= CLEAR_RATIO * np.maximum(texture, 1.0))
    return int(clear[1:].sum())


def min_clear_marks(h: int, w: int) -> int:
    """Clear marks auto needs before it repairs an h x w picture. A larger picture holds more
    texture, so more highlights that pass by chance (on 481 x 321 undamaged photos up to ~19,
    against at most 5 on 256 px crops), but a damaged scan does not hold proportionally more
    marks: the count grows with the square root of the area, a compromise between the two."""
    return int(math.ceil(AUTO_MIN_CLEAR_MARKS * math.sqrt(max(1.0, h * w / AUTO_REFERENCE_AREA))))
