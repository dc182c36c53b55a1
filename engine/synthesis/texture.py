"""Texture from an example: texture optimisation (Kwatra et al. 2005) on the PatchMatch core.

The output starts as randomly placed blocks of the reference (so structure is there from
the first step and no large copy of the source sits in one place), then at every pyramid
level, coarse to fine, rounds of match (each output patch finds its nearest reference patch)
and vote (each pixel takes what its covering patches propose) run at decreasing patch sizes:
large patches settle the layout of stripes, bricks and leaves, small ones the detail. The
output grid may wrap around (a seamless tile); the reference never does, only whole patches
inside it are copied. Any output size: the field maps output pixels to reference pixels.
Only target patches on a lattice are matched (every second pixel, as Kwatra et al. space theirs
a fraction of a patch apart): a quarter of the matching for the same layout. The coarse levels
overlap-add the matched source patches and then take the reference's colour histogram (else the
commonest patches win: a Starry Night crop lost its moon, a Great Wave crop its foam); the finest
level keeps each pixel's best proposal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import pyramid
from .em import Target, Tick, em_level, match_weights
from .features import basis, feature_map, features_at
from .lattice import PhaseLock, find_lattice
from .nnf import JUMPS, Field
from .progress import Progress, Ticker

BAND_VALUES = 1 << 24  # overlap-add gathers the patches of a band of lattice rows of about this many values


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
    lattice: int = 2  # spacing of the matched target patches (1: every pixel; 2: a quarter of the matching)
    keep_phase: bool = True  # a periodic reference grown into a tile of whole repeats stays in phase (lattice.py)


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


def _lattice(h: int, w: int, s: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Target centres every s pixels from the origin, row-major, and the lattice's shape."""
    ly, lx = torch.arange(0, h, s, device=dev), torch.arange(0, w, s, device=dev)
    ty, tx = (a.reshape(-1) for a in torch.meshgrid(ly, lx, indexing="ij"))
    return ty, tx, (len(ly), len(lx))


