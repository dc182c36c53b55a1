"""Classical hole fills: what the inpaint op and the trainer start from."""
from __future__ import annotations

import numpy as np

from bench.masks import make_mask
from engine.fills import border_fill, harmonic_fill, hole_depth, hole_radius, share_within, tension_fill


def smooth_surface(h: int = 64, w: int = 80) -> np.ndarray:
    """A curved, slanted surface: slopes matter at the hole's border."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    r = 0.2 + 0.6 * ((xx / w) ** 2 + 0.5 * yy / h)
    g = 0.5 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 11.0)
    b = 0.3 + 0.4 * (yy / h) ** 2
    return np.stack([r, g, b], -1).astype(np.float32)


def stroke(h: int = 64, w: int = 80, width: int = 5) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    hole[np.abs(yy - (0.6 * xx + 8)) < width / 2] = True
    return hole


def test_tension_fill_keeps_known_pixels_and_beats_the_harmonic_fill_on_a_smooth_surface():
    img, hole = smooth_surface(), stroke()
    t, hm = tension_fill(img, hole), harmonic_fill(img, hole)
    assert np.array_equal(t[~hole], img[~hole])
    err_t = float(np.abs(t[hole] - img[hole]).mean())
    err_h = float(np.abs(hm[hole] - img[hole]).mean())
    assert err_t < 0.7 * err_h, (err_t, err_h)  # it continues the border's slope, not only its value


def test_tension_fill_reproduces_a_plane_and_handles_empty_and_full_holes():
    yy, xx = np.mgrid[:40, :48].astype(np.float32)
    plane = np.repeat((0.1 + 0.01 * xx + 0.005 * yy)[..., None], 3, -1)
    hole = np.zeros((40, 48), bool)
    hole[15:22, 10:38] = True  # away from the image edge, where the fill is free to flatten
    assert np.abs(tension_fill(plane, hole) - plane).max() < 1e-3
    assert np.array_equal(tension_fill(plane, np.zeros((40, 48), bool)), plane)
    assert np.isfinite(tension_fill(plane, np.ones((40, 48), bool))).all()


def test_hole_depth_tells_crossing_strokes_from_a_box():
    strokes = make_mask("strokes_l", 321, 481, 0) > 127  # the bench's wide strokes, crossing
    box = make_mask("box64", 321, 481, 0) > 127
    assert hole_radius(strokes) >= 0.8 * hole_radius(box)  # by the deepest pixel they look alike
    assert hole_depth(strokes, 0.75) < hole_depth(box, 0.75)  # most of the strokes stay shallow
    assert hole_depth(np.zeros((8, 8), bool)) == 0.0


def test_border_fill_uses_the_spline_for_thin_holes_only():
    img = smooth_surface(96, 96)
    thin = stroke(96, 96, 5)
    assert np.array_equal(border_fill(img, thin), tension_fill(img, thin))
    deep = np.zeros((96, 96), bool)
    deep[10:86, 10:86] = True
    assert np.array_equal(border_fill(img, deep), harmonic_fill(img, deep))


def test_share_within_tells_scratches_from_strokes():
    """The bench's 1-3 px scratches are hairlines; its 13-19 px strokes are not."""
    scratches = make_mask("scratches", 321, 481, 0) > 127
    strokes = make_mask("strokes_m", 321, 481, 0) > 127
    assert share_within(scratches, 2) == 1.0
    assert share_within(strokes, 2) < 0.5
    assert share_within(np.zeros((8, 8), bool), 2) == 1.0
