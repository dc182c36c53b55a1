"""Low-dimensional patch descriptors: what the nearest-neighbour search compares.

A p x p patch is projected on a fixed orthonormal low-frequency basis (2-D DCT functions,
in an opponent colour space for RGB) with one convolution. Natural-image patch PCA looks
much like this basis, and a fixed basis needs no per-image decomposition. Being
orthonormal, feature distances are projections of the true sums of squared differences,
so a 21-number descriptor stands in for a 147-number 7x7 RGB patch at a seventh of the
cost of every candidate the search tries.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

OPPONENT = np.array([[1, 1, 1], [1, -1, 0], [1, 1, -2]], np.float32) / np.array([[3 ** 0.5], [2 ** 0.5], [6 ** 0.5]],
                                                                                  np.float32)
RGB_REACH = (4, 1, 1)  # DCT functions with u + v <= reach, per opponent channel (luma, red-green, yellow-blue)
PLAIN_REACH = 3  # the same for each channel of an image that is not RGB
GUIDE_REACH = 1  # the same for each guidance channel: guides steer layout, not fine texture


@lru_cache(maxsize=8)
def dct_filters(p: int) -> torch.Tensor:
    """Orthonormal 1-D DCT-II filters of length p, (p, p), row k = frequency k."""
    n = np.arange(p)
    rows = [np.cos(np.pi * (n + 0.5) * k / p) * (np.sqrt(1 / p) if k == 0 else np.sqrt(2 / p)) for k in range(p)]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def _kernels(colour: torch.Tensor, reach: int, p: int) -> list[torch.Tensor]:
    """DCT kernels (c, p, p) with u + v <= reach, applied through the colour vector `colour` (c,)."""
    dct = dct_filters(p)
    return [colour[:, None, None] * torch.outer(dct[u], dct[v])[None]
            for u in range(reach + 1) for v in range(reach + 1 - u)]


@lru_cache(maxsize=16)
def basis(channels: int, guides: int, p: int, guide_weight: float) -> torch.Tensor:
    """Kernels (dims, channels + guides, p, p): image channels first, then guidance channels.

    Guide kernels are scaled by sqrt(guide_weight), so feature distance = image SSD +
    guide_weight * guide SSD (both projected).
    """
    total = channels + guides
    kernels: list[torch.Tensor] = []
    if channels == 3:
        for c, reach in enumerate(RGB_REACH):
            colour = torch.zeros(total)
            colour[:3] = torch.from_numpy(OPPONENT[c])
            kernels += _kernels(colour, reach, p)
    else:
        for c in range(channels):
            kernels += _kernels(torch.eye(total)[c], PLAIN_REACH, p)
    for g in range(guides):
        kernels += [k * guide_weight ** 0.5 for k in _kernels(torch.eye(total)[channels + g], GUIDE_REACH, p)]
    return torch.stack(kernels).contiguous()


def feature_map(x: torch.Tensor, kernels: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Descriptors of the patch around every pixel of x (c, h, w): (h * w, dims).

    Outside the image the patch wraps around (wrap) or repeats the edge pixels.
    """
    r = kernels.shape[-1] // 2
    xp = F.pad(x[None], (r, r, r, r), mode="circular" if wrap else "replicate")
    f = F.conv2d(xp, kernels.to(x.device))[0]
    return f.reshape(f.shape[0], -1).T.contiguous()


def features_at(x: torch.Tensor, kernels: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Descriptors (n, dims) of the patches centred at (ty, tx) only: one convolution over their
    bounding box, so the cost follows the targets, not the image."""
    if wrap:
        return feature_map(x, kernels, True).view(x.shape[1], x.shape[2], -1)[ty, tx]
    h, w = x.shape[-2:]
    r = kernels.shape[-1] // 2
    y0, y1, x0, x1 = int(ty.min()), int(ty.max()) + 1, int(tx.min()), int(tx.max()) + 1
    cy0, cy1, cx0, cx1 = max(0, y0 - r), min(h, y1 + r), max(0, x0 - r), min(w, x1 + r)
    crop = x[None, :, cy0:cy1, cx0:cx1]
    pad = (r - (x0 - cx0), r - (cx1 - x1), r - (y0 - cy0), r - (cy1 - y1))
    if any(pad):
        crop = F.pad(crop, pad, mode="replicate")
    f = F.conv2d(crop, kernels.to(x.device))[0]
    return f[:, ty - y0, tx - x0].T.contiguous()
