"""Extend canvas and Remove with a source mask, on the plug-ins' host-independent side.

The geometry of an extension (sides, px or %, limits), the padded request and the mask over
the new strips, the plug-ins' own fields, Remove's source mask, the Krita request builder,
and both requests run through the real engine's `inpaint` (patch method: no model needed).
GIMP and Krita themselves run them in tests/hosts/.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "common"))
sys.path.insert(0, str(ROOT / "tests"))

import sfumato_link as link  # noqa: E402
from sfumato_link import extend  # noqa: E402
from test_krita_plugin import kp  # noqa: E402  (the Krita plug-in, imported without Krita)

from engine.server import Engine  # noqa: E402

request = importlib.import_module(f"{kp.__name__}.request")
controller = importlib.import_module(f"{kp.__name__}.controller")
Box = link.Box


# ---- geometry ----------------------------------------------------------------------------

@pytest.mark.parametrize("sides, amount, unit, ltrb", [
    ("right", 25, "percent", (0, 0, 50, 0)),
    ("left", 10, "px", (10, 0, 0, 0)),
    ("top-bottom", 50, "percent", (0, 50, 0, 50)),
    ("all", 12.5, "percent", (25, 12, 25, 12)),  # % of the width across, of the height down (12.5 rounds to 12)
    ("left-right", 3, "px", (3, 0, 3, 0)),
])
def test_extension_sizes(sides, amount, unit, ltrb):
    ext = extend.plan_extension(200, 100, sides, amount, unit)
    assert (ext.left, ext.top, ext.right, ext.bottom) == ltrb
    assert (ext.new_width, ext.new_height) == (200 + ltrb[0] + ltrb[2], 100 + ltrb[1] + ltrb[3])
    assert ext.old_box == Box(ltrb[0], ltrb[1], 200, 100)


def test_added_bbox_covers_exactly_the_new_strips():
    for sides in extend.SIDES:
        ext = extend.plan_extension(40, 30, sides, 8, "px")
        mask = np.frombuffer(extend.added_mask(ext, ext.canvas), np.uint8).reshape(ext.new_height, ext.new_width)
        old = ext.old_box
        assert (mask[old.y:old.y2, old.x:old.x2] == 0).all() and mask.sum() == 255 * (mask.size - old.area)
        ys, xs = np.nonzero(mask)
        bbox = Box.from_corners(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert bbox == ext.added_bbox, sides


@pytest.mark.parametrize("args, words", [
    (("diagonal", 10, "px"), "Sides"), (("right", 0, "px"), "at least one pixel"),
    (("right", 0.2, "percent"), "at least one pixel"), (("top", 500, "percent"), "at most 4 times"),
    (("top", 10, "inch"), "Unit"),
])
def test_bad_extensions_are_sentences(args, words):
    with pytest.raises(ValueError, match=words):
        extend.plan_extension(100, 80, *args)


def test_padded_request_keeps_the_old_pixels_and_masks_the_strip():
    rng = np.random.default_rng(0)
    old = rng.integers(1, 256, (30, 40, 4), dtype=np.uint8)
    ext = extend.plan_extension(40, 30, "right", 50, "percent")
    box = extend.request_box(ext, 8)
    assert box == Box(32, 0, 28, 30)  # the 20 px strip plus 8 px of the old canvas
    got = np.frombuffer(extend.padded_pixels(old.tobytes(), ext, box, "u8"), np.uint8).reshape(30, 28, 4)
    assert (got[:, :8] == old[:, 32:]).all() and (got[:, 8:] == 0).all()
    mask = np.frombuffer(extend.added_mask(ext, box), np.uint8).reshape(30, 28)
    assert (mask[:, :8] == 0).all() and (mask[:, 8:] == 255).all()
    deep = rng.integers(1, 65536, (30, 40, 4), dtype=np.uint16)  # 16-bit: same placement, two bytes a sample
    got16 = np.frombuffer(extend.padded_pixels(deep.astype("<u2").tobytes(), ext, box, "u16"), "<u2")
    assert (got16.reshape(30, 28, 4)[:, :8] == deep[:, 32:]).all()


# ---- the plug-ins' own fields and the source mask -------------------------------------------

def test_extend_action_own_fields_are_checked_and_never_sent():
    action = link.BY_KEY["extend"]
    assert [name for name, _ in link.own_fields(action)] == ["sides", "amount", "unit"]
    own = link.own_values(action, {"sides": "left", "amount": "40", "unit": "px"})
    assert own == {"sides": "left", "amount": 40, "unit": "px"}
    assert link.own_values(action, {}) == {"sides": "right", "amount": 25, "unit": "percent"}
    with pytest.raises(ValueError, match="Sides: must be one of"):
        link.own_values(action, {"sides": "up"})
    params = link.build_params(action, {"sides": "left", "amount": 40, "steps": 5}, link.schema.op_params("inpaint"))
    assert params["strength"] == 1.0 and params["feather"] == 0.0 and params["steps"] == 5
    assert not {"sides", "amount", "unit"} & set(params)
    remove = link.build_params(link.BY_KEY["remove"], {}, link.schema.op_params("inpaint"))
    assert remove["remove"] is True and remove["strength"] == 1.0


def test_source_mask_empty_or_full_means_the_whole_image():
    assert link.source_array(None, 4, 2) is None
    assert link.source_array(bytes(8), 4, 2) is None and link.source_array(b"\xff" * 8, 4, 2) is None
    arr = link.source_array(b"\xff\0" * 4, 4, 2)
    assert arr.shape == (2, 4, 1) and arr.dtype == "u8"
    bgra = bytes([9, 9, 9, 255, 9, 9, 9, 0])
    assert link.opacity_mask(bgra) == b"\xff\0"


def test_remove_results_keep_the_engines_grown_ring_only():
    src = bytes([1, 2, 3, 255]) * 4
    out = bytes([1, 2, 3, 255, 9, 9, 9, 255, 7, 7, 7, 255, 1, 2, 3, 255])  # pixel 1 changed outside the mask
    mask = bytes([0, 0, 255, 0])
    got = link.clear_unchanged_outside(out, src, mask)
    assert got == bytes(4) + bytes([9, 9, 9, 255, 7, 7, 7, 255]) + bytes(4)
    with pytest.raises(ValueError):
        link.clear_unchanged_outside(out, src[:8], mask)


# ---- the Krita request ---------------------------------------------------------------------

def test_krita_extend_plan_and_result_clipping():
    rng = np.random.default_rng(1)
    bgra = rng.integers(1, 256, (24, 32, 4), dtype=np.uint8)
    own = {"sides": "bottom", "amount": 8, "unit": "px"}
    plan = request.plan_extend(link.BY_KEY["extend"], {"seed": 1}, own, Box(0, 0, 32, 24), "u8",
                               lambda b: bgra[b.y:b.y2, b.x:b.x2].tobytes())
    assert plan.extension.new_height == 32 and plan.box == Box(0, 0, 32, 32)  # 32 px context: the whole canvas
    image = np.frombuffer(plan.inputs["image"].tobytes(), np.uint8).reshape(32, 32, 4)
    assert (image[:24] == bgra[..., [2, 1, 0, 3]]).all() and (image[24:] == 0).all()  # RGBA on the wire
    out = link.Array((32, 32, 4), "u8", np.full((32, 32, 4), 200, np.uint8).tobytes())
    entry = controller.make_entry(plan, {"image": out}, {"seed": 1})
    layer = np.frombuffer(entry.layers[0].data, np.uint8).reshape(32, 32, 4)
    assert (layer[:24] == 0).all() and (layer[24:] == 200).all()  # only the new strip
    with pytest.raises(link.LinkError, match="Amount"):
        request.plan_extend(link.BY_KEY["extend"], {}, dict(own, amount=0), Box(0, 0, 32, 24), "u8", lambda b: b"")


def test_krita_remove_sends_the_source_mask_over_the_crop():
    canvas = Box(0, 0, 64, 48)
    raw = np.full((48, 64, 4), 255, np.uint8)
    source = np.zeros((48, 64), np.uint8)
    source[:, :20] = 255
    sel = Box(30, 10, 16, 16)
    plan = request.plan_job(link.BY_KEY["remove"], {}, canvas, "u8", lambda b: raw[b.y:b.y2, b.x:b.x2].tobytes(),
                            sel, lambda b: b"\xff" * (b.w * b.h),
                            read_source=lambda b: source[b.y:b.y2, b.x:b.x2].tobytes())
    assert plan.box == Box(0, 0, 62, 48)  # the selection's crop (14, 0, 48, 42), grown to hold the source
    assert plan.params["context"] == 62  # the engine keeps all of it
    got = np.frombuffer(plan.inputs["source"].tobytes(), np.uint8).reshape(plan.box.h, plan.box.w)
    assert (got == source[plan.box.y:plan.box.y2, plan.box.x:plan.box.x2]).all()
    empty = request.plan_job(link.BY_KEY["remove"], {}, canvas, "u8", lambda b: raw[b.y:b.y2, b.x:b.x2].tobytes(),
                             sel, lambda b: b"\xff" * (b.w * b.h), read_source=lambda b: bytes(b.w * b.h))
    assert "source" not in empty.inputs and "context" not in empty.params


# ---- through the real engine ----------------------------------------------------------------

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path_factory.mktemp("no_models"), device="cpu").start()
    s = link.Session(link.ZmqTransport(eng.address), client="extend-test")
    s.hello()
    yield s
    s.close()
    eng.stop()


def stripes(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([120 + 80 * ((xx // 4) % 2), 60 + 40 * ((yy // 3) % 2), np.full_like(xx, 90)], -1)
    return np.concatenate([rgb, np.full((h, w, 1), 255)], -1).astype(np.uint8)


def test_engine_fills_the_new_strip_opaque_and_keeps_the_old_canvas(session):
    old = stripes(48, 64)
    ext = extend.plan_extension(64, 48, "right", 25, "percent")
    action = link.BY_KEY["extend"]
    box = extend.request_box(ext, link.context_pixels(action, ext.added_bbox))
    params = link.build_params(action, {"seed": 3, "method": "patch"}, link.schema.op_params("inpaint"))
    inputs = {"image": link.image_array(extend.padded_pixels(old.tobytes(), ext, box, "u8"), box.w, box.h, "u8"),
              "mask": link.mask_array(extend.added_mask(ext, box), box.w, box.h)}
    job = session.run("inpaint", inputs, params)
    assert job.state == "done", job.error
    out = np.frombuffer(job.outputs["image"].tobytes(), np.uint8).reshape(box.h, box.w, 4)
    old_in_box = ext.old_box.intersect(box).relative_to(box)
    kept = out[old_in_box.y:old_in_box.y2, old_in_box.x:old_in_box.x2]
    assert (kept == old[:, box.x:]).all()  # the old canvas, bit for bit
    strip = out[:, old_in_box.x2:]
    assert (strip[..., 3] == 255).all() and strip[..., :3].std() > 10  # opaque, and texture, not a flat fill


def test_engine_remove_copies_only_from_the_source(session):
    h, w = 48, 96
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 3] = 255
    img[:, :48, :3] = stripes(h, 48)[..., :3]  # left: stripes
    img[:, 48:, :3] = (20, 200, 40)  # right: flat green
    hole = np.zeros((h, w), np.uint8)
    hole[14:34, 62:82] = 255  # an object in the green
    source = np.zeros((h, w), np.uint8)
    source[:, :40] = 255  # copy only from the stripes
    params = link.build_params(link.BY_KEY["remove"], {"seed": 2}, link.schema.op_params("inpaint"))
    params = link.source_params(dict(params, method="patch"), Box(0, 0, w, h))
    inputs = {"image": link.image_array(img.tobytes(), w, h, "u8"), "mask": link.mask_array(hole.tobytes(), w, h),
              "source": link.source_array(source.tobytes(), w, h)}
    job = session.run("inpaint", inputs, params)
    assert job.state == "done", job.error
    out = np.frombuffer(job.outputs["image"].tobytes(), np.uint8).reshape(h, w, 4).astype(int)
    fill = out[18:30, 66:78, :3].reshape(-1, 3)
    green = np.array([20, 200, 40])
    assert np.abs(fill - green).sum(1).mean() > 100  # not the green around the hole: texture from the source
