"""Run an image function over overlapping tiles and blend them without seams.

Whole-image restoration must work on a 4000x3000 photo on a CPU in bounded memory: the
network only ever sees one tile, and the tiles are blended with raised-cosine weights over
their overlaps, so no seam shows. Functions that enlarge (upscaling) return tiles `scale`
times larger; the blend then happens at the output resolution.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

TileFn = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None] | None


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Start/stop of tiles covering [0, length): every tile `tile` long (or the whole
    length), neighbours overlapping by at least `overlap`, starts spread evenly.

    `align` > 1 puts every start on a multiple of it (a JPEG block grid); the last tile
    then reaches the end and may be up to align-1 longer than `tile`.
    """
    if length <= tile:
        return [(0, length)]
    if overlap + align >= tile:
        raise ValueError(f"overlap {overlap} (+ alignment {align}) must be smaller than the tile {tile}")
    n = math.ceil((length - overlap - align + 1) / (tile - overlap - align + 1))
    n = max(n, 2)
    starts = [round(i * (length - tile) / (n - 1)) // align * align for i in range(n)]
    spans = [(s, s + tile) for s in starts]
    spans[-1] = (starts[-1], length)
    return spans


def _ramp(length: int, ramp: int, lead: bool, trail: bool, device: torch.device) -> torch.Tensor:
    """1-D weights: 1 inside, rising as a raised cosine over `ramp` samples at an edge that
    has a neighbour (image borders keep full weight)."""
    w = torch.ones(length, dtype=torch.float32, device=device)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        t = (torch.arange(ramp, dtype=torch.float32, device=device) + 0.5) / ramp
        rise = 0.5 - 0.5 * torch.cos(math.pi * t)
        if lead:
            w[:ramp] = rise
        if trail:
            w[length - ramp:] = rise.flip(0)
    return w


def tile_count(height: int, width: int, tile: int, overlap: int, align: int = 1) -> int:
    return len(tile_spans(height, tile, overlap, align)) * len(tile_spans(width, tile, overlap, align))


@torch.no_grad()
def run_tiled(fn: TileFn, x: torch.Tensor, tile: int = 512, overlap: int = 32, scale: int = 1,
              progress: Progress = None, align: int = 1) -> torch.Tensor:
    """Apply `fn` to overlapping tiles of x (B, C, H, W) and blend the results.

    `fn` maps a (B, C, th, tw) tile to (B, C', th*scale, tw*scale). An image no larger
    than one tile is a single call, so tiled and untiled agree exactly there. `progress`
    is called after every tile with (done, total); it may raise to cancel. `align`: see
    `tile_spans`.
    """
    if x.dim() != 4:
        raise ValueError("run_tiled expects a (B, C, H, W) tensor")
    _, _, h, w = x.shape
    ys, xs = tile_spans(h, tile, overlap, align), tile_spans(w, tile, overlap, align)
    total = len(ys) * len(xs)
    if total == 1:
        out = fn(x)
        if progress is not None:
            progress(1, 1)
        return out
    out = weight = None
    done = 0
    for iy, (y0, y1) in enumerate(ys):
        wy = _ramp((y1 - y0) * scale, overlap * scale, iy > 0, iy < len(ys) - 1, x.device)
        for ix, (x0, x1) in enumerate(xs):
            piece = fn(x[:, :, y0:y1, x0:x1])
            expect = ((y1 - y0) * scale, (x1 - x0) * scale)
            if tuple(piece.shape[-2:]) != expect:
                raise ValueError(f"tile function returned {tuple(piece.shape[-2:])}, expected {expect}")
            if out is None:
                out = torch.zeros(piece.shape[0], piece.shape[1], h * scale, w * scale, dtype=torch.float32,
                                  device=x.device)
                weight = torch.zeros(1, 1, h * scale, w * scale, dtype=torch.float32, device=x.device)
            wx = _ramp((x1 - x0) * scale, overlap * scale, ix > 0, ix < len(xs) - 1, x.device)
            wt = wy[:, None] * wx[None, :]
            sy, sx = slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale)
            out[:, :, sy, sx] += piece.to(out.device, torch.float32) * wt
            weight[:, :, sy, sx] += wt
            done += 1
            if progress is not None:
                progress(done, total)
    return out / weight.clamp_min(1e-8)
