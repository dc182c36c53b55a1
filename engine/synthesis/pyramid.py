"""Image pyramids for coarse-to-fine synthesis, and the masks that go with them."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _pool(x: torch.Tensor, op: str, wrap: bool) -> torch.Tensor:
    """2x2 pooling of (c, h, w); odd sizes pad by one (wrapping around or repeating the edge)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x[None], (0, w % 2, 0, h % 2), mode="circular" if wrap else "replicate")[0]
    return F.avg_pool2d(x, 2) if op == "avg" else F.max_pool2d(x, 2)


def down_image(x: torch.Tensor, known: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Half size (c, h, w): the mean of the known pixels under each coarse pixel (any, where none is)."""
    k = known[None].float()
    num, den = _pool(x * k, "avg", wrap), _pool(k, "avg", wrap)
    return torch.where(den > 0, num / den.clamp_min(1e-8), _pool(x, "avg", wrap))


def down_any(m: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Half size (h, w) bool: set where any of the fine pixels is (a hole stays a hole)."""
    return _pool(m[None].float(), "max", wrap)[0] > 0


def down_all(m: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Half size (h, w) bool: set where all of the fine pixels are (a source stays inside the source)."""
    return ~down_any(~m, wrap)


def dilate(m: torch.Tensor, r: int, wrap: bool = False, outside: bool = False) -> torch.Tensor:
    """Square dilation of (h, w) bool by r pixels; beyond the edge is `outside` unless it wraps."""
    if r <= 0:
        return m.clone()
    x = m[None, None].float()
    x = F.pad(x, (r, r, r, r), mode="circular") if wrap else F.pad(x, (r, r, r, r), value=float(outside))
    return F.max_pool2d(x, 2 * r + 1, stride=1)[0, 0] > 0


def erode(m: torch.Tensor, r: int, wrap: bool = False, outside: bool = False) -> torch.Tensor:
    """Square erosion by r pixels; beyond the edge is `outside` unless it wraps."""
    return ~dilate(~m, r, wrap, not outside)


def _erode_cross(m: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Erosion by the 4-neighbourhood; beyond the edge counts as inside the set (as depth's erosion)."""
    x = (~m)[None, None].float()
    x = F.pad(x, (1, 1, 1, 1), mode="circular") if wrap else F.pad(x, (1, 1, 1, 1), value=0.0)
    hit = torch.maximum(torch.maximum(x[..., :-2, 1:-1], x[..., 2:, 1:-1]), torch.maximum(x[..., 1:-1, :-2], x[..., 1:-1, 2:]))
    return m & ~(hit[0, 0] > 0)


def depth(hole: torch.Tensor, cap: int, wrap: bool = False, octagonal: bool = False) -> torch.Tensor:
    """Chessboard distance (h, w) from each hole pixel to the nearest known pixel, capped at `cap`;
    0 on known pixels. Beyond the image edge counts as hole (unless it wraps). octagonal: square
    and cross erosions alternate, so the distance's contours are octagons (closer to round).

    Without wrap-around only the hole's box (plus one known ring, which stops the erosion
    where the box is inside the image) is eroded, so the cost follows the hole.
    """
    d = torch.zeros(hole.shape, device=hole.device)
    if not bool(hole.any()):
        return d
    box = (slice(None), slice(None))
    if not wrap:
        ys, xs = torch.nonzero(hole, as_tuple=True)
        box = (slice(max(0, int(ys.min()) - 1), int(ys.max()) + 2), slice(max(0, int(xs.min()) - 1), int(xs.max()) + 2))
    reach = hole[box].clone()
    sub = d[box]
    for k in range(cap):
        if not bool(reach.any()):
            break
        sub += reach.float()
        reach = _erode_cross(reach, wrap) if octagonal and k % 2 else erode(reach, 1, wrap, outside=True)
    return d


def push_pull(x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill the unknown pixels of (c, h, w) with a smooth membrane from the known ones (push-pull)."""
    if bool(known.all()) or not bool(known.any()):
        return x.clone() if bool(known.any()) else torch.full_like(x, float(x.mean()))
    levels = [(x * known[None], known[None].float())]
    while min(levels[-1][1].shape[-2:]) > 1 and float(levels[-1][1].min()) == 0:
        num, den = levels[-1]
        levels.append((F.avg_pool2d(num, 2, ceil_mode=True), F.avg_pool2d(den, 2, ceil_mode=True)))
    num, den = levels[-1]
    est = num / den.clamp_min(1e-8)
    for num, den in reversed(levels[:-1]):
        up = F.interpolate(est[None], size=num.shape[-2:], mode="bilinear", align_corners=False)[0]
        conf = den.clamp(0, 1)
        est = torch.where(den > 0, num / den.clamp_min(1e-8), up) * conf + up * (1 - conf)
    return torch.where(known[None], x, est)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]
