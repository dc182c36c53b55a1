"""A PatchMatch nearest-neighbour field (Barnes et al. 2009), vectorised over all targets.

Every target patch centre holds the flat index of a source patch centre and the feature
distance between the two. One iteration improves all targets at once:
- propagation: a target tries its neighbour's match shifted back by the offset between them,
  for neighbours 8, 4, 2 and 1 pixels away in the four directions (a jump-flood schedule:
  a good match spreads over 15 pixels per iteration instead of one, and the grid is
  updated after each jump so improvements chain);
- random search: a target tries a random source around its current match, in a window
  halving from the whole source down to one pixel.
The source and target grids may differ (texture synthesis) or be one image (completion).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .lattice import PhaseLock

JUMPS = (8, 4, 2, 1)
DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))
LOCK_TRIES = 8  # random in-phase starts drawn before a locked field gives up on a target (then unusable)
NEAR_REACH = 3.0  # the near price stops growing this many scales away


def on_grid(y: torch.Tensor, x: torch.Tensor, h: int, w: int, wrap: bool
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coordinates brought onto an (h, w) grid (wrapped around, or clamped to its edge) and
    whether each was on it to begin with (always, when it wraps)."""
    if wrap:
        return y % h, x % w, torch.ones_like(y, dtype=torch.bool)
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    return y.clamp(0, h - 1), x.clamp(0, w - 1), inside


def near_price(dy: torch.Tensor, dx: torch.Tensor, weight: float, scale: float, free: float = 0.0,
               inside: float = 0.0) -> torch.Tensor:
    """weight * ((d - free)+ ** 2 + inside * d ** 2), d = |(dy, dx)| / scale for a source that far
    from its target, capped at NEAR_REACH: a far source must match that much better. free = 0:
    weight * d ** 2; within `free` only the `inside` share of that (a tie-breaker) is paid."""
    d = ((dy.float() ** 2 + dx.float() ** 2).sqrt() / max(scale, 1.0)).clamp(max=NEAR_REACH)
    if free <= 0:
        return weight * d ** 2
    return weight * ((d - free).clamp_min(0) ** 2 + inside * d ** 2)


