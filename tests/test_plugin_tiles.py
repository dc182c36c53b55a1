"""Pattern repeat and Recolor on the plug-ins' host-independent side, and the GIMP pattern writer.

The .pat writer is checked by reading the written file back (header words, magic, name,
pixels); the Krita request builder for a motif and a recolour crop; both jobs run through
the real engine (`pattern` and `recolor` need no model) and come back as the layers Krita
would add. GIMP and Krita themselves run them in tests/hosts/.
"""
from __future__ import annotations

import importlib
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "common"))
sys.path.insert(0, str(ROOT / "tests"))

import sfumato_link as link  # noqa: E402
from sfumato_link import gpat  # noqa: E402
from test_krita_plugin import kp, pump as krita_pump  # noqa: E402  (the Krita plug-in, imported without Krita)

from engine.server import Engine  # noqa: E402

request = importlib.import_module(f"{kp.__name__}.request")
controller = importlib.import_module(f"{kp.__name__}.controller")
convert = importlib.import_module(f"{kp.__name__}.convert")
Box = link.Box
REPEAT, RECOLOR = link.BY_KEY["repeat"], link.BY_KEY["recolor"]


# ---- the .pat format -------------------------------------------------------------------------

def test_pat_header_follows_gimps_format_and_reads_back(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 10  # not opaque: stays RGBA
    path = gpat.save(str(tmp_path / "patterns"), "Sfumato Pattern repeat tile (seed 5)",
                     link.Array((5, 7, 4), "u8", rgba.tobytes()))
    blob = Path(path).read_bytes()
    name = "Sfumato Pattern repeat tile (seed 5)".encode()
    size, version, w, h, bpp = struct.unpack(">5I", blob[:20])
    assert (size, version, w, h, bpp) == (24 + len(name) + 1, 1, 7, 5, 4) and blob[20:24] == b"GPAT"
    assert blob[24:size] == name + b"\0" and blob[size:] == rgba.tobytes()
    back = gpat.decode(blob)
    assert (back.name, back.width, back.height, back.bpp, back.data) == (name.decode(), 7, 5, 4, rgba.tobytes())
    assert Path(path).name == "sfumato-pattern-repeat-tile-seed-5.pat"


def test_opaque_tiles_are_stored_as_rgb_and_deep_samples_rounded():
    u16 = np.array([[[0, 65535, 32896, 65535], [257, 514, 65535, 65535]]], "<u2")
    pat = gpat.decode(gpat.from_array("deep", link.Array((1, 2, 4), "u16", u16.tobytes())))
    assert pat.bpp == 3 and pat.data == bytes([0, 255, 128, 1, 2, 255])
    f32 = np.array([[[-0.5, 0.5, 2.0]]], "<f4")
    assert gpat.decode(gpat.from_array("f", link.Array((1, 1, 3), "f32", f32.tobytes()))).data == bytes([0, 128, 255])


@pytest.mark.parametrize("blob, why", [(b"GPAT", "too short"), (struct.pack(">5I4s", 30, 1, 2, 2, 3, b"GIMP") + b"x\0",
                                                                   "not a GIMP pattern"),
                                       (struct.pack(">5I4s", 26, 1, 2, 2, 3, b"GPAT") + b"x\0" + bytes(5), "cut short")])
def test_broken_pat_files_are_refused(blob, why):
    with pytest.raises(ValueError, match=why):
        gpat.decode(blob)
    with pytest.raises(ValueError, match="bytes per pixel"):
        gpat.encode("x", 1, 1, bytes(5), 5)


# ---- actions ---------------------------------------------------------------------------------

def test_tile_actions_are_declared_by_the_ops_and_each_editor_shows_its_own_option():
    for action, op in ((REPEAT, "pattern"), (RECOLOR, "recolor")):
        params, inputs = link.schema.op_params(op), link.schema.op_inputs(op)
        assert set(action.fields) <= set(params) and set(action.extra_inputs) <= set(inputs)
        assert all(not inputs[name]["required"] for name in action.extra_inputs)
    assert [n for n, _ in link.own_fields(REPEAT, "gimp")] == ["save_pattern"]
    assert [n for n, _ in link.own_fields(REPEAT, "krita")] == ["wrap_around"]
    assert link.own_values(REPEAT, {}, "krita") == {"wrap_around": True}
    params = link.build_params(REPEAT, {"layout": "half-drop", "spacing": 8.0, "preview": 3, "wrap_around": True},
                               link.schema.op_params("pattern"))
    assert params == {"layout": "half-drop", "spacing": 8, "preview": 3}  # own fields are never sent
    with pytest.raises(ValueError, match="Layout: must be one of"):
        link.build_params(REPEAT, {"layout": "diagonal"}, link.schema.op_params("pattern"))
    assert link.build_params(RECOLOR, {"palette": ""}, link.schema.op_params("recolor")).get("palette") is None


def test_gimp_arguments_for_the_tile_actions():
    from test_plugin_schema import arguments  # plugins/gimp/.../arguments.py, loaded without GIMP

    args = {a.name: a for a in arguments.for_action(REPEAT, link.schema.op_params("pattern"))}
    assert list(args)[0] == "save-pattern" and "wrap-around" not in args
    assert args["layout"].kind == "choice" and args["layout"].default == "half-drop"
    assert args["seed"].null == -1 and args["preview"].max == 8
    recolor = {a.name: a for a in arguments.for_action(RECOLOR, link.schema.op_params("recolor"))}
    assert recolor["palette"].kind == "string" and recolor["palette"].to_param("") is None


def test_tile_and_preview_layers_are_named_for_what_they_are():
    params, meta = {"layout": "half-drop"}, {"seed": 5}
    assert link.layer_name(REPEAT, params, meta) == "Sfumato Pattern repeat (layout half-drop, seed 5)"
    assert link.layer_name(REPEAT, params, meta, 1) == "Sfumato Pattern repeat preview (layout half-drop, seed 5)"
    assert link.group_name(REPEAT, params, meta, 2) == "Sfumato Pattern repeat (layout half-drop, seed 5)"
    assert link.layer_name(RECOLOR, {"palette": "#102030"}, meta, 1) == "Sfumato Recolor #2 (palette #102030, seed 5)"


# ---- Krita's request -----------------------------------------------------------------------

def disc_layer(w: int, h: int, cx: int, cy: int, r: int, dtype: str = "u8") -> np.ndarray:
    """A transparent layer with an opaque orange disc, as Krita hands it out (BGRA)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 4), np.uint8)
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    img[inside] = (30, 140, 230, 255)  # B, G, R, A
    return img


def test_motif_is_the_selections_box_without_context_and_unselected_pixels_drop_out():
    W, H = 64, 48
    layer = disc_layer(W, H, 20, 20, 8)
    layer[:, 40:] = (200, 200, 200, 255)  # an opaque block to the right, outside the selection
    sel = Box(10, 10, 34, 22)  # reaches 4 px into the block; the mask covers only x < 40
    mask = np.zeros((H, W), np.uint8)
    mask[10:32, 10:40] = 255
    raw = layer.tobytes()
    plan = request.plan_crop(REPEAT, {"layout": "grid"}, Box(0, 0, W, H), "u8",
                             lambda b: layer[b.y:b.y2, b.x:b.x2].tobytes(), sel,
                             lambda b: mask[b.y:b.y2, b.x:b.x2].tobytes(),
                             extra={"ground": link.Array((16, 16, 4), "u8", bytes(1024)), "style": "ignored"})
    assert plan.box == sel and plan.clip is None and sorted(plan.inputs) == ["ground", "image"]
    sent = np.frombuffer(plan.inputs["image"].tobytes(), np.uint8).reshape(sel.h, sel.w, 4)
    assert (sent[:, 30:] == 0).all()  # the block is not part of the motif
    assert (sent[10, 10] == (230, 140, 30, 255)).all()  # the disc's centre, in RGBA
    whole = request.plan_crop(REPEAT, {}, Box(0, 0, W, H), "u8", lambda b: raw)
    assert whole.box == Box(0, 0, W, H)


def test_recolor_crop_sends_no_mask_and_clips_the_result():
    W, H = 32, 24
    layer = disc_layer(W, H, 10, 10, 6)
    mask = np.zeros((H, W), np.uint8)
    mask[4:20, 4:16] = 255
    plan = request.plan_crop(RECOLOR, {"palette": "#ff0000"}, Box(0, 0, W, H), "u8",
                             lambda b: layer[b.y:b.y2, b.x:b.x2].tobytes(), Box(0, 0, W, H),
                             lambda b: mask[b.y:b.y2, b.x:b.x2].tobytes())
    assert sorted(plan.inputs) == ["image"] and plan.clip == mask.tobytes()
    with pytest.raises(link.LinkError, match="empty"):
        request.plan_crop(RECOLOR, {}, Box(0, 0, W, H), "u8", lambda b: layer.tobytes(), Box(0, 0, W, H),
                          lambda b: bytes(W * H))


# ---- through the real engine ---------------------------------------------------------------

class RecordingHost:
    def __init__(self):
        self.inserted = []

    def insert(self, target, entry):
        self.inserted.append((target, entry))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path_factory.mktemp("no_models"), device="cpu").start()
    yield eng
    eng.stop()


@pytest.fixture
def ctrl(engine, monkeypatch):
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    c = controller.Controller(RecordingHost(), client="tiles-test")
    c.connect(engine.address)
    pump(c, lambda: c.state != controller.CONNECTING)
    assert c.state == controller.ONLINE, c.message
    yield c
    c.close()


def pump(ctrl, until):
    krita_pump(ctrl, until, timeout=60.0)  # real engine jobs: more time than the echo jobs there


def finish(ctrl, plan):
    run = ctrl.submit(plan, target="doc")
    pump(ctrl, lambda: not ctrl.running)
    assert run.job.state == "done", run.message
    return run


def test_half_drop_tile_and_preview_come_back_as_layers_of_the_period(ctrl):
    W, H = 48, 40
    layer = disc_layer(W, H, 20, 18, 7)  # a 15 x 15 disc
    plan = request.plan_crop(REPEAT, link.build_params(REPEAT, {"layout": "half-drop", "spacing": 5, "preview": 2,
                                                                "seed": 3}, ctrl.schema_of("pattern")),
                             Box(0, 0, W, H), "u8", lambda b: layer.tobytes())
    plan.wrap_tile = True
    run = finish(ctrl, plan)
    entry = run.entry
    period = run.job.meta["period"]
    assert period == [15 + 5, 2 * (15 + 5)]  # half-drop: one cell high, two cells wide
    tile, preview = entry.layers
    assert (tile.height, tile.width) == tuple(period) and (preview.height, preview.width) == (40, 80)
    assert tile.name.startswith("Sfumato Pattern repeat tile (layout half-drop, seed 3")
    assert entry.group == "Sfumato Pattern repeat (layout half-drop, seed 3)"
    assert not entry.new_image and entry.wrap_tile and (tile.x, tile.y) == (0, 0)
    alpha = np.frombuffer(tile.data, np.uint8)[3::4]
    assert 0 < (alpha == 255).sum() < alpha.size  # motifs on a transparent ground
    assert (np.frombuffer(preview.data, np.uint8).reshape(40, 80, 4)[:20, :40] ==
            np.frombuffer(tile.data, np.uint8).reshape(20, 40, 4)).all()


def test_a_motif_without_opaque_pixels_is_a_clear_error(ctrl):
    empty = np.zeros((16, 16, 4), np.uint8)
    run = ctrl.submit(request.plan_crop(REPEAT, {"layout": "grid"}, Box(0, 0, 16, 16), "u8",
                                        lambda b: empty.tobytes()), target="doc")
    pump(ctrl, lambda: not ctrl.running)
    assert run.job.state == "error" and "no opaque pixel" in run.message


def test_recolor_moves_the_colours_to_the_palette_inside_the_selection_only(ctrl):
    W, H = 40, 32
    yy, xx = np.mgrid[0:H, 0:W]
    layer = np.zeros((H, W, 4), np.uint8)
    layer[..., 3] = 255
    layer[..., :3] = np.where(((xx // 5) % 2 == 0)[..., None], (40, 160, 40), (200, 200, 220))  # BGR stripes
    mask = np.zeros((H, W), np.uint8)
    mask[:, :24] = 255
    palette = ["#b01010", "#f0e0a0"]
    plan = request.plan_crop(RECOLOR, link.build_params(RECOLOR, {"palette": ",".join(palette), "seed": 1},
                                                        ctrl.schema_of("recolor")),
                             Box(0, 0, W, H), "u8", lambda b: layer.tobytes(), Box(0, 0, W, H),
                             lambda b: mask.tobytes())
    run = finish(ctrl, plan)
    out = np.frombuffer(run.entry.layers[0].data, np.uint8).reshape(H, W, 4)
    assert (out[:, 24:] == 0).all()  # cleared outside the selection
    rgb = out[:, :24, 2::-1].reshape(-1, 3).astype(int)  # BGRA -> RGB
    pal = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in palette])
    nearest = np.abs(rgb[:, None] - pal[None]).sum(-1).min(1)
    before = np.abs(layer[:, :24, 2::-1].reshape(-1, 3).astype(int)[:, None] - pal[None]).sum(-1).min(1)
    assert np.median(nearest) < 40 < np.median(before), (np.median(nearest), np.median(before))
