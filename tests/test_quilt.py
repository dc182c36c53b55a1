"""Seamless tiles quilted from the image's own strips (engine/synthesis/quilt.py)."""
from __future__ import annotations

import numpy as np

from bench.metrics import dominant_frequency, wrap_seam_ratio
from engine.synthesis.lattice import axis_period
from engine.synthesis.quilt import closed_cut, make_tileable, whole_repeats
from tests.test_pattern import grain, stripes


def test_closed_cut_follows_the_cheap_path_and_closes():
    rng = np.random.default_rng(0)
    err = rng.random((9, 40)) + 1
    rows = 4 + np.round(2 * np.sin(np.arange(40) * 2 * np.pi / 40)).astype(int)  # a cheap closed wave
    err[rows, np.arange(40)] = 0
    path, cost = closed_cut(err)
    assert np.array_equal(path, rows) and cost == 0
    assert abs(int(path[0]) - int(path[-1])) <= 1


def test_a_whole_repeat_comes_back_unchanged():
    """Checks whose period divides the side: the in-phase strip agrees exactly, nothing changes."""
    yy, xx = np.mgrid[:64, :96]
    img = np.where((((yy // 8) + (xx // 8)) % 2)[..., None] == 1, np.float32([0.8, 0.2, 0.2]),
                   np.float32([0.95, 0.9, 0.85])).astype(np.float32)
    img = np.roll(img, (3, 5), axis=(0, 1))
    assert np.array_equal(make_tileable(img, 0.1), img)


def test_the_middle_is_kept_and_the_edges_meet():
    img = grain(80, 120, 3)
    out = make_tileable(img, 0.1)
    assert wrap_seam_ratio(img) > 2 and 0.8 <= wrap_seam_ratio(out) <= 1.25
    band_y, band_x = round(0.1 * 80 / 2) + 2, round(0.1 * 120 / 2) + 2  # the cuts and their feathering
    middle = (slice(band_y, 80 - band_y), slice(band_x, 120 - band_x))
    assert np.array_equal(out[middle], img[middle])  # pixels of the picture, untouched
    changed = np.any(out != img, axis=2)
    assert changed[:2].all() and changed[-2:].all() and changed[:, :2].all() and changed[:, -2:].all()


def test_no_step_along_the_cuts_of_an_unevenly_lit_picture():
    """The seam ratio only sees the wrap-around line; a cut a row or two off it must not leave a step
    either (a scan lit from one side: the strip takes the light of what it meets at each cut, and the
    difference is spread across the band)."""
    img = grain(96, 96, 5)
    img = np.clip(img + np.linspace(-0.2, 0.2, 96)[:, None, None], 0, 1).astype(np.float32)  # darker at the top
    out = np.roll(make_tileable(img, 0.1), (48, 48), axis=(0, 1))  # the mended cross in the middle
    for axis in (0, 1):
        step = np.abs(np.diff(out, axis=axis)).mean(axis=(1 - axis, 2))
        spike = step[1:-1] - np.maximum(step[:-2], step[2:])  # a line above both neighbouring lines
        assert spike[35:59].max() < 0.3 * np.median(step), (axis, step[36:60].round(3))


def test_axis_periods_of_stripes_and_none_for_grain():
    img = stripes(120, 120, 10.0, 30)  # across x: 10 / cos 30 = 11.547 px, down: 20 px
    assert abs(axis_period(img, 1) - 10 / np.cos(np.radians(30))) < 0.03
    assert abs(axis_period(img, 0) - 20.0) < 0.03
    assert axis_period(stripes(120, 120, 10.0, 0), 0) is None  # vertical stripes do not repeat downwards
    assert axis_period(grain(120, 120, 1), 0) is None and axis_period(grain(120, 120, 1), 1) is None


def test_stripes_are_cut_to_whole_cycles_and_tile_without_a_jog():
    """10.4 cycles across and 6 down: the tile is cut to 10 whole cycles across (about 115 px), no
    more than one period smaller, and tiled 2x2 keeps the stripes' period; grain is left as it is."""
    img = stripes(120, 120, 10.0, 30)
    fitted, periods = whole_repeats(img)
    assert fitted.shape[:2] == (120, round(10 * periods[1]))
    tile = make_tileable(fitted, 0.1)
    assert wrap_seam_ratio(tile) < 1.1
    _, per_r = dominant_frequency(img)
    _, per_o = dominant_frequency(np.tile(tile, (2, 2, 1)))
    assert abs(per_o - per_r) < 0.01 * per_r
    plain = grain(64, 80, 2)
    assert whole_repeats(plain)[0] is plain
