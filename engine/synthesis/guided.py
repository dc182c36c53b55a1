"""Guided patch synthesis: paint a target picture with the patches of a source picture.

The image-analogies / StyLit recipe (Hertzmann et al. 2001; Fiser et al. 2016): the target
and the source each carry guidance channels (here: the luminance, and the edges with their
orientation), and every target patch is matched to the source patch that is close both in
guidance (it belongs at this place of the layout) and in colour to the current estimate (it
continues the strokes around it). Coarse to fine, with expectation-maximisation at each
level (see em.py), the estimate starts from a given picture (e.g. the photo in the
painting's palette) and is replaced by copied source pixels: the result carries the
source's real strokes, lines and flat areas, laid out along the target's guides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import pyramid
from ..images import LUMA, gaussian_blur
from .em import Target, match_weights, vote
from .features import basis, feature_map, features_at
from .nnf import Field
from .progress import Progress, Ticker
from .usage import usage_price



@dataclass(frozen=True)
class GuidedSettings:
    """Knobs of guided synthesis."""

    patch: int = 7
    levels: int = 3  # pyramid levels, coarse to fine (each halves the side)
    # The finest level costs four times the next, and starts from the coarser level's matches:
    # its first round needs one PatchMatch iteration, not two. With 3/2/2 rounds this is about a
    # third less search than 4/3/2 rounds with two iterations per level start, for a style
    # distance 1-3 % higher (Starry Night, Hokusai's wave at 512x512); one round at the finest
    # level saves more but loses Hokusai's line work (+10 %).
    em_coarse: int = 3  # EM iterations at the coarsest level, one fewer per finer level ...
    em_fine: int = 2  # ... down to this many
    pm_iterations: int = 2  # PatchMatch iterations in the coarsest level's first EM round (then one)
    pm_refine: int = 1  # the same in a finer level's first round, which starts from the coarser level's matches

    def rounds(self, levels: int) -> list[int]:
        """EM rounds per level, finest first."""
        return [max(self.em_fine, self.em_coarse - (levels - 1 - i)) for i in range(levels)]
    guide_weight: float = 1.0  # guidance SSD counts this much against colour SSD
    sharp: bool = True  # votes keep each pixel's best proposal instead of the mean (see em.vote)
    keep: float = 0.0  # content fusion: after each vote, move this far back to `init`, times `keep_map`
    usage: float = 0.0  # price on often-used source patches, times the median match distance (usage.py)
    layout_keep: float = 0.0  # after each vote, the estimate's low-pass luminance moves this far to `layout`'s
    layout_sigma: float = 4.0  # px at the finest level (halved per coarser level): the scale that counts as layout


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(h, w) luma of (h, w, 3) float RGB."""
    return rgb[..., :3] @ LUMA


def match_histogram(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """x's values remapped so their distribution is ref's (quantile mapping); order is kept."""
    order = np.argsort(x, axis=None, kind="stable")
    q = np.sort(ref, axis=None)
    picks = q[np.linspace(0, len(q) - 1, x.size).round().astype(np.int64)]
    out = np.empty(x.size, np.float32)
    out[order] = picks
    return out.reshape(x.shape)


def guides(lum: np.ndarray, edge_weight: float) -> np.ndarray:
    """Guidance channels (h, w, 3) of a luminance map: the luminance, and the gradient in
    double-angle form (|g| cos 2t, |g| sin 2t), so an edge and its orientation are matched
    but its sign is not (a dark-on-light line matches a light-on-dark one)."""
    x = torch.from_numpy(np.ascontiguousarray(lum, np.float32))[None, None]
    k = torch.tensor([[1.0, 2, 1]]) / 4
    x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), (k.T @ k)[None, None])
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")[0, 0]
    gx = (xp[1:-1, 2:] - xp[1:-1, :-2]) / 2
    gy = (xp[2:, 1:-1] - xp[:-2, 1:-1]) / 2
    mag = (gx * gx + gy * gy).sqrt().clamp_min(1e-6)
    e1, e2 = (gx * gx - gy * gy) / mag, 2 * gx * gy / mag
    return np.stack([x[0, 0].numpy(), edge_weight * e1.numpy(), edge_weight * e2.numpy()], -1).astype(np.float32)


def dark_lines(lum: np.ndarray, radius: int = 2) -> np.ndarray:
    """(h, w) how far each pixel lies below its surroundings' closing (black top-hat): large on
    dark lines up to 2 * radius + 1 pixels wide (a woodcut's or an outline's line work)."""
    x = torch.from_numpy(np.ascontiguousarray(lum, np.float32))[None, None]
    k = 2 * radius + 1
    dil = F.max_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), k, stride=1)
    close = -F.max_pool2d(F.pad(-dil, (radius,) * 4, mode="replicate"), k, stride=1)
    return (close - x)[0, 0].numpy()


def edge_strength(lum: np.ndarray) -> np.ndarray:
    """(h, w) gradient magnitude of the (lightly blurred) luminance."""
    g = guides(lum, 1.0)
    return np.hypot(g[..., 1], g[..., 2])


