"""The Krita plug-in's host-independent parts, without Krita.

Covers what decides pixels and requests (operation parameters, selection -> crop and mask,
BGRA handling at 8 and 16 bits, result layers and their names, history), the controller
driving real jobs on a real engine over loopback (the echo op, so no model is needed), and
the installer and zip for Krita's importer. Krita itself is exercised by
tests/hosts/krita_host_test.sh.
"""
from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG_DIR = ROOT / "plugins" / "krita" / "sfumato"
KRITA_IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def _load_plugin():
    """Import plugins/krita/sfumato under its own name (the GIMP plug-in is also called sfumato)."""
    name = "sfumato_krita_plugin"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PKG_DIR / "__init__.py",
                                                  submodule_search_locations=[str(PKG_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


kp = _load_plugin()
ops = importlib.import_module(f"{kp.__name__}.ops")
convert = importlib.import_module(f"{kp.__name__}.convert")
request = importlib.import_module(f"{kp.__name__}.request")
history = importlib.import_module(f"{kp.__name__}.history")
controller = importlib.import_module(f"{kp.__name__}.controller")
bootstrap = importlib.import_module(f"{kp.__name__}.bootstrap")
link = bootstrap.link
Box = link.Box

from conftest import free_port
from engine import plugin_pack  # noqa: E402
from engine.server import Engine  # noqa: E402


def bgra_layer(w: int, h: int, dtype: str = "u8", seed: int = 0) -> bytes:
    """Random layer bytes as Krita hands them out (BGRA, little-endian samples)."""
    rng = np.random.default_rng(seed)
    if dtype == "u8":
        return rng.integers(0, 256, (h, w, 4), dtype=np.uint8).tobytes()
    return rng.integers(0, 65536, (h, w, 4), dtype=np.uint16).astype("<u2").tobytes()


def crop(data: bytes, width: int, box: Box, bpp: int) -> bytes:
    return link.crop_bytes(data, width, box, bpp)


# ---- operations and parameters ----------------------------------------------------------

def test_every_op_has_an_action_and_a_known_engine_op():
    assert [op.key for op in ops.OPS] == ["inpaint", "remove", "extend", "restore", "stylize", "pattern", "repeat",
                                          "recolor"]
    assert len({ops.action_id(op) for op in ops.OPS}) == len(ops.OPS)
    assert {op.engine_op for op in ops.OPS} == {"inpaint", "restore", "stylize", "generate", "pattern", "recolor"}


def test_build_params_coerces_fixes_and_drops():
    ui = ops.BY_KEY["remove"]
    schema = ops.engine_schema(ui, None)  # before an engine answers: the shipped snapshot
    params = link.build_params(ui, {"steps": 12.0, "seed": None, "variants": 2, "bogus": 1}, schema)
    assert params["strength"] == 1.0  # fixed for Remove
    assert params["steps"] == 12 and isinstance(params["steps"], int)
    assert params["seed"] is None  # "random": the engine picks it and says which in meta
    assert "bogus" not in params
    with pytest.raises(ValueError, match="Steps: must be at most"):
        link.build_params(ops.BY_KEY["inpaint"], {"steps": 10_000}, schema)


def test_build_params_skips_what_the_engine_does_not_declare():
    schema = {"steps": {"type": "int", "default": 10, "min": 1, "max": 50}}
    params = link.build_params(ops.BY_KEY["inpaint"], {"steps": 5, "strength": 0.5, "variants": 3}, schema)
    assert params == {"steps": 5}


def test_restore_scale_only_sent_for_upscale():
    ui = ops.BY_KEY["restore"]
    schema = ops.engine_schema(ui, None)
    assert "scale" not in link.build_params(ui, {"task": "denoise", "scale": 4}, schema)
    assert link.build_params(ui, {"task": "upscale", "scale": 4}, schema)["scale"] == 4


def test_engine_schema_follows_welcome():
    ui = ops.BY_KEY["pattern"]
    assert ops.engine_schema(ui, None) == link.schema.op_params("generate")
    assert ops.engine_schema(ui, {"ops": {}}) is None
    welcome = {"ops": {"generate": {"params": {"seed": {"type": "int", "default": None, "nullable": True}}}}}
    assert [n for n, _ in link.shown_fields(ui, ops.engine_schema(ui, welcome))] == ["seed"]


def test_variants_become_named_layers_in_order_with_the_engines_seed():
    ui = ops.BY_KEY["inpaint"]
    plan = request.Plan(ui, {"strength": 0.8, "seed": None}, Box(4, 6, 2, 1), "u8")
    outputs = {f"image_{i}" if i else "image": link.Array((1, 2, 3), "u8", bytes([i] * 6)) for i in (2, 0, 1)}
    entry = controller.make_entry(plan, outputs, {"seed": 1234})
    assert entry.group == "Sfumato Inpaint: 3 variants (seed 1234)"
    assert [layer.name for layer in entry.layers] == [f"Sfumato Inpaint #{i} (strength 0.8, seed 1234)" for i in (1, 2, 3)]
    assert [layer.data[0] for layer in entry.layers] == [0, 1, 2] and (entry.layers[0].x, entry.layers[0].y) == (4, 6)


# ---- pixels ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["u8", "u16"])
def test_bgra_to_layer_round_trip_is_exact(dtype):
    raw = bgra_layer(13, 7, dtype)
    rgba = convert.layer_to_rgba(raw, dtype)
    n = np.frombuffer(raw, "<u1" if dtype == "u8" else "<u2").reshape(7, 13, 4)
    m = np.frombuffer(rgba, "<u1" if dtype == "u8" else "<u2").reshape(7, 13, 4)
    assert np.array_equal(m, n[..., [2, 1, 0, 3]])
    arr = link.Array((7, 13, 4), dtype, rgba)
    assert convert.to_layer_bytes(arr, dtype) == raw


def test_three_channel_and_other_depth_results_become_layers():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = convert.to_layer_bytes(link.Array(rgb.shape, "u8", rgb.tobytes()), "u8")
    got = np.frombuffer(out, np.uint8).reshape(2, 3, 4)
    assert np.array_equal(got[..., :3], rgb[..., ::-1]) and (got[..., 3] == 255).all()
    out16 = convert.to_layer_bytes(link.Array(rgb.shape, "u8", rgb.tobytes()), "u16")
    got16 = np.frombuffer(out16, "<u2").reshape(2, 3, 4)
    assert np.array_equal(got16[..., :3], rgb[..., ::-1].astype(np.uint16) * 257) and (got16[..., 3] == 65535).all()
    back = convert.change_depth(convert.change_depth(rgb.tobytes(), "u8", "u16"), "u16", "u8")
    assert back == rgb.tobytes()


def test_thumbnail_and_preview_conversion():
    img = np.zeros((300, 200, 4), np.uint16)
    img[..., 0] = 65535
    w, h, data = convert.thumbnail(link.Array(img.shape, "u16", img.astype("<u2").tobytes()), 64)
    assert max(w, h) <= 64 and len(data) == w * h * 4
    px = np.frombuffer(data, np.uint8).reshape(h, w, 4)
    assert (px[..., 0] == 255).all() and (px[..., 1:3] == 0).all()


@pytest.mark.parametrize("model, depth, word", [("GRAYA", "U8", "RGB"), ("RGBA", "F16", "16-bit"),
                                                ("CMYKA", "U8", "Convert")])
def test_unsupported_documents_say_what_to_do(model, depth, word):
    with pytest.raises(link.LinkError) as err:
        convert.layer_format(model, depth)
    assert word in str(err.value) and "Convert Image Color Space" in str(err.value)
    assert convert.layer_format("RGBA", "U16") == "u16"


# ---- selection -> request ----------------------------------------------------------------

def readers(width: int, height: int, dtype: str, mask_full: bytes):
    layer = bgra_layer(width, height, dtype, seed=3)
    bpp = 4 * (1 if dtype == "u8" else 2)

    def read_pixels(box):
        return crop(layer, width, box, bpp)

    def read_mask(box):
        return crop(mask_full, width, box, 1)

    return layer, read_pixels, read_mask


def soft_mask(width: int, height: int, box: Box) -> bytes:
    m = np.zeros((height, width), np.uint8)
    m[box.y:box.y2, box.x:box.x2] = 255
    m[box.y, box.x:box.x2] = 128  # a soft edge row
    return m.tobytes()


@pytest.mark.parametrize("dtype", ["u8", "u16"])
def test_selection_becomes_crop_with_context_and_soft_mask(dtype):
    W, H = 300, 200
    sel = Box(250, 20, 40, 30)  # near the right edge: context is clamped to the canvas
    mask_full = soft_mask(W, H, sel)
    layer, rp, rm = readers(W, H, dtype, mask_full)
    ui = ops.BY_KEY["inpaint"]
    plan = request.plan_job(ui, {"steps": 3}, Box(0, 0, W, H), dtype, rp, sel, rm)
    ctx = link.context_pixels(ui, sel)
    assert plan.box == Box(sel.x - ctx, sel.y - ctx, W - (sel.x - ctx), sel.h + 2 * ctx).intersect(Box(0, 0, W, H))
    image, mask = plan.inputs["image"], plan.inputs["mask"]
    assert image.shape == (plan.box.h, plan.box.w, 4) and image.dtype == dtype
    assert mask.shape == (plan.box.h, plan.box.w, 1) and mask.tobytes() == crop(mask_full, W, plan.box, 1)
    assert 128 in set(mask.tobytes())  # soft values travel as they are
    bpp = 4 if dtype == "u8" else 8
    assert convert.to_layer_bytes(image, dtype) == crop(layer, W, plan.box, bpp)


def test_no_selection_means_whole_layer_and_inpaint_needs_one():
    opaque = np.full((48, 64, 4), 255, np.uint8).tobytes()
    rp = lambda box: crop(opaque, 64, box, 4)  # noqa: E731
    plan = request.plan_job(ops.BY_KEY["restore"], {}, Box(0, 0, 64, 48), "u8", rp)
    assert plan.box == Box(0, 0, 64, 48) and "mask" not in plan.inputs
    with pytest.raises(link.LinkError, match="needs a selection"):
        request.plan_job(ops.BY_KEY["inpaint"], {}, Box(0, 0, 64, 48), "u8", rp)


@pytest.mark.parametrize("dtype", ["u8", "u16"])
def test_inpaint_without_selection_fills_transparent_pixels(dtype):
    W, H = 120, 80
    layer = np.full((H, W, 4), 255 if dtype == "u8" else 65535, np.uint8 if dtype == "u8" else "<u2")
    layer[10:20, 90:110, 3] = 0  # a transparent hole
    layer[20, 100, 3] = layer.max() // 2  # and a half-transparent pixel below it
    raw = layer.tobytes()
    bpp = 4 if dtype == "u8" else 8
    plan = request.plan_job(ops.BY_KEY["inpaint"], {}, Box(0, 0, W, H), dtype, lambda b: crop(raw, W, b, bpp))
    hole = Box(90, 10, 20, 11)
    assert plan.box.contains(hole) and plan.box != Box(0, 0, W, H)
    mask = np.frombuffer(plan.inputs["mask"].tobytes(), np.uint8).reshape(plan.box.h, plan.box.w)
    local = hole.relative_to(plan.box)
    assert (mask[local.y:local.y + 10, local.x:local.x2] == 255).all()
    assert 100 < mask[local.y + 10, 100 - plan.box.x] < 160 and mask.sum() < 255 * (20 * 10 + 2)


def test_empty_or_full_selection():
    canvas = Box(0, 0, 64, 48)
    _, rp, rm = readers(64, 48, "u8", bytes(64 * 48))
    with pytest.raises(link.LinkError, match="empty"):
        request.plan_job(ops.BY_KEY["inpaint"], {}, canvas, "u8", rp, Box(5, 5, 10, 10), rm)
    _, rp, rm = readers(64, 48, "u8", b"\xff" * (64 * 48))
    plan = request.plan_job(ops.BY_KEY["restore"], {}, canvas, "u8", rp, canvas, rm)
    assert "mask" not in plan.inputs  # everything selected = no mask for the optional-mask ops


def test_pattern_size_limits_and_style():
    canvas = Box(0, 0, 640, 480)
    plan = request.plan_job(ops.BY_KEY["pattern"], {"seed": 1}, canvas, "u8", lambda b: b"", Box(10, 20, 128, 96))
    assert plan.box == Box(10, 20, 128, 96) and plan.params["width"] == 128 and plan.params["height"] == 96
    assert plan.inputs == {}
    params, dropped = link.ops.fit_params({"ops": {"generate": {"params": {"seed": {}}}}}, "generate", plan.params)
    assert params == {"seed": 1} and dropped == ["height", "width"]
    with pytest.raises(link.LinkError, match="smaller area"):
        request.plan_job(ops.BY_KEY["pattern"], {}, canvas, "u8", lambda b: b"", None, max_pixels=1000)
    _, rp, _ = readers(640, 480, "u8", b"")
    with pytest.raises(link.LinkError, match="reference image file or a style model"):
        request.plan_job(ops.BY_KEY["stylize"], {}, canvas, "u8", rp)
    style = link.Array((2, 2, 4), "u8", bytes(16))
    assert request.plan_job(ops.BY_KEY["stylize"], {}, canvas, "u8", rp, style=style).inputs["style"] is style


# ---- history ---------------------------------------------------------------------------

def test_history_is_bounded_by_count_and_bytes():
    h = history.History(limit=3, max_bytes=100)

    def entry(n):
        return history.Entry(f"e{n}", "inpaint", "u8", [history.ResultLayer("l", 0, 0, 1, 1, bytes(n))])

    for n in (10, 20, 30, 40):
        h.add(entry(n))
    assert [e.label for e in h] == ["e40", "e30", "e20"]
    h.add(entry(90))
    assert [e.label for e in h] == ["e90"]  # over the byte budget: the newest stays
    big = h.add(entry(500))
    assert len(h) == 1 and h.get(big.id) is big


# ---- the controller against a real engine -------------------------------------------------

class RecordingHost:
    """Stands in for Krita's layer stack: records what would become layers."""

    def __init__(self):
        self.inserted = []

    def insert(self, target, entry):
        self.inserted.append((target, entry))


ECHO = link.Action("echo", "Echo", "echo", ("steps", "delay", "preview", "fail"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path_factory.mktemp("models"), device="cpu").start()
    yield eng
    eng.stop()


def pump(ctrl, until, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out; state={ctrl.state} {ctrl.message}"
        ctrl.poll()
        time.sleep(0.005)


@pytest.fixture
def ctrl(engine, monkeypatch):
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    c = controller.Controller(RecordingHost(), client="krita-test")
    c.connect(engine.address)
    pump(c, lambda: c.state != controller.CONNECTING)
    assert c.state == controller.ONLINE, c.message
    yield c
    c.close()


@pytest.mark.parametrize("dtype", ["u8", "u16"])
def test_echo_job_comes_back_as_identical_layer_bytes(ctrl, dtype):
    W, H = 96, 64
    sel = Box(30, 20, 20, 16)
    layer, rp, rm = readers(W, H, dtype, soft_mask(W, H, sel))
    plan = request.plan_job(ECHO, {"steps": 4, "preview": True}, Box(0, 0, W, H), dtype, rp, sel, rm)
    seen = []
    ctrl.subscribe(lambda kind, data: seen.append(kind))
    run = ctrl.submit(plan, target="doc-1")
    polls_before = ctrl.ticks
    pump(ctrl, lambda: not ctrl.running)
    assert ctrl.ticks > polls_before
    assert run.job.state == "done", run.message
    target, entry = ctrl.host.inserted[-1]
    assert target == "doc-1" and entry is run.entry and ctrl.history.entries[0] is entry
    layer_out = entry.layers[0]
    bpp = 4 if dtype == "u8" else 8
    placed = Box(layer_out.x, layer_out.y, layer_out.width, layer_out.height)
    assert placed == plan.box
    assert layer_out.data == crop(layer, W, plan.box, bpp)  # echo: bit-identical, in Krita's byte order
    assert not entry.new_image and "finished" in seen and "Done in" in run.message


def test_previews_reach_the_panel_and_cancel_works(ctrl):
    W, H = 64, 64
    _, rp, _ = readers(W, H, "u8", b"")
    plan = request.plan_job(ECHO, {"steps": 50, "delay": 10.0, "preview": True}, Box(0, 0, W, H), "u8", rp)
    run = ctrl.submit(plan)
    pump(ctrl, lambda: run.preview_thumb is not None)
    w, h, data = run.preview_thumb
    assert len(data) == w * h * 4 and 0 < run.job.fraction < 1
    t0 = time.monotonic()
    ctrl.cancel()
    pump(ctrl, lambda: not ctrl.running)
    assert run.job.state == "cancelled" and run.message == "Cancelled." and time.monotonic() - t0 < 5


def test_engine_errors_become_sentences(ctrl):
    _, rp, _ = readers(16, 16, "u8", b"")
    run = ctrl.submit(request.plan_job(ECHO, {"fail": "bad_param"}, Box(0, 0, 16, 16), "u8", rp))
    pump(ctrl, lambda: not ctrl.running)
    assert run.job.state == "error" and run.message.startswith("Invalid setting")
    missing = link.Action("x", "X", "no_such_op", ())
    with pytest.raises(link.LinkError, match="does not offer"):
        ctrl.submit(request.plan_job(missing, {}, Box(0, 0, 16, 16), "u8", rp))
    assert ctrl.host.inserted == []


def test_engine_down_is_reported_without_blocking(monkeypatch):
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    port = free_port()
    c = controller.Controller(client="krita-test")
    c.settings = link.Settings.from_mapping({"address": c.settings.address, "timeout": 0.5, "autostart": False})
    t0 = time.monotonic()
    c.connect(f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 0.5  # connect returns at once
    worst = 0.0
    while c.state == controller.CONNECTING:
        t = time.monotonic()
        c.poll()
        worst = max(worst, time.monotonic() - t)
        time.sleep(0.01)
    assert c.state == controller.DOWN and "sfumato serve" in c.message
    assert worst < 0.1  # every poll returned at once
    with pytest.raises(link.LinkError, match="not answering"):
        c.submit(request.Plan(ECHO, {}, Box(0, 0, 1, 1), "u8"))
    c.close()


def test_panel_comes_online_when_the_engine_starts_later(monkeypatch, tmp_path):
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    port = free_port()
    c = controller.Controller(client="krita-test")
    c.settings = link.Settings.from_mapping({"timeout": 0.3, "autostart": False})
    c.connect(f"tcp://127.0.0.1:{port}")
    pump(c, lambda: c.state == controller.DOWN)
    eng = Engine(bind=f"tcp://127.0.0.1:{port}", models_dir=tmp_path, device="cpu").start()
    try:
        pump(c, lambda: c.state == controller.ONLINE, timeout=30)
        assert "echo" in c.welcome["ops"]
    finally:
        c.close()
        eng.stop()


def test_panel_starts_a_local_engine_when_none_answers(monkeypatch, tmp_path):
    """No engine at the local address: the panel starts one (amber "Starting the engine..."
    while it loads, never blocking), connects to it, and runs a job on it."""
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    c = controller.Controller(RecordingHost(), client="krita-test")
    c.settings = link.Settings.from_mapping({"python": sys.executable, "engine_root": str(ROOT)})
    t0 = time.monotonic()
    c.connect(f"tcp://127.0.0.1:{free_port()}")
    assert time.monotonic() - t0 < 0.5 and c.state == controller.STARTING and c.busy
    assert c.engine_start.command[-2:] == ["--stop-with", str(os.getpid())]
    try:
        seen = set()
        pump(c, lambda: seen.add(c.state) or c.state in (controller.ONLINE, controller.DOWN), timeout=120)
        assert c.state == controller.ONLINE, c.message
        assert controller.STARTING in seen and "echo" in c.welcome["ops"]
    finally:
        c.close()
        c.engine_start.stop()


def test_a_remote_address_is_never_started(monkeypatch):
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    c = controller.Controller(client="krita-test")
    c.settings = link.Settings.from_mapping({"timeout": 0.3})
    c.connect("tcp://192.0.2.7:5555")  # TEST-NET-1: never routed
    assert c.engine_start is None and c.state == controller.CONNECTING
    pump(c, lambda: c.state == controller.DOWN)
    c.close()


def test_relay_transport_runs_jobs_too(engine, monkeypatch):
    """Krita's Python without pyzmq: the same controller through `python -m engine.relay`."""
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    monkeypatch.setenv("SFUMATO_TRANSPORT", "relay")
    monkeypatch.setenv("SFUMATO_PYTHON", sys.executable)
    monkeypatch.setenv("SFUMATO_ENGINE_ROOT", str(ROOT))
    c = controller.Controller(RecordingHost(), client="krita-relay")
    c.connect(engine.address)
    pump(c, lambda: c.state != controller.CONNECTING, timeout=30)
    try:
        assert c.state == controller.ONLINE and c.transport_kind == "relay", c.message
        layer, rp, _ = readers(32, 24, "u8", b"")
        run = c.submit(request.plan_job(ECHO, {"steps": 2}, Box(0, 0, 32, 24), "u8", rp), target="doc")
        pump(c, lambda: not c.running)
        assert run.job.state == "done" and c.host.inserted[-1][1].layers[0].data == layer
    finally:
        c.close()


def test_stored_address_is_used_and_saved(engine, monkeypatch):
    monkeypatch.delenv("SFUMATO_ENGINE", raising=False)
    store = {"text": json.dumps({"address": engine.address, "keep_engine": True, "autostart": False})}
    c = controller.Controller(load_store=lambda: store["text"], save_store=lambda t: store.update(text=t))
    assert c.address == engine.address and c.settings.keep_engine
    c.connect("tcp://127.0.0.1:1")
    saved = json.loads(store["text"])
    assert saved["address"] == "tcp://127.0.0.1:1" and saved["keep_engine"] and not saved["autostart"]  # kept
    c.close()


# ---- Qt binding choice, vendored packages --------------------------------------------------

def test_qt_binding_follows_krita():
    choose = bootstrap.choose_binding
    assert choose({"PyQt6.QtCore": 1}) == "PyQt6"
    assert choose({"PyQt5.QtCore": 1}) == "PyQt5"
    assert choose({}, "6.0.1") == "PyQt6" and choose({}, "5.2.9") == "PyQt5" and choose({}) == "PyQt5"


def test_vendor_folder_matches_the_running_python(tmp_path):
    assert bootstrap.vendor_tags((3, 11)) == ["cp311", "py3"]
    assert bootstrap.vendor_tags((3, 13)) == ["cp313", "abi3", "py3"]
    (tmp_path / "_vendor" / f"cp{sys.version_info[0]}{sys.version_info[1]}").mkdir(parents=True)
    (tmp_path / "_vendor" / "cp27").mkdir()
    added = bootstrap.add_vendor_paths(str(tmp_path))
    try:
        assert [Path(p).name for p in added] == [f"cp{sys.version_info[0]}{sys.version_info[1]}"]
    finally:
        for p in added:
            sys.path.remove(p)


# ---- installer and zip ---------------------------------------------------------------------

def test_install_into_a_folder(tmp_path):
    from engine import plugin_install

    lines = []
    written = plugin_install.install("krita", str(tmp_path / "pykrita"), out=lines.append)
    pkg = tmp_path / "pykrita" / "sfumato"
    assert str(pkg) in written and str(tmp_path / "pykrita" / "sfumato.desktop") in written
    assert (tmp_path / "pykrita" / "sfumato.desktop").is_file()
    for rel in ("__init__.py", "docker.py", "controller.py", "Manual.html", "sfumato_link/__init__.py",
                "sfumato_link/ops_schema.json", "sfumato_install.json"):
        assert (pkg / rel).is_file(), rel
    assert not list(pkg.rglob("__pycache__"))
    assert json.loads((pkg / "sfumato_install.json").read_text())["python"] == sys.executable
    assert any("enable_sfumato=true" in line for line in lines)
    plugin_install.install("krita", str(tmp_path / "pykrita"), out=lines.append)  # reinstall over itself
    # the installed copy imports its own thin client, not the checkout's
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import sfumato.bootstrap as b; "
            "print(b.link.__file__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pykrita")], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.strip()
    assert out.startswith(str(pkg / "sfumato_link"))


def test_zip_for_krita_importer(tmp_path):
    from engine.cli import main

    assert main(["plugins", "pack", "krita", "-o", str(tmp_path / "sfumato-krita.zip")]) == 0
    out = tmp_path / "sfumato-krita.zip"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        desktop = zf.read("sfumato.desktop").decode()
        record = json.loads(zf.read("sfumato/sfumato_install.json"))
    for name in ("sfumato.desktop", "sfumato/", "sfumato/__init__.py", "sfumato/docker.py",
                 "sfumato/sfumato_link/", "sfumato/sfumato_link/__init__.py", "sfumato/sfumato_link/ops_schema.json",
                 "sfumato/sfumato_link/autostart.py", "sfumato/sfumato_link/transport.py"):
        assert name in names, name
    assert {n.split("/")[0] for n in names} == {"sfumato.desktop", "sfumato"}  # what the importer looks for
    assert record["python"] == sys.executable  # the first run finds the engine's Python on this machine
    assert not any("__pycache__" in n for n in names)
    cp = configparser.ConfigParser()
    cp.read_string(desktop)
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Service" and entry["ServiceTypes"] == "Krita/PythonPlugin"
    assert entry["X-KDE-Library"] == "sfumato" and entry["Name"] == "Sfumato"


@pytest.mark.skipif(not KRITA_IMPORTER.is_file(), reason="Krita's plugin_importer is not installed here")
def test_zip_is_accepted_by_kritas_own_importer(tmp_path):
    spec = importlib.util.spec_from_file_location("krita_plugin_importer", KRITA_IMPORTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = plugin_pack.pack("krita", tmp_path / "p.zip", log=lambda _: None)
    resources = tmp_path / "resources"
    resources.mkdir()
    imported = mod.PluginImporter(str(out), str(resources), lambda plugin: True).import_all()
    assert [p["name"] for p in imported] == ["sfumato"]
    assert (resources / "pykrita" / "sfumato.desktop").is_file()
    assert (resources / "pykrita" / "sfumato" / "sfumato_link" / "session.py").is_file()
    assert (resources / "pykrita" / "sfumato" / "sfumato_install.json").is_file()


def test_manual_exists_for_krita_plugin_manager():
    assert (PKG_DIR / "Manual.html").is_file()


def test_key_files_reach_a_keyed_engine_and_are_stored(tmp_path, monkeypatch):
    from engine import keys

    for name in ("SFUMATO_ENGINE", "SFUMATO_SERVER_KEY", "SFUMATO_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    keys.new_server(tmp_path / "keys")
    _, pair = keys.add_client(tmp_path / "keys", "krita")
    store = {"text": ""}
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu", keys=tmp_path / "keys") as eng:
        c = controller.Controller(load_store=lambda: store["text"], save_store=lambda t: store.update(text=t))
        try:
            c.connect(eng.address)
            pump(c, lambda: c.state != controller.CONNECTING)
            assert c.state == controller.DOWN and "requires a client key" in c.message
            c.connect(eng.address, str(tmp_path / "keys" / "server.key"), str(pair))
            pump(c, lambda: c.state != controller.CONNECTING)
            assert c.state == controller.ONLINE, c.message
            assert json.loads(store["text"])["client_key"] == str(pair)
        finally:
            c.close()