def _densify(idx: torch.Tensor, lat: tuple[int, int], s: int, shape: tuple[int, int],
             src: tuple[int, int]) -> torch.Tensor:
    """A field for every pixel from a lattice field: the nearest lattice point's match, shifted
    by the offset to it (-1 where that falls outside the source; Field.set_init replaces those)."""
    (ny, nx), (h, w), (hs, ws) = lat, shape, src
    yy, xx = torch.arange(h, device=idx.device), torch.arange(w, device=idx.device)
    ly, lx = ((yy + s // 2) // s).clamp(max=ny - 1), ((xx + s // 2) // s).clamp(max=nx - 1)
    g = idx.view(ny, nx)[ly][:, lx]
    sy = g.div(ws, rounding_mode="floor") + (yy - ly * s)[:, None]
    sx = g % ws + (xx - lx * s)[None, :]
    ok = (sy >= 0) & (sy < hs) & (sx >= 0) & (sx < ws)
    return torch.where(ok, sy * ws + sx, torch.full_like(sy, -1)).reshape(-1)


def overlap_add(src: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor, est: torch.Tensor,
                lat: tuple[int, int], s: int, p: int, wrap: bool) -> torch.Tensor:
    """The vote of a lattice field: every pixel the weighted mean of the matched p x p source
    patches (whole patches inside `src`) of the lattice targets covering it; `est` where none
    carries weight. One gather and one fold per band of lattice rows."""
    c, hs, ws = src.shape
    h, w = est.shape[-2:]
    (ny, nx), r = lat, p // 2
    d = torch.arange(p, device=src.device) - r
    off = (d[:, None] * ws + d).reshape(-1)  # flat offsets of a patch's pixels from its centre
    flat = torch.cat([src.reshape(c, -1), torch.ones((1, hs * ws), device=src.device)])  # last row: the weight
    canvas = torch.zeros((c + 1, h + 2 * r, w + 2 * r), device=src.device)
    band = max(1, BAND_VALUES // ((c + 1) * p * p * nx))
    for a in range(0, ny, band):
        b = min(ny, a + band)
        sel = slice(a * nx, b * nx)
        q = idx[sel][None, :] + off[:, None]  # (p * p, n) source pixels
        blocks = flat[:, q] * weight[sel]  # (c + 1, p * p, n)
        out = F.fold(blocks.reshape((c + 1) * p * p, -1)[None], ((b - a - 1) * s + p, (nx - 1) * s + p), p, stride=s)[0]
        canvas[:, a * s:a * s + out.shape[1], :out.shape[2]] += out
    if wrap:  # what spills over one edge lands on the opposite one
        rows = (torch.arange(h + 2 * r, device=src.device) - r) % h
        cols = (torch.arange(w + 2 * r, device=src.device) - r) % w
        acc = torch.zeros((c + 1, h, w + 2 * r), device=src.device).index_add_(1, rows, canvas)
        acc = torch.zeros((c + 1, h, w), device=src.device).index_add_(2, cols, acc)
    else:
        acc = canvas[:, r:r + h, r:r + w]
    wsum = acc[c:]
    return torch.where(wsum > 0, acc[:c] / wsum.clamp_min(1e-30), est)


def match_histograms(est: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Each channel of `est` takes the values of `src`'s at the same ranks: the reference's
    colour proportions, which matching alone lets drift towards its commonest patches
    (Kaspar et al. 2015)."""
    c = est.shape[0]
    e, s = est.reshape(c, -1), src.reshape(c, -1)
    q = torch.linspace(0, s.shape[1] - 1, e.shape[1], device=est.device).round().long()
    out = torch.empty_like(e).scatter_(1, e.argsort(1), s.sort(1).values[:, q])
    return out.view_as(est)


def _lattice_em(src: torch.Tensor, field: Field, t: Target, kernels: torch.Tensor, lat: tuple[int, int], s: int,
                rounds: int, pm_iterations: int, tick: Tick) -> torch.Tensor:
    """em.em_level for lattice targets: rounds of match, then overlap-add."""
    for it in range(rounds):
        field.set_targets(features_at(t.est, kernels, t.ty, t.tx, t.wrap))
        field.iterate(pm_iterations if it == 0 else 1)
        t.est = match_histograms(overlap_add(src, field.idx, match_weights(field, t), t.est, lat, s, kernels.shape[-1],
                                             t.wrap), src)
        tick()
    return t.est


def _phase_locks(ref: np.ndarray, shapes: list[tuple[int, int]], wrap: bool, s: TextureSettings,
                 dev: torch.device) -> list[PhaseLock | None]:
    """Per level (0 = full size): the phase lock where the reference repeats on a lattice whose
    vectors are whole pixels at that level and whose repeats fill that level's tile exactly."""
    found = find_lattice(ref) if wrap and s.keep_phase else None
    locks: list[PhaseLock | None] = []
    for lv, (h, w) in enumerate(shapes):
        lat = found.scaled(0.5 ** lv) if found is not None else None
        whole = lat is not None and all(float(v).is_integer() for v in (*lat.a, *lat.b))
        locks.append(PhaseLock(lat, (0, 0), dev) if whole and lat.tiles(h, w) else None)
    return locks


def _block_axis(n_px: int, block: int, wrap: bool, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per pixel along one axis: its block's number and its place in the block; and the block count.
    On a torus the blocks divide the side evenly (sizes differ by at most a pixel) and start at a
    random offset, so the wrap-around edge is an ordinary line, not always a join between blocks
    (joins outlive the synthesis as faint steps: Great Wave tiles, 1.42 on the block rows against
    0.8 on others, always at the edge)."""
    pos = torch.arange(n_px, device=gen.device)
    if not wrap:
        return pos // block, pos % block, -(-n_px // block)
    count = max(1, round(n_px / block))
    u = (pos - int(torch.randint(0, n_px, (1,), generator=gen, device=gen.device))) % n_px
    number = u * count // n_px
    start = -((-number * n_px) // count)  # the first u of each block: ceil(number * n_px / count)
    return number, u - start, count


def random_blocks(ref: torch.Tensor, shape: tuple[int, int], block: int, gen: torch.Generator,
                  wrap: bool = False) -> torch.Tensor:
    """(c, h, w): the output tiled with block x block squares cut from random places of `ref`."""
    c, hr, wr = ref.shape
    b = max(1, min(block, hr - 1, wr - 1))
    (by, ly, ny), (bx, lx, nx) = (_block_axis(n, b, wrap, gen) for n in shape)
    span_y, span_x = int(ly.max()) + 1, int(lx.max()) + 1
    oy = torch.randint(0, hr - span_y + 1, (ny, nx), generator=gen, device=gen.device)
    ox = torch.randint(0, wr - span_x + 1, (ny, nx), generator=gen, device=gen.device)
    sy = (oy[by][:, bx] + ly[:, None]).to(ref.device)
    sx = (ox[by][:, bx] + lx[None, :]).to(ref.device)
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
        locks = _phase_locks(ref_np, shapes, wrap, settings, dev)
        est = random_blocks(coarse, shapes[-1], max(4, round(settings.block * min(coarse.shape[-2:]))), gen, wrap)
        dense: torch.Tensor | None = None  # the last field at every pixel, carried to the next patch size and level
        for lv in range(n - 1, -1, -1):
            src, (h, w) = refs[lv], shapes[lv]
            if est.shape[-2:] != (h, w):
                est = _up(est, (h, w), wrap)
                if dense is not None:
                    ay, ax = (a.reshape(-1) for a in torch.meshgrid(torch.arange(h, device=dev),
                                                                     torch.arange(w, device=dev), indexing="ij"))
                    dense = _upscale(dense, shapes[lv + 1], refs[lv + 1].shape[-2:], ay, ax, src.shape[-2:])
            sharp = lv < settings.sharp_levels
            step = settings.lattice
            ty, tx, lat = _lattice(h, w, step, dev)
            for p in (settings.patches if lv else settings.fine_patches):
                r = p // 2
                if min(src.shape[-2:]) <= 2 * r + 1:
                    for _ in range(settings.em_rounds):
                        tick()
                    continue
                kernels = basis(src.shape[0], 0, p, 1.0).to(dev)
                ok = pyramid.erode(torch.ones(src.shape[-2:], dtype=torch.bool, device=dev), r)
                field = Field(feature_map(src, kernels, False), ok, ty, tx, (h, w),
                              torch.full((h * w,), -1, dtype=torch.long, device=dev), wrap, gen,
                              tuple(j * step for j in JUMPS), locks[lv])
                if dense is None:
                    field.random_init()
                else:
                    field.set_init(dense[ty * w + tx])
                t = Target(est, None, torch.ones((h, w), dtype=torch.bool, device=dev), ty, tx,
                           torch.ones((h, w), device=dev), wrap)
                if sharp:
                    est = em_level(src, False, field, t, kernels, settings.em_rounds, settings.pm_iterations, tick,
                                   sharp)
                else:
                    est = _lattice_em(src, field, t, kernels, lat, step, settings.em_rounds, settings.pm_iterations,
                                      tick)
                dense = _densify(field.idx, lat, step, (h, w), src.shape[-2:])
    return est.permute(1, 2, 0).cpu().numpy()
