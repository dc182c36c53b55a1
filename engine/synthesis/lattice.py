"""Periodic references: find their lattice, and keep synthesised patches in phase with it.

Patch synthesis from a strictly periodic reference (checks, bricks, a weave) assembles the
output from patches copied from many places; two neighbouring regions that copy the pattern
at different phases meet in a visible jog (a half-square shift of a check, a brick cut in
two). When the reference repeats on a lattice, every target may only take sources whose
offset from it is the same modulo the lattice: the field then chooses *which* repeat to copy
(the bricks' colours still vary) but never shifts the pattern. That is only possible on a
wrap-around tile whose sides are themselves lattice vectors; elsewhere the lock is not used.

Detection: the normalised autocorrelation of the reference's luminance; the two shortest
independent offsets where it peaks (a local maximum well above the values on the way from the
origin) are the lattice. Smooth or irregular references (paintings, photos) have no such
peaks and get no lattice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PEAK_MIN = 0.6  # normalised autocorrelation a repeat must reach (varied brick colours: ~0.8; paintings: no peak)
DIP_MIN = 0.3  # ... and by how much it must rise above the lowest value on the straight way from the origin
MIN_REPEATS = 2.5  # a lattice vector fits at least this many times into the reference (else too few to trust)
MIN_PERIOD = 3  # shorter offsets are the image's own smoothness, not a repeat


@dataclass(frozen=True)
class Lattice:
    """Two independent (dy, dx) repeat vectors, in pixels of the image they were found in."""

    a: tuple[float, float]
    b: tuple[float, float]

    def scaled(self, factor: float) -> "Lattice":
        return Lattice((self.a[0] * factor, self.a[1] * factor), (self.b[0] * factor, self.b[1] * factor))

    def basis(self) -> np.ndarray:
        """Columns a and b: position = basis @ (lattice coordinates)."""
        return np.array([[self.a[0], self.b[0]], [self.a[1], self.b[1]]], np.float64)

    def tiles(self, height: int, width: int, tol: float = 1e-3) -> bool:
        """Whether a (height, width) wrap-around tile holds whole repeats: both of its sides are
        integer combinations of the lattice vectors."""
        inv = np.linalg.inv(self.basis())
        coords = inv @ np.array([[height, 0.0], [0.0, width]])
        return bool(np.all(np.abs(coords - np.round(coords)) < tol))


def _autocorrelation(grey: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation over offsets (-h/2..h/2, -w/2..w/2), the overlap only (no wrap)."""
    h, w = grey.shape
    g = grey - grey.mean()
    fh, fw = 2 * h, 2 * w
    spec = np.fft.rfft2(g, (fh, fw))
    num = np.fft.irfft2(spec * np.conj(spec), (fh, fw))
    ones = np.fft.rfft2(np.ones_like(g), (fh, fw))
    count = np.fft.irfft2(ones * np.conj(ones), (fh, fw))
    sq = np.fft.rfft2(g * g, (fh, fw))
    energy = np.fft.irfft2(sq * np.conj(ones), (fh, fw))  # sum of g^2 over each overlap (one side)
    energy2 = np.fft.irfft2(ones * np.conj(sq), (fh, fw))  # ... and the other side
    corr = num / np.sqrt(np.maximum(energy * energy2, 1e-12))
    corr = np.where(count > 0.25 * h * w, corr, 0.0)
    corr = np.fft.fftshift(corr)
    cy, cx = fh // 2, fw // 2
    return corr[cy - h // 2:cy + h // 2 + 1, cx - w // 2:cx + w // 2 + 1]


def _on_the_way(corr: np.ndarray, c: tuple[int, int], d: tuple[int, int]) -> float:
    """The lowest autocorrelation on the segment from the origin to offset d."""
    n = max(abs(d[0]), abs(d[1]))
    t = np.linspace(0.0, 1.0, n + 1)[1:-1]
    if len(t) == 0:
        return 1.0
    ys = np.round(c[0] + t * d[0]).astype(int)
    xs = np.round(c[1] + t * d[1]).astype(int)
    return float(corr[ys, xs].min())


def find_lattice(reference: np.ndarray) -> Lattice | None:
    """The repeat lattice of an (h, w[, c]) image in [0, 1], or None when it does not repeat."""
    ref = np.asarray(reference, np.float64)
    grey = ref.mean(axis=2) if ref.ndim == 3 else ref
    if grey.std() < 1e-3:
        return None
    corr = _autocorrelation(grey)
    c = (corr.shape[0] // 2, corr.shape[1] // 2)
    pad = np.pad(corr, 1, constant_values=-np.inf)
    neighbours = np.stack([pad[1 + dy:1 + dy + corr.shape[0], 1 + dx:1 + dx + corr.shape[1]]
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    peaks = (corr >= neighbours.max(0)) & (corr >= PEAK_MIN)
    limit = np.array(grey.shape) / MIN_REPEATS
    found: list[tuple[float, tuple[int, int]]] = []
    for y, x in zip(*np.nonzero(peaks)):
        d = (int(y - c[0]), int(x - c[1]))
        if d[0] < 0 or (d[0] == 0 and d[1] <= 0):  # one of each pair of opposite offsets
            continue
        if max(abs(d[0]), abs(d[1])) < MIN_PERIOD or abs(d[0]) > limit[0] or abs(d[1]) > limit[1]:
            continue
        if corr[y, x] - _on_the_way(corr, c, d) < DIP_MIN:
            continue
        found.append((float(np.hypot(*d)), d))
    found.sort()
    if not found:
        return None
    a = found[0][1]
    for _, b in found[1:]:
        if abs(a[0] * b[1] - a[1] * b[0]) > 0.5:  # independent of a
            a, b = _reduced(a, b)
            if min(np.hypot(*a), np.hypot(*b)) < MIN_PERIOD:  # a ridge (stripes), not a lattice of repeats
                return None
            return Lattice((float(a[0]), float(a[1])), (float(b[0]), float(b[1])))
    return None


def _reduced(a: tuple[int, int], b: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The same lattice from its two shortest vectors (Lagrange-Gauss reduction): offsets along
    a stripe's ridge can peak at two long vectors whose difference is tiny."""
    def norm(v: tuple[int, int]) -> int:
        return v[0] * v[0] + v[1] * v[1]
    if norm(a) > norm(b):
        a, b = b, a
    while True:
        k = round((a[0] * b[0] + a[1] * b[1]) / norm(a))
        b = (b[0] - k * a[0], b[1] - k * a[1])
        if norm(b) >= norm(a):
            return a, b
        a, b = b, a


class PhaseLock:
    """Snaps source candidates so that source - target is the same modulo the lattice.

    Built per pyramid level with the lattice in that level's pixels; `offset` is the fixed
    source-minus-target offset the whole field keeps (modulo the lattice).
    """

    def __init__(self, lattice: Lattice, offset: tuple[int, int], device: torch.device):
        basis = lattice.basis()
        self.basis = torch.tensor(basis, dtype=torch.float64, device=device)
        self.inverse = torch.tensor(np.linalg.inv(basis), dtype=torch.float64, device=device)
        self.offset = torch.tensor(offset, dtype=torch.float64, device=device)

    def snap(self, sy: torch.Tensor, sx: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The in-phase source nearest to (sy, sx) for targets (ty, tx), rounded to pixels."""
        d = torch.stack([sy - ty, sx - tx]).double() - self.offset[:, None]
        k = torch.round(self.inverse @ d)
        snapped = self.basis @ k + self.offset[:, None]
        return ty + torch.round(snapped[0]).long(), tx + torch.round(snapped[1]).long()


def _axis_autocorrelation(grey: np.ndarray, limit: int) -> np.ndarray:
    """Normalised autocorrelation of the rows of `grey` (h, w) at shifts 0..limit along x, the
    overlap only (no wrap): the 2-D autocorrelation's row through the origin, by 1-D transforms."""
    g = grey - grey.mean()
    n = g.shape[1]
    spec = np.fft.rfft(g, 2 * n, axis=1)
    num = np.fft.irfft(spec * np.conj(spec), 2 * n, axis=1).sum(0)[:limit + 1]
    sq = np.cumsum(np.concatenate([np.zeros(1), (g * g).sum(0)]))  # energies of the column ranges
    d = np.arange(limit + 1)
    left, right = sq[n - d] - sq[0], sq[n] - sq[d]  # columns 0..n-d-1 and d..n-1
    return num / np.sqrt(np.maximum(left * right, 1e-12))


def _peak_near(corr: np.ndarray, at: float, reach: int) -> float:
    """The sub-pixel position of the highest value of `corr` within `reach` of `at`: the apex of
    the V through it and its neighbours (hard-edged stripes correlate in a triangle, which a
    parabola places 0.1 px off)."""
    lo, hi = max(1, int(np.floor(at)) - reach), min(len(corr) - 2, int(np.ceil(at)) + reach)
    i = lo + int(np.argmax(corr[lo:hi + 1]))
    a, b, c = corr[i - 1], corr[i], corr[i + 1]
    den = 2 * (b - min(a, c))
    return float(i + ((c - a) / den if den > 0 else 0.0))


def axis_period(reference: np.ndarray, axis: int) -> float | None:
    """The repeat period (pixels, sub-pixel) of an (h, w[, c]) image along one axis (0: down,
    1: across), or None when it does not clearly repeat along it. Oblique stripes repeat along
    both axes, vertical ones only across, a check or a brick bond along both; paintings and photos
    have no such peak. The repeat must fit four times into the side and still correlate at its
    furthest multiple within half the side, where it is refined (a 0.1 px error would add up to a
    visible jog over a dozen repeats)."""
    ref = np.asarray(reference, np.float64)
    grey = ref.mean(axis=2) if ref.ndim == 3 else ref
    grey = grey if axis == 1 else grey.T
    n = grey.shape[1]
    reach = n // 2 - 1  # the furthest shift compared (half the side overlaps)
    if grey.std() < 1e-3 or reach < 2 * (MIN_PERIOD + 1):
        return None
    corr = _axis_autocorrelation(grey, reach + 1)
    low = np.minimum.accumulate(corr)
    for d in range(MIN_PERIOD, reach // 2 + 1):
        if corr[d] >= PEAK_MIN and corr[d] >= corr[d - 1] and corr[d] >= corr[d + 1] and corr[d] - low[d] >= DIP_MIN:
            period = _peak_near(corr, d, 0)
            m = int(reach // period)
            far = _peak_near(corr, m * period, 1)
            if corr[int(round(far))] < PEAK_MIN:  # a few look-alike shapes (a fence's rails), not a repeat
                return None
            return far / m
    return None
