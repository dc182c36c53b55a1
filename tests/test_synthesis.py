"""Exemplar synthesis core: PatchMatch field and coarse-to-fine EM completion, on cases with known answers."""
from __future__ import annotations

import numpy as np
import torch

from engine.synthesis import Settings, complete
from engine.synthesis.blend import pull_low, seam_blend
from engine.synthesis.nnf import Field


def checkerboard(h: int = 96, w: int = 96, cell: int = 6) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.stack([(xx // cell + yy // cell) % 2, (xx // cell) % 2, 0.5 + 0 * xx], -1).astype(np.float32)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_periodic_texture_is_completed_exactly():
    tex = checkerboard()
    hole = np.zeros(tex.shape[:2], bool)
    hole[36:60, 30:66] = True
    out = complete(tex, hole, seed=0)
    assert np.array_equal(out[~hole], tex[~hole])
    assert np.abs(out[hole] - tex[hole]).max() < 1e-6


def test_filled_pixels_come_only_from_the_source_region():
    """Outside the source every pixel is a unique random colour; the votes copy exact pixels,
    so each filled pixel must be one of the source region's colours."""
    img = noise(80, 80, 1)
    img[:, 48:] = checkerboard(80, 32, 4)
    hole = np.zeros((80, 80), bool)
    hole[30:50, 20:40] = True
    source = np.zeros((80, 80), bool)
    source[:, 48:] = True
    out = complete(img, hole, source=source, seed=3)
    allowed = {tuple(p) for p in img[source].round(6)}
    assert all(tuple(p) in allowed for p in out[hole].round(6))
    without = complete(img, hole, seed=3)  # the noise is the nearest texture when it may be used
    assert not all(tuple(p) in allowed for p in without[hole].round(6))


def test_field_only_points_at_valid_sources():
    gen = torch.Generator().manual_seed(0)
    h, w = 40, 50
    ok = torch.zeros((h, w), dtype=torch.bool)
    ok[5:20, 30:45] = True
    src = torch.randn(h * w, 6)
    ty, tx = torch.nonzero(torch.ones(10, 10, dtype=torch.bool), as_tuple=True)
    f = Field(src, ok, ty + 25, tx + 5, (h, w), torch.arange(h * w), False, gen)
    f.random_init()
    f.set_targets(torch.randn(len(ty), 6))
    before = f.dist.clone()
    f.iterate(3)
    assert bool(ok.reshape(-1)[f.idx].all())
    assert bool((f.dist <= before).all()) and float(f.dist.mean()) < float(before.mean())
    exact = ((f.tgt[:, None] - src[ok.reshape(-1)][None]) ** 2).sum(-1).min(1).values
    assert float((f.dist - exact).mean()) < 0.5 * float((before - exact).mean())


def test_wrap_around_fills_across_the_edges_without_a_seam():
    yy, xx = np.mgrid[:64, :64] * (2 * np.pi / 16)  # periods divide 64: the torus is seamless
    tex = np.stack([0.5 + 0.4 * np.sin(xx) * np.cos(yy / 2), 0.5 + 0.3 * np.cos(xx + yy), 0.5 + 0 * xx], -1)
    tex = tex.astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[:10], hole[58:], hole[:, :6], hole[:, 60:] = True, True, True, True  # a hole across every edge
    out = complete(tex, hole, wrap=True, seed=0)
    assert np.abs(out - tex).max() < 1e-5
    edge = np.abs(out[:, 0] - out[:, -1]).mean()
    inside = np.mean([np.abs(out[:, i] - out[:, i + 1]).mean() for i in range(63)])
    assert edge <= 1.3 * inside


def test_same_seed_same_fill_and_different_seeds_differ():
    img = noise(64, 64, 2)
    hole = np.zeros((64, 64), bool)
    hole[20:44, 20:44] = True
    a, b, c = complete(img, hole, seed=5), complete(img, hole, seed=5), complete(img, hole, seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[hole], c[hole])


def test_guidance_channels_steer_where_patches_come_from():
    """Two textures side by side, a hole across both: a guide that labels the halves keeps
    each side of the hole in its own texture."""
    img = np.concatenate([checkerboard(64, 32, 4), noise(64, 32, 4)], 1)
    label = np.zeros((64, 64, 1), np.float32)
    label[:, 32:] = 1
    hole = np.zeros((64, 64), bool)
    hole[20:44, 16:48] = True
    out = complete(img, hole, guide=label, settings=Settings(guide_weight=10.0), seed=0)
    left = hole & (np.arange(64)[None] < 30)
    assert np.abs(out[left] - img[left]).max() < 1e-6  # the checkerboard side is exactly right
    grey = lambda a: np.unique(a[..., 2].round(4))
    assert set(grey(out[hole & (np.arange(64)[None] >= 34)])) <= set(grey(img[:, 32:]))


def test_seam_blend_removes_a_small_step_and_keeps_an_object_edge():
    """A fill a shade too bright meets its border without a step after blending; where the fill
    meets a different object (a step far larger than a shade), nothing is spread."""
    img = np.tile(np.linspace(0.3, 0.6, 64, dtype=np.float32)[None, :, None], (64, 1, 3))
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    shaded = img.copy()
    shaded[hole] += 0.05
    out = seam_blend(shaded, hole)
    assert np.array_equal(out[~hole], img[~hole])
    step = lambda a: np.abs(a[16:48, 16] - a[16:48, 15]).mean()
    assert step(out) < 0.3 * step(shaded)
    dark = shaded.copy()
    dark[:, :16] = 0.0  # the fill now meets a black object on its left side
    out = seam_blend(dark, hole)
    assert np.abs(out[16:48, 16:20] - dark[16:48, 16:20]).max() < 0.05


def test_seam_blend_joins_an_outpainted_strip_whatever_the_step():
    """An outpainted strip: a fill that is a different texture and brightness from the old edge
    (large step, out of phase) meets it without a line, and deep in the strip it is unchanged."""
    from engine.tasks.inpaint_large import outpainting

    rng = np.random.default_rng(0)
    img = np.tile(np.linspace(0.2, 0.4, 64, dtype=np.float32)[None, :, None], (64, 1, 3))
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[:, 48:] = True
    box = np.zeros_like(hole)
    box[8:56, 40:63] = True  # touches nothing, or one side only in part: an object
    assert outpainting(hole) and not outpainting(box)
    filled = img.copy()
    filled[hole] = 0.7 + rng.normal(0, 0.02, (int(hole.sum()), 3)).astype(np.float32)
    step = lambda a: np.abs(a[:, 48] - a[:, 47]).mean()
    inside = np.abs(np.diff(img[:, 30:47], axis=1)).mean()
    kept = seam_blend(filled, hole)  # as a removal: an edge this large is an object edge, left alone
    assert step(kept) > 10 * inside
    out = seam_blend(filled, hole, keep_edges=False)
    assert np.array_equal(out[~hole], img[~hole])
    assert step(out) < 2 * inside, (step(out), inside)
    change = lambda col: np.abs(out[:, col] - filled[:, col]).mean()
    assert change(63) < 0.5 * change(48)  # the correction fades into the strip


def test_pull_low_moves_a_wrong_tone_toward_the_border_and_keeps_texture():
    """A fill copied from a slightly brighter place (wrong tone, right texture) moves toward its
    grey surroundings by about the strength in the middle; its fine texture stays, nothing
    outside the hole changes, no step appears at the border; a fill of a different layout
    (far brighter) is left nearly alone."""
    rng = np.random.default_rng(0)
    img = np.full((96, 96, 3), 0.4, np.float32) + rng.normal(0, 0.03, (96, 96, 3)).astype(np.float32)
    yy, xx = np.mgrid[:96, :96]
    hole = (yy - 48) ** 2 + (xx - 48) ** 2 < 30 ** 2
    filled = img.copy()
    filled[hole] += 0.04
    out = pull_low(filled, hole, 0.5)
    assert np.array_equal(out[~hole], filled[~hole])
    centre = (yy - 48) ** 2 + (xx - 48) ** 2 < 10 ** 2
    shift = (filled - out)[centre].mean()
    assert 0.012 < shift < 0.022, shift  # about half of the 0.04 offset (the membrane is 0.4 here)
    hf = lambda a: np.abs(np.diff(a[centre.any(axis=1)][:, 40:56], axis=1)).mean()
    assert abs(hf(out) - hf(filled)) < 0.05 * hf(filled)  # the texture is untouched
    ring = hole & ~np.roll(hole, 1, axis=1)  # the hole's left edge: the correction fades in from there
    assert np.abs((filled - out)[ring]).mean() < 0.25 * shift
    assert pull_low(filled, hole, 0.0) is filled
    other = img.copy()
    other[hole] += 0.3
    assert (other - pull_low(other, hole, 0.5))[centre].mean() < 0.01


def test_near_price_steers_matches_towards_sources_near_their_target():
    """Every source matches every target equally well; with the near price the search moves
    every target onto a source within a pixel or two of itself."""
    gen = torch.Generator().manual_seed(0)
    h, w = 20, 20
    ok = torch.ones((h, w), dtype=torch.bool)
    ty, tx = torch.nonzero(torch.ones(6, 6, dtype=torch.bool), as_tuple=True)
    ty, tx = ty + 7, tx + 7
    f = Field(torch.zeros(h * w, 4), ok, ty, tx, (h, w), torch.arange(h * w), False, gen, near=(1.0, 10.0))
    f.set_init(((ty + 10) % h) * w + (tx + 10) % w)  # all start far from their target
    f.set_targets(torch.zeros(len(ty), 4))
    before = f.dist.clone()
    f.iterate(3)
    assert float(before.min()) > 1.0 and float(f.dist.max()) <= 0.08
    assert bool(((f.idx // w - ty).abs() <= 2).all() and ((f.idx % w - tx).abs() <= 2).all())


def test_near_price_keeps_an_outpainted_strip_from_cloning_a_far_object():
    """Stripes along the old edge and a lone blob of another colour far from it: with the near
    price the strip continues the stripes and holds none of the blob's colour."""
    h, w = 64, 96
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([(yy // 4) % 2 * 0.6 + 0.2] * 3, -1).astype(np.float32)
    img[20:44, 4:28] = (0.9, 0.1, 0.1)  # the far object
    hole = np.zeros((h, w), bool)
    hole[:, 72:] = True
    out = complete(img, hole, seed=1, settings=Settings(near=0.045))
    red = (out[..., 0] - out[..., 1]) > 0.4
    assert not red[hole].any()
    assert np.abs(out[hole] - img[hole]).mean() < 0.05


def test_an_outpainted_strip_takes_the_whole_picture_as_context():
    from engine.tasks.inpaint_large import work_context

    strip = np.zeros((40, 100), np.float32)
    strip[:, 80:] = 1.0
    blob = np.zeros_like(strip)
    blob[10:20, 30:50] = 1.0
    assert work_context(strip, None) == 100
    assert work_context(strip, 12) == 12  # an explicit context is honoured
    assert work_context(blob, None) is None


def test_near_price_grows_with_the_squared_distance_and_stops_growing():
    from engine.synthesis.nnf import NEAR_REACH, near_price

    dy, dx = torch.tensor([0, 3, 0, 300]), torch.tensor([0, 4, 10, 0])
    p = near_price(dy, dx, 2.0, 10.0)
    assert torch.allclose(p, torch.tensor([0.0, 0.5, 2.0, 2.0 * NEAR_REACH ** 2]))


def test_near_price_is_free_within_the_free_band_and_grows_past_it():
    from engine.synthesis.nnf import near_price

    dy, dx = torch.tensor([0, 3, 0, 0]), torch.tensor([0, 4, 10, 15])
    p = near_price(dy, dx, 2.0, 10.0, free=0.7)
    assert torch.allclose(p, torch.tensor([0.0, 0.0, 2.0 * 0.3 ** 2, 2.0 * 0.8 ** 2]))
    q = near_price(dy, dx, 2.0, 10.0, free=0.7, inside=0.1)  # a share of the full price inside too
    assert torch.allclose(q, p + 0.2 * torch.tensor([0.0, 0.25, 1.0, 2.25]))


def test_outpainting_does_not_stretch_the_border_into_sideways_streaks():
    """A fine texture touching the old edge: priced on every pixel of distance at every level, the
    strip copies the nearest border columns over and over (horizontal detail falls to about half
    of the picture's); with the outpainting settings it keeps the picture's horizontal detail."""
    from engine.tasks.inpaint_large import OUTPAINT

    tile = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    img = np.tile(tile, (4, 6, 1))
    hole = np.zeros(img.shape[:2], bool)
    hole[:, 72:] = True
    detail = lambda a: float(np.abs(np.diff(a, axis=1)).mean())
    streaky = complete(img, hole, seed=1, settings=Settings(near=0.045, em_fine=2))
    out = complete(img, hole, seed=1, settings=OUTPAINT)
    assert detail(streaky[:, 76:]) < 0.7 * detail(img[:, :72])  # the failure this guards against
    assert detail(out[:, 76:]) > 0.85 * detail(img[:, :72])


def test_occurrence_is_one_for_an_even_field_and_peaks_where_patches_pile_up():
    from engine.synthesis.usage import occurrence

    hs, ws, p = 24, 24, 5
    even = occurrence(torch.arange(hs * ws), (hs, ws), p)
    assert torch.allclose(even[p:-p, p:-p], torch.ones(hs - 2 * p, ws - 2 * p), atol=1e-5)
    piled = occurrence(torch.full((hs * ws,), 12 * ws + 12), (hs, ws), p)
    assert float(piled[12, 12]) > 20 and float(piled[0, 0]) == 0  # 576 patches where 25 each is even


def test_usage_price_spreads_matches_over_the_whole_source():
    """A flat target painted from a source that is half flat, half textured (the guides never
    match exactly, as in use): plain matching copies only the flat half; with the usage price
    the textured half is used too."""
    from engine.synthesis.guided import GuidedSettings, synthesize

    src = np.full((64, 64, 3), 0.5, np.float32)
    src[:, 32:] = 0.5 + 0.2 * (noise(64, 32, 3) - 0.5)  # mean |x - 0.5| there: 0.05
    target = np.full((64, 64, 3), 0.5, np.float32)
    guide_t, guide_s = noise(64, 64, 5)[..., :1], np.zeros((64, 64, 1), np.float32)

    def textured(usage: float) -> float:
        out = synthesize(guide_t, src, guide_s, target, 0, GuidedSettings(levels=1, usage=usage))
        return float(np.abs(out - 0.5).mean())

    assert textured(0.0) < 1e-4 and textured(1.5) > 0.003  # over 6 % of the result from the textured half


def test_near_price_off_at_the_finer_levels_with_an_infinite_free_band():
    """near_free=inf: the finer levels pay nothing, as with a band wider than the price's reach."""
    img = checkerboard(80, 80)
    hole = np.zeros((80, 80), bool)
    hole[24:56, 30:50] = True
    s = dict(near=0.05, near_levels=1)
    a = complete(img, hole, seed=2, settings=Settings(near_free=float("inf"), **s))
    b = complete(img, hole, seed=2, settings=Settings(near_free=1e6, **s))
    assert np.array_equal(a, b)


def test_removal_settings_continue_stripes_across_an_object_hole():
    """Stripes around the hole and a lone blob of another colour far from it: the removal
    settings (near price in the first coarse rounds, then released) still continue the stripes
    exactly, with none of the blob's colour."""
    from engine.tasks.inpaint_large import REMOVAL

    h, w = 96, 96
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([(yy // 4) % 2 * 0.6 + 0.2] * 3, -1).astype(np.float32)
    img[4:20, 4:20] = (0.9, 0.1, 0.1)
    hole = np.zeros((h, w), bool)
    hole[40:76, 44:80] = True
    out = complete(img, hole, seed=1, settings=REMOVAL)
    red = (out[..., 0] - out[..., 1]) > 0.4
    assert not red[hole].any()
    assert np.abs(out[hole] - img[hole]).mean() < 0.05


def test_layout_fusion_keeps_the_light_and_dark_of_the_layout():
    """A grey start painted from a source that is dark on one side and light on the other, with
    guides that say nothing: plain matching puts light and dark anywhere; with the layout fusion
    the result is light where the layout is light (its low-pass follows the layout)."""
    from engine.synthesis.guided import GuidedSettings, luminance, synthesize

    src = np.concatenate([0.2 + 0.1 * noise(64, 32, 3), 0.7 + 0.1 * noise(64, 32, 4)], 1).astype(np.float32)
    start = np.full((48, 48, 3), 0.5, np.float32)
    layout = np.full((48, 48), 0.25, np.float32)
    layout[12:36, 12:36] = 0.75  # a light square on dark
    guide_t, guide_s = np.zeros((48, 48, 1), np.float32), np.zeros((64, 64, 1), np.float32)

    def corr(keep: float) -> float:
        out = synthesize(guide_t, src, guide_s, start, 0, GuidedSettings(levels=2, layout_keep=keep), layout=layout)
        return float(np.corrcoef(luminance(out).ravel(), layout.ravel())[0, 1])

    assert corr(0.0) < 0.2 and corr(0.5) > 0.5  # measured: -0.03, 0.60