class Field:
    """Matches from target centres (ty, tx) on a (ht, wt) grid to valid centres of a (hs, ws) source.

    src: (hs * ws, dims) source descriptors; ok: (hs, ws) bool, the centres that may be copied;
    grid: (ht * wt,) source index per target pixel, the field propagation reads; pixels that are
    not targets keep what the caller put there (-1: nothing; in completion, the identity).
    jumps: the propagation distances; targets on a lattice of spacing s need multiples of s.
    lock: keeps every candidate in phase with a periodic source (lattice.PhaseLock), or None.
    near: (weight, scale[, free, inside]): near_price on a match d pixels (Euclidean) away from its target
    (same grid for source and target), or None.
    """

    def __init__(self, src: torch.Tensor, ok: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor,
                 target_shape: tuple[int, int], grid: torch.Tensor, wrap: bool, generator: torch.Generator,
                 jumps: tuple[int, ...] = JUMPS, lock: PhaseLock | None = None,
                 near: tuple[float, ...] | None = None):
        self.src, self.hs, self.ws = src, ok.shape[0], ok.shape[1]
        self.ok = ok.reshape(-1)
        self.valid_idx = torch.nonzero(self.ok).squeeze(1)
        self.ty, self.tx, (self.ht, self.wt) = ty, tx, target_shape
        self.tflat = ty * self.wt + tx
        self.grid, self.wrap, self.gen, self.jumps = grid, wrap, generator, jumps
        self.lock, self.near = lock, near
        self.usage: torch.Tensor | None = None  # (hs * ws,) price per source centre (see usage.py), or None
        self.idx = torch.zeros_like(ty)
        self.dist = torch.full(ty.shape, float("inf"), device=ty.device)
        self.tgt = torch.zeros((len(ty), src.shape[1]), device=src.device)

    @property
    def empty(self) -> bool:
        return len(self.valid_idx) == 0

    def randint(self, low: int, high: int, n: int) -> torch.Tensor:
        return torch.randint(low, high, (n,), generator=self.gen, device=self.gen.device).to(self.ty.device)

    def random_init(self, which: torch.Tensor | None = None) -> None:
        """Uniformly random valid sources for all targets (or those where `which` is set)."""
        pick = self.valid_idx[self.randint(0, len(self.valid_idx), len(self.ty))]
        if self.lock is not None:  # in phase: retry the few that snap off the usable area
            for _ in range(LOCK_TRIES):
                pick, usable = self._source(pick.div(self.ws, rounding_mode="floor"), pick % self.ws)
                if bool(usable.all()):
                    break
                pick = torch.where(usable, pick, self.valid_idx[self.randint(0, len(self.valid_idx), len(self.ty))])
        self.idx = pick if which is None else torch.where(which, pick, self.idx)
        self.grid[self.tflat] = self.idx

    def set_init(self, idx: torch.Tensor) -> None:
        """Start from given sources; invalid ones are replaced by random valid ones."""
        self.idx = idx.clone()
        bad = idx < 0
        if self.lock is not None:
            self.idx, usable = self._source(idx.clamp_min(0).div(self.ws, rounding_mode="floor"), idx.clamp_min(0) % self.ws)
            bad |= ~usable
        bad |= ~self.ok[self.idx.clamp(0, len(self.ok) - 1)]
        if bool(bad.any()):
            self.random_init(bad)
        else:
            self.grid[self.tflat] = self.idx

    def set_targets(self, tgt: torch.Tensor) -> None:
        """New target descriptors (the estimate changed): distances are recomputed."""
        self.tgt = tgt
        self.dist = self.distance(self.idx)

    def distance(self, cand: torch.Tensor) -> torch.Tensor:
        cand = cand.clamp(0, len(self.ok) - 1)
        d = self.tgt - self.src.index_select(0, cand)
        d = (d * d).sum(1)
        if self.near is not None:
            d = d + near_price(cand.div(self.ws, rounding_mode="floor") - self.ty, cand % self.ws - self.tx, *self.near)
        if self.usage is not None:
            d = d + self.usage.index_select(0, cand)
        return d

    def _source(self, sy: torch.Tensor, sx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat source index and whether it may be used (in phase, where the field is locked)."""
        if self.lock is not None:
            sy, sx = self.lock.snap(sy, sx, self.ty, self.tx)
        sy, sx, inside = on_grid(sy, sx, self.hs, self.ws, self.wrap)
        cand = sy * self.ws + sx
        return cand, inside & self.ok[cand]

    def _try(self, cand: torch.Tensor, usable: torch.Tensor) -> None:
        d = torch.where(usable, self.distance(cand), torch.full_like(self.dist, float("inf")))
        better = d < self.dist
        self.idx = torch.where(better, cand, self.idx)
        self.dist = torch.where(better, d, self.dist)

    def propagate(self, reverse: bool = False) -> None:
        for j in (self.jumps[::-1] if reverse else self.jumps):
            for dy, dx in DIRECTIONS:
                qy, qx, inside = on_grid(self.ty + dy * j, self.tx + dx * j, self.ht, self.wt, self.wrap)
                g = self.grid[qy * self.wt + qx]
                cand, usable = self._source(g.div(self.ws, rounding_mode="floor") - dy * j, g % self.ws - dx * j)
                self._try(cand, usable & inside & (g >= 0))
            self.grid[self.tflat] = self.idx

    def search(self) -> None:
        radius = max(self.hs, self.ws)
        sy, sx = self.idx.div(self.ws, rounding_mode="floor"), self.idx % self.ws
        n = len(self.idx)
        while radius >= 1:
            cand, usable = self._source(sy + self.randint(-radius, radius + 1, n), sx + self.randint(-radius, radius + 1, n))
            self._try(cand, usable)
            radius //= 2
        self.grid[self.tflat] = self.idx

    def iterate(self, n: int) -> None:
        """n PatchMatch iterations (propagation, then random search), alternating the jump order."""
        for it in range(n):
            self.propagate(reverse=bool(it % 2))
            self.search()
