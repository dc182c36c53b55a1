"""Textures that keep their structure, seamless tiles and motif repeats, on small code-drawn images."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bench.metrics import dominant_frequency, wrap_seam_ratio
from engine.errors import EngineError
from engine.tasks import OPERATIONS
from engine.tasks.base import JobContext
from engine.protocol import Limits
from engine.synthesis.texture import synthesize


def stripes(h: int, w: int, period: float, angle: float) -> np.ndarray:
    """Two-colour stripes; `angle` is the direction across the stripes, in degrees."""
    yy, xx = np.mgrid[:h, :w]
    a = np.radians(angle)
    on = (np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period) > 0).astype(np.float32)[..., None]
    return (np.array([0.9, 0.85, 0.7], np.float32) * on + np.array([0.15, 0.1, 0.1], np.float32) * (1 - on))


def grain(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A fine random texture (blurred noise) on a left-to-right ramp: its wrap-around edge jumps."""
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.random((h, w, 3)), (1.5, 1.5, 0))
    ramp = np.linspace(0, 0.5, w)[None, :, None]
    return np.clip((tex - 0.5) * 3 + 0.25 + ramp, 0, 1).astype(np.float32)


def run_op(inputs: dict, params: dict) -> tuple[dict, dict]:
    op = OPERATIONS["pattern"]
    checked = op.check(inputs, params, Limits())
    return op.run(inputs, checked, JobContext("t"))


def to_u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


@pytest.mark.parametrize("angle,side,wrap", [(0, 144, True), (45, 128, False)])
def test_stripe_texture_keeps_orientation_and_period(one_torch_thread, angle, side, wrap):
    """A tile can only hold whole stripes: the tileable case is one whose side fits 12 periods."""
    period = 12.0
    ref = stripes(96, 96, period, angle)
    out = synthesize(ref, side, side, wrap=wrap, seed=1)
    ang_r, per_r = dominant_frequency(ref)
    ang_o, per_o = dominant_frequency(np.tile(out, (2, 2, 1)) if wrap else out)  # tiled: the wrap joins count
    assert abs((ang_o - ang_r + 90) % 180 - 90) < 0.05 * 180 / 4  # within 5 % of a quarter turn
    assert abs(per_o - per_r) < 0.05 * per_r


def test_seamless_layout_joins_the_edges(one_torch_thread):
    img = grain(96, 128, 2)
    assert wrap_seam_ratio(img) > 2
    outs, meta = run_op({"image": to_u8(img)}, {"layout": "seamless", "seed": 0, "preview": 2})
    tile = outs["image"]
    assert tile.shape == (96, 128, 3) and meta["repeat_period"] == [None, None]  # no repeat: the size is kept
    assert 0.8 <= wrap_seam_ratio(tile) <= 1.25
    centre = (slice(36, 60), slice(48, 80))
    detail = lambda x: x.astype(np.float32) - ndimage.uniform_filter(x.astype(np.float32), (9, 9, 1))  # noqa: E731
    assert np.abs(detail(tile)[centre] - detail(to_u8(img))[centre]).mean() < 2  # the centre keeps its detail
    assert outs["image_1"].shape == (192, 256, 3)


def motif() -> np.ndarray:
    """A 20 x 12 RGBA bar, opaque, on a transparent 30 x 30 canvas."""
    m = np.zeros((30, 30, 4), np.uint8)
    m[5:25, 9:21] = (200, 30, 30, 255)
    return m


def test_half_drop_has_its_period_and_offsets():
    outs, meta = run_op({"image": motif()}, {"layout": "half-drop", "spacing": 10, "background": "#ffffff",
                                             "preview": 3})
    tile = outs["image"]
    assert tile.shape == (30, 44, 3)  # cell (20 + 10) x (12 + 10); half-drop: two columns
    red = (tile[..., 0] > 150) & (tile[..., 1] < 100)
    ys, xs = np.nonzero(red)
    left, right = xs < 22, xs >= 22
    assert abs(ys[left].mean() - 15) <= 1 and abs(xs[left].mean() - 11) <= 1
    right_y = np.angle(np.exp(2j * np.pi * ys[right] / 30).mean()) / (2 * np.pi) * 30 % 30  # circular mean
    assert min(right_y, 30 - right_y) <= 1 and abs(xs[right].mean() - 33) <= 1  # dropped by half a cell
    assert np.array_equal(outs["image_1"], np.tile(tile, (3, 3, 1)))


