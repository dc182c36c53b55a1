"""Texture from an example: texture optimisation (Kwatra et al. 2005) on the PatchMatch core.

The output starts as randomly placed blocks of the reference (so structure is there from
the first step and no large copy of the source sits in one place), then at every pyramid
level, coarse to fine, rounds of match (each output patch finds its nearest reference patch)
and vote (each pixel takes what its covering patches propose) run at decreasing patch sizes:
large patches settle the layout of stripes, bricks and leaves, small ones the detail. The
output grid may wrap around (a seamless tile); the reference never does, only whole patches
inside it are copied. Any output size: the field maps output pixels to reference pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import pyramid
from .em import Target, em_level
from .features import basis, feature_map
from .nnf import Field
from .progress import Progress, Ticker



@dataclass(frozen=True)
class TextureSettings:
    """Knobs of texture synthesis; the defaults are what `generate` and `pattern` use."""

    patches: tuple[int, ...] = (13, 7)  # patch sizes of the EM rounds at each level, large to small ...
    fine_patches: tuple[int, ...] = (7,)  # ... and at full size, where the layout is settled: only detail
    # is left, and the finest level costs three quarters of the time (halves a 512 px tile's time)
    em_rounds: int = 2  # EM rounds per patch size and level
    pm_iterations: int = 1  # PatchMatch iterations per EM round (the field carries over between rounds)
    min_side: int = 24  # the coarsest level keeps at least this many reference pixels on its shorter side
    max_levels: int = 4
    block: float = 0.5  # initial blocks: this share of the coarsest reference's shorter side
    sharp_levels: int = 1  # the finest levels where each pixel keeps its best proposal (see em.vote); coarser
    # levels average the proposals, so where two placed blocks disagree the votes blend and the
    # next match can find one source patch that spans the join


def _levels(ref_shape: tuple[int, int], out_shape: tuple[int, int], s: TextureSettings) -> int:
    n = 1
    while (n < s.max_levels and min(ref_shape) >> n >= s.min_side and min(out_shape) >> n >= s.min_side):
        n += 1
    return n


def _down(x: torch.Tensor, wrap: bool) -> torch.Tensor:
    return pyramid.down_image(x, torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device), wrap)


def _up(x: torch.Tensor, size: tuple[int, int], wrap: bool) -> torch.Tensor:
    """Bilinear upsampling; a wrapping image reads its opposite edge beyond its border."""
    if not wrap:
        return pyramid.upsample(x, size)
    h, w = x.shape[-2:]
    xp = F.pad(x[None], (1, 1, 1, 1), mode="circular")
    big = F.interpolate(xp, size=(size[0] + 2 * size[0] // h, size[1] + 2 * size[1] // w), mode="bilinear",
                        align_corners=False)[0]
    oy, ox = (big.shape[-2] - size[0]) // 2, (big.shape[-1] - size[1]) // 2
    return big[:, oy:oy + size[0], ox:ox + size[1]]


def _upscale(idx: torch.Tensor, coarse: tuple[int, int], coarse_src: tuple[int, int], ty: torch.Tensor,
             tx: torch.Tensor, src: tuple[int, int]) -> torch.Tensor:
    """The coarse field at the fine level: each pixel's parent match doubled plus its parity
    (sources that fall outside are replaced by random ones in Field.set_init)."""
    hc, wc = coarse
    g = idx[(ty // 2).clamp(max=hc - 1) * wc + (tx // 2).clamp(max=wc - 1)]
    sy = g.div(coarse_src[1], rounding_mode="floor") * 2 + ty % 2
    sx = g % coarse_src[1] * 2 + tx % 2
    ok = (sy < src[0]) & (sx < src[1])
    return torch.where(ok, sy * src[1] + sx, torch.full_like(sy, -1))


def random_blocks(ref: torch.Tensor, shape: tuple[int, int], block: int, gen: torch.Generator) -> torch.Tensor:
    """(c, h, w): the output tiled with block x block squares cut from random places of `ref`."""
    c, hr, wr = ref.shape
    h, w = shape
    b = max(1, min(block, hr, wr))
    ny, nx = -(-h // b), -(-w // b)
    oy = torch.randint(0, hr - b + 1, (ny, nx), generator=gen, device=gen.device).to(ref.device)
    ox = torch.randint(0, wr - b + 1, (ny, nx), generator=gen, device=gen.device).to(ref.device)
    yy, xx = torch.arange(h, device=ref.device), torch.arange(w, device=ref.device)
    by, bx = yy // b, xx // b
    sy = oy[by][:, bx] + (yy % b)[:, None]
    sx = ox[by][:, bx] + (xx % b)[None, :]
    return ref[:, sy, sx]


def synthesize(reference: np.ndarray, height: int, width: int, wrap: bool = False, seed: int = 0,
               settings: TextureSettings = TextureSettings(), device: str | torch.device = "cpu",
               progress: Progress = None) -> np.ndarray:
    """A (height, width, c) texture in the manner of `reference` (h, w, c) float32.

    wrap: the output tiles seamlessly. Same seed, same result (per device).
    """
    ref_np = np.asarray(reference, np.float32)
    if min(ref_np.shape[:2]) < min(settings.patches):
        raise ValueError(f"the reference must be at least {min(settings.patches)} pixels on each side")
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    n = _levels(ref_np.shape[:2], (height, width), settings)
    tick = Ticker(((n - 1) * len(settings.patches) + len(settings.fine_patches)) * settings.em_rounds, progress)

    with torch.inference_mode():
        refs = [torch.from_numpy(np.ascontiguousarray(ref_np)).permute(2, 0, 1).to(dev)]
        shapes = [(height, width)]
        for _ in range(n - 1):
            refs.append(_down(refs[-1], False))
            shapes.append(((shapes[-1][0] + 1) // 2, (shapes[-1][1] + 1) // 2))
        coarse = refs[-1]
        est = random_blocks(coarse, shapes[-1], max(4, round(settings.block * min(coarse.shape[-2:]))), gen)
        idx: torch.Tensor | None = None  # the last field, carried to the next patch size and level
        for lv in range(n - 1, -1, -1):
            src, (h, w) = refs[lv], shapes[lv]
            ty, tx = (a.reshape(-1) for a in torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev),
                                                             indexing="ij"))
            if est.shape[-2:] != (h, w):
                est = _up(est, (h, w), wrap)
                if idx is not None:
                    idx = _upscale(idx, shapes[lv + 1], refs[lv + 1].shape[-2:], ty, tx, src.shape[-2:])
            for p in (settings.patches if lv else settings.fine_patches):
                r = p // 2
                if min(src.shape[-2:]) <= 2 * r + 1:
                    for _ in range(settings.em_rounds):
                        tick()
                    continue
                kernels = basis(src.shape[0], 0, p, 1.0).to(dev)
                ok = pyramid.erode(torch.ones(src.shape[-2:], dtype=torch.bool, device=dev), r)
                field = Field(feature_map(src, kernels, False), ok, ty, tx, (h, w),
                              torch.full((h * w,), -1, dtype=torch.long, device=dev), wrap, gen)
                if idx is None:
                    field.random_init()
                else:
                    field.set_init(idx)
                t = Target(est, None, torch.ones((h, w), dtype=torch.bool, device=dev), ty, tx,
                           torch.ones((h, w), device=dev), wrap)
                est = em_level(src, False, field, t, kernels, settings.em_rounds, settings.pm_iterations, tick,
                               lv < settings.sharp_levels)
                idx = field.idx
    return est.permute(1, 2, 0).cpu().numpy()