def _upscale(idx: torch.Tensor, coarse_target: tuple[int, int], coarse_source: tuple[int, int], ty: torch.Tensor,
             tx: torch.Tensor, source: tuple[int, int]) -> torch.Tensor:
    """Initial fine matches: the parent's match doubled, plus the pixel's parity (-1 off the source)."""
    (htc, wtc), (_, wsc), (hs, ws) = coarse_target, coarse_source, source
    g = idx[(ty // 2).clamp(max=htc - 1) * wtc + (tx // 2).clamp(max=wtc - 1)]
    sy = g.div(wsc, rounding_mode="floor") * 2 + ty % 2
    sx = (g % wsc) * 2 + tx % 2
    return torch.where((sy < hs) & (sx < ws), sy * ws + sx, torch.full_like(sy, -1))


def _t(a: np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(dev).permute(2, 0, 1)


def _low(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(1, h, w) low-pass luminance of (3, h, w) RGB, or low-pass of a (1, h, w) map."""
    if x.shape[0] == 3:
        x = (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)).sum(0, keepdim=True)
    return gaussian_blur(x[None], sigma, "reflect")[0]


def _down(x: torch.Tensor) -> torch.Tensor:
    return pyramid.down_image(x, torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device), False)


def synthesize(target_guide: np.ndarray, source_image: np.ndarray, source_guide: np.ndarray,
               init: np.ndarray, seed: int = 0, settings: GuidedSettings = GuidedSettings(),
               device: str | torch.device = "cpu", progress: Progress = None,
               keep_map: np.ndarray | None = None, layout: np.ndarray | None = None) -> np.ndarray:
    """A picture laid out like `target_guide` and made of `source_image`'s patches.

    target_guide: (h, w, g) float32; source_image: (hs, ws, c) float32; source_guide:
    (hs, ws, g), the same channels computed on the source; init: (h, w, c), the starting
    estimate (its colours steer the first matches); keep_map: (h, w) in [0, 1], where the
    content fusion (settings.keep) holds the estimate to `init` (Elad and Milanfar 2017: the
    photo's edges survive without guiding every match); layout: (h, w), a luminance whose low-pass
    (settings.layout_sigma) the estimate's luminance is pulled to after every vote
    (settings.layout_keep; c must be 3), so the light and dark of the layout survive whatever
    patches are copied. Returns (h, w, c) float32: blends of source pixels, moved by the two
    fusions where they are on. Same seed, same result (per device).
    """
    s = settings
    r = s.patch // 2
    if min(source_image.shape[:2]) < s.patch + 1:
        raise ValueError("the source is smaller than a patch")
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    with torch.inference_mode():
        tg, si, sg, est0 = (_t(a, dev) for a in (target_guide, source_image, source_guide, init))
        km = _t((np.ones(init.shape[:2], np.float32) if keep_map is None else keep_map)[..., None], dev)
        if s.layout_keep > 0 and (layout is None or init.shape[-1] != 3):
            raise ValueError("layout_keep needs a layout luminance and an RGB source")
        lay = _t((np.zeros(init.shape[:2], np.float32) if layout is None else layout)[..., None], dev)
        pyr = [(tg, si, sg, est0, km, lay)]
        while len(pyr) < s.levels and min(pyr[-1][0].shape[-2:]) >= 8 * s.patch \
                and min(pyr[-1][1].shape[-2:]) >= 4 * s.patch:
            pyr.append(tuple(_down(x) for x in pyr[-1]))
        counts = s.rounds(len(pyr))
        tick = Ticker(sum(counts), progress)

        est: torch.Tensor | None = None
        prev: tuple[torch.Tensor, tuple[int, int], tuple[int, int]] | None = None
        for i in range(len(pyr) - 1, -1, -1):
            g, src, sgd, start, keep, lay = pyr[i]
            sigma = s.layout_sigma / 2 ** i
            low = _low(lay, sigma) if s.layout_keep > 0 else lay
            keep = s.keep * keep
            c, h, w = start.shape
            hs, ws = src.shape[-2:]
            kernels = basis(c, g.shape[0], s.patch, s.guide_weight).to(dev)
            ok = pyramid.erode(torch.ones((hs, ws), dtype=torch.bool, device=dev), r)
            ty, tx = (a.reshape(-1) for a in torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev),
                                                             indexing="ij"))
            field = Field(feature_map(torch.cat([src, sgd]), kernels, False), ok, ty, tx, (h, w),
                          torch.full((h * w,), -1, dtype=torch.long, device=dev), False, gen)
            t = Target(start.clone(), g, torch.ones((h, w), dtype=torch.bool, device=dev), ty, tx,
                       torch.ones((h, w), device=dev), False)
            if prev is None:
                field.random_init()
            else:
                field.set_init(_upscale(prev[0], prev[1], prev[2], ty, tx, (hs, ws)))
                field.dist = torch.zeros_like(field.dist)
                t.est = vote(src, False, field, match_weights(field, t), t, r, s.sharp)
            for it in range(counts[i]):
                field.usage = None
                field.set_targets(features_at(torch.cat([t.est, g]), kernels, ty, tx, False))
                if s.usage > 0:
                    field.usage = usage_price(field.idx, field.dist, (hs, ws), s.patch, s.usage)
                    field.dist = field.dist + field.usage.index_select(0, field.idx.clamp_min(0))
                field.iterate((s.pm_iterations if prev is None else s.pm_refine) if it == 0 else 1)
                t.est = vote(src, False, field, match_weights(field, t), t, r, s.sharp)
                t.est = t.est + keep * (start - t.est)
                if s.layout_keep > 0:
                    t.est = t.est + s.layout_keep * (low - _low(t.est, sigma))
                tick()
            est = t.est
            prev = (field.idx.clone(), (h, w), (hs, ws))
        assert est is not None
        return est.permute(1, 2, 0).cpu().numpy()