@pytest.mark.parametrize("layout", ["grid", "half-brick", "mirror", "rotate4"])
def test_repeats_tile_without_cut_motifs(layout):
    outs, _ = run_op({"image": motif()}, {"layout": layout, "spacing": 6, "rotation": 20, "jitter": 0.5,
                                          "seed": 4})
    tile = outs["image"]
    assert tile.shape[2] == 4 and (tile[..., 3] == 0).any() and (tile[..., 3] == 255).any()
    big = np.tile(tile, (2, 2, 1))
    opaque = big[..., 3] > 127
    # every opaque blob of the 2x2 tiling is a whole motif: same pixel count as the motif's
    labels, n = ndimage.label(opaque)
    sizes = np.bincount(labels.ravel())[1:]
    assert n >= 4 and sizes.max() < 1.3 * np.median(sizes)


@pytest.mark.parametrize("inputs,params,field", [
    ({"image": np.zeros((30, 30, 4), np.uint8)}, {"layout": "grid"}, "inputs.image"),
    ({"image": motif()}, {"layout": "grid", "scale": 8.0, "spacing": 4000}, "params.scale"),
    ({"image": motif()}, {"layout": "grid", "background": "#12345"}, "params.background"),
    ({"image": motif()}, {"layout": "tartan"}, "params.layout"),
    ({"image": motif()}, {"layout": "grid", "spacing": 1500, "preview": 8}, "params.preview"),
])
def test_bad_input_is_an_error_naming_the_field(inputs, params, field):
    with pytest.raises(EngineError) as err:
        run_op(inputs, params)
    assert err.value.field == field


def run_recolor(inputs: dict, params: dict) -> tuple[dict, dict]:
    op = OPERATIONS["recolor"]
    return op.run(inputs, op.check(inputs, params, Limits()), JobContext("t"))


def test_recolor_moves_to_the_palette_and_keeps_shading():
    """Two flat colours with a shading ramp and dark lines: the colours become the palette's (by
    lightness), the ramp and the lines stay."""
    img = np.zeros((64, 64, 3), np.float32)
    img[:, :32] = (0.2, 0.3, 0.7)
    img[:, 32:] = (0.9, 0.8, 0.3)
    img += np.linspace(-0.08, 0.08, 64)[:, None, None]  # shading
    img[::8] = 0.02  # line work
    outs, meta = run_recolor({"image": to_u8(img)}, {"palette": "#aa2020, #20aa40, #101010", "variants": 2,
                                                     "seed": 0})
    out = outs["image"].astype(np.float32) / 255
    left, right = out[1:7, :30].reshape(-1, 3).mean(0), out[1:7, 34:].reshape(-1, 3).mean(0)
    assert left[0] > left[1] + 0.3 and right[1] > right[0] + 0.3  # darker blue -> red, lighter yellow -> green
    assert out[0].mean() < 0.15  # the lines stay dark
    ramp = out[1:8, 40, 1] - out[57:64, 40, 1]
    assert ramp.mean() < -0.05  # the shading ramp is still there
    assert "image_1" in outs and outs["image_1"].shape == out.shape[:2] + (3,)


@pytest.mark.parametrize("inputs,params,field", [
    ({"image": motif()[..., :3]}, {"palette": "#12zz45"}, "params.palette"),
    ({"image": motif()[..., :3]}, {}, "params.palette"),
])
def test_recolor_bad_input_names_the_field(inputs, params, field):
    with pytest.raises(EngineError) as err:
        run_recolor(inputs, params)
    assert err.value.field == field


def test_starting_blocks_on_a_torus_do_not_always_join_at_the_edge():
    """Joins between the starting blocks outlive the synthesis as faint steps, so the tile's
    wrap-around edge must not be a join by construction (it was, for every seed)."""
    import torch

    from engine.synthesis.texture import random_blocks

    ref = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 64, 64)  # every pixel its own value
    joins_at_edge = []
    for seed in range(6):
        out = random_blocks(ref, (40, 40), 16, torch.Generator().manual_seed(seed), wrap=True)[0]
        continues = (out[0] - out[-1] == 64).all()  # the first row is the source row below the last one
        joins_at_edge.append(not bool(continues))
        rows = (out[1:] - out[:-1] == 64).all(1)  # rows that continue their block
        assert int((~rows).sum()) + int(not continues) == 2  # two blocks of 20 rows each
    assert not all(joins_at_edge)
