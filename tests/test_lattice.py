"""Periodic references: their repeat lattice is found, and grown tiles stay in phase with it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from engine.synthesis.lattice import PhaseLock, find_lattice
from engine.synthesis.texture import TextureSettings, synthesize


def checks(side: int, period: int = 16, shift: int = 4) -> np.ndarray:
    """Two-colour check with a darker crossing, its edges through the middle of the squares."""
    yy, xx = np.mgrid[:side, :side] + shift
    a, b = (yy // (period // 2)) % 2, (xx // (period // 2)) % 2
    band = np.float32([0.75, 0.2, 0.2])
    return np.where((a + b)[..., None] == 2, band * 0.7,
                    np.where((a + b)[..., None] == 1, band, np.float32([0.95, 0.93, 0.88]))).astype(np.float32)


def bricks(side: int, h: int = 12, w: int = 24, seed: int = 0) -> np.ndarray:
    """Running-bond bricks of varied reds in grey mortar (one row offset by half a brick)."""
    rng = np.random.default_rng(seed)
    out = np.full((side, side, 3), 0.65, np.float32)
    for row in range(side // h + 1):
        off = (w // 2) * (row % 2)
        for col in range(-1, side // w + 1):
            y0, x0 = row * h, col * w + off
            ys, xs = slice(max(0, y0 + 1), min(side, y0 + h)), slice(max(0, x0 + 1), min(side, x0 + w))
            out[ys, xs] = np.float32([0.6, 0.25, 0.18]) * rng.uniform(0.75, 1.15)
    return out


def vectors(lat) -> set[tuple[int, int]]:
    """Both vectors up to sign."""
    return {tuple(int(abs(v)) for v in vec) if vec[0] >= 0 else tuple(int(-v) for v in vec) for vec in (lat.a, lat.b)}


def test_checks_and_bricks_have_their_lattice():
    assert vectors(find_lattice(checks(96))) == {(0, 16), (16, 0)}
    lat = find_lattice(bricks(120))
    assert lat is not None
    # running bond: one row down and half a brick across, either way (their difference is a brick's width)
    assert {(abs(int(lat.a[0])), abs(int(lat.a[1]))), (abs(int(lat.b[0])), abs(int(lat.b[1])))} == {(12, 12)}


@pytest.mark.parametrize("make", [
    lambda: np.repeat(np.linspace(0, 1, 96, dtype=np.float32)[None, :, None], 96, 0).repeat(3, 2),  # a ramp
    lambda: ndimage.gaussian_filter(np.random.default_rng(0).random((96, 96, 3)), (2, 2, 0)).astype(np.float32),
    lambda: np.where((np.mgrid[:96, :96][1] // 6) % 2 == 0, 0.9, 0.1).astype(np.float32)[..., None].repeat(3, 2),
], ids=["ramp", "noise", "stripes"])
def test_smooth_random_and_one_way_references_have_none(make):
    """Stripes repeat one way only: no lattice of repeats (their tiles must be free to bend)."""
    assert find_lattice(make()) is None


def test_snap_keeps_the_offset_modulo_the_lattice():
    lock = PhaseLock(find_lattice(checks(96)), (0, 0), torch.device("cpu"))
    ty, tx = torch.tensor([0, 5, 40]), torch.tensor([0, 9, 3])
    sy, sx = lock.snap(torch.tensor([37, 20, 70]), torch.tensor([11, 60, 2]), ty, tx)
    assert torch.all((sy - ty) % 16 == 0) and torch.all((sx - tx) % 16 == 0)
    assert torch.all((sy - torch.tensor([37, 20, 70])).abs() <= 8)  # the nearest in-phase source


def jogs(tile: np.ndarray, period: tuple[int, int]) -> float:
    """Mean difference between the tile and itself one repeat further (0: the pattern never shifts)."""
    return float(np.abs(tile - np.roll(tile, period, axis=(0, 1))).mean())


def test_a_tile_grown_from_checks_stays_in_phase(one_torch_thread):
    """Free patch synthesis shifts the check where patches from different places meet; the
    phase lock copies only in-phase patches, so the tile is the check itself, repeated."""
    ref = checks(96)
    free = synthesize(ref, 128, 128, wrap=True, seed=2, settings=TextureSettings(keep_phase=False))
    locked = synthesize(ref, 128, 128, wrap=True, seed=2)
    assert jogs(locked, (16, 16)) < 1e-4
    assert jogs(free, (16, 16)) > 0.02


def test_grown_bricks_keep_their_rows_and_vary(one_torch_thread):
    ref = bricks(120)
    out = synthesize(ref, 96, 96, wrap=True, seed=1)
    mortar = out[..., 1] > 0.5  # the grey lines (the bricks are far less green)
    rows = mortar.mean(1)
    assert np.sort(rows)[-96 // 12:].min() > 0.9  # every brick row has its full mortar line: nothing shifted
    colours = {round(float(out[y, x, 0]), 2) for y in range(6, 96, 12) for x in range(6, 96, 12)}
    assert len(colours) > 3  # the bricks' colours still vary: many repeats were copied, not one
