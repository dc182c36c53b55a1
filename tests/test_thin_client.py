"""The plug-ins' thin client (plugins/common/sfumato_link) against the real engine on loopback.

Both transports are exercised: a DEALER socket (pyzmq in the editor's Python) and the relay
(the engine's Python as a subprocess, for editors whose Python has no pyzmq). Also the pure
helpers the plug-ins use to turn a selection into a crop and a mask.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "plugins" / "common"
sys.path.insert(0, str(COMMON))

import sfumato_link as sl  # noqa: E402
from sfumato_link import framing, minipack, wire  # noqa: E402
from sfumato_link.transport import RelayTransport, ZmqTransport  # noqa: E402

from engine import relay as engine_relay  # noqa: E402
from engine.server import Engine  # noqa: E402


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The real engine with an empty models/ folder: enough for echo and for model_missing."""
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path_factory.mktemp("no_models"), device="cpu").start()
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def model_engine(tiny_models_dir):
    """The real engine serving the tiny trained model."""
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tiny_models_dir, device="cpu").start()
    yield eng
    eng.stop()


def open_session(kind: str, address: str) -> sl.Session:
    if kind == "zmq":
        transport = ZmqTransport(address)
    else:
        transport = RelayTransport(address, sys.executable, engine_root=str(ROOT))
    return sl.Session(transport, client=f"test-{kind}")


@pytest.fixture(params=["zmq", "relay"])
def session(request, engine):
    s = open_session(request.param, engine.address)
    yield s
    s.close()


def arr(a: np.ndarray) -> wire.Array:
    name = {"uint8": "u8", "uint16": "u16", "float32": "f32"}[a.dtype.name]
    return wire.Array(a.shape, name, np.ascontiguousarray(a).tobytes())


def as_numpy(a: wire.Array) -> np.ndarray:
    dt = {"u8": "<u1", "u16": "<u2", "f32": "<f4"}[a.dtype]
    return np.frombuffer(a.data, dtype=dt).reshape(a.shape)


# ---- against the real engine --------------------------------------------------------------

def test_hello_lists_ops_and_transport_kind(session):
    welcome = session.hello()
    assert welcome["protocol"] == 1
    assert "echo" in welcome["ops"]
    assert welcome["ops"]["echo"]["params"]["steps"]["default"] == 1
    assert session.transport.kind in ("zmq", "relay")
    assert session.ping() < 5.0


@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_echo_round_trip_keeps_every_bit(session, dtype):
    rng = np.random.default_rng(1)
    h, w = 37, 53
    if dtype == "u8":
        image = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    elif dtype == "u16":
        image = rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)
    else:
        image = rng.random((h, w, 4), dtype=np.float32)
    mask = (rng.random((h, w, 1)) * 255).astype(np.uint8)
    session.hello()
    job = session.run("echo", {"image": arr(image), "mask": arr(mask)}, {"steps": 3}, timeout=30)
    assert job.state == "done" and job.fraction == 1.0
    np.testing.assert_array_equal(as_numpy(job.outputs["image"]), image)
    np.testing.assert_array_equal(as_numpy(job.outputs["mask"]), mask)
    assert job.outputs["image"].dtype == dtype


def test_progress_events_and_previews_reach_the_job(session):
    image = np.full((64, 64, 3), 128, np.uint8)
    seen = []
    job = session.submit("echo", {"image": arr(image)}, {"steps": 8, "delay": 0.4, "preview": True})
    job.wait(30, on_event=lambda ev: seen.append((ev.type, ev.job.step if ev.job else None)))
    kinds = [k for k, _ in seen]
    assert kinds[0] == "accepted" and kinds[-1] == "result"
    steps = [s for k, s in seen if k == "progress"]
    assert steps == sorted(steps) and steps[-1] == 8
    assert job.preview is not None and job.preview.channels == 3


def test_cancel_stops_a_long_job(session):
    image = np.zeros((16, 16, 3), np.uint8)
    job = session.submit("echo", {"image": arr(image)}, {"steps": 200, "delay": 20.0})
    t0 = time.monotonic()
    while job.step < 2 and time.monotonic() - t0 < 10:
        session.poll(0.05)
    job.cancel()
    with pytest.raises(sl.LinkError) as info:
        job.wait(10)
    assert info.value.code == "cancelled" and job.state == "cancelled"
    assert time.monotonic() - t0 < 8


def test_engine_errors_become_readable_messages(session):
    image = np.zeros((8, 8, 3), np.uint8)
    job = session.submit("echo", {"image": arr(image)}, {"steps": 0})
    with pytest.raises(sl.LinkError) as info:
        job.wait(10)
    assert info.value.code == "bad_param" and info.value.field == "params.steps"
    assert "Invalid setting “steps”" in str(info.value)
    job = session.submit("no_such_op", {"image": arr(image)}, {})
    with pytest.raises(sl.LinkError) as info:
        job.wait(10)
    assert info.value.code == "unknown_op" and "no_such_op" in str(info.value)


def test_missing_model_is_reported_with_where_to_put_it(session):
    image = np.zeros((16, 16, 4), np.uint8)
    mask = np.full((16, 16, 1), 255, np.uint8)
    job = session.submit("inpaint", {"image": arr(image), "mask": arr(mask)}, {"steps": 1})
    with pytest.raises(sl.LinkError) as info:
        job.wait(30)
    assert info.value.code == "model_missing" and "builtin" in str(info.value) and "put" in str(info.value).lower()


@pytest.mark.parametrize("kind", ["zmq", "relay"])
def test_inpaint_with_the_tiny_model_when_the_op_exists(model_engine, kind):
    session = open_session(kind, model_engine.address)
    session.hello()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 48, 4), dtype=np.uint8)
    image[..., 3] = 255
    mask = np.zeros((48, 48, 1), np.uint8)
    mask[16:32, 16:32] = 255
    job = session.run("inpaint", {"image": arr(image), "mask": arr(mask)}, {"steps": 2, "seed": 1, "feather": 0.0}, timeout=300)
    out = as_numpy(job.outputs["image"])
    assert out.shape == image.shape and out.dtype == np.uint8
    outside = mask[..., 0] == 0
    np.testing.assert_array_equal(out[outside], image[outside])
    assert not np.array_equal(out[~outside], image[~outside])
    session.close()


def test_engine_not_running_says_how_to_start_it():
    with ZmqTransport("tcp://127.0.0.1:9") as transport:  # port 9 (discard): nothing listens
        s = sl.Session(transport)
        with pytest.raises(sl.LinkError) as info:
            s.hello(timeout=0.5)
    assert info.value.code == sl.ENGINE_UNREACHABLE
    assert "sfumato serve" in str(info.value) and "tcp://127.0.0.1:9" in str(info.value)


def test_relay_with_a_missing_python_fails_readably():
    with pytest.raises(sl.LinkError) as info:
        RelayTransport("tcp://127.0.0.1:5555", "/nonexistent/python3")
    assert info.value.code == sl.RELAY_FAILED and "SFUMATO_PYTHON" in str(info.value)


def test_relay_that_dies_reports_its_stderr(tmp_path):
    """A Python that cannot run the relay (here: one that exits at once) gives relay_failed with its last words."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'No module named engine.relay' >&2\nexit 1\n")
    fake.chmod(0o755)
    s = sl.Session(RelayTransport("tcp://127.0.0.1:5555", str(fake)))
    with pytest.raises(sl.LinkError) as info:
        s.hello(timeout=10)
    assert info.value.code == sl.RELAY_FAILED and "No module named engine.relay" in info.value.message
    s.close()


BLOCKED_HOST = textwrap.dedent("""
    # An editor's Python without pyzmq and msgpack: block both imports, then use the thin client.
    import importlib.abc, json, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("zmq", "msgpack", "numpy"):
                raise ImportError("blocked: " + name)
    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[1])
    import sfumato_link as sl
    settings = sl.load_settings()
    session = sl.Session.open(settings, client="blocked-host")
    welcome = session.hello(timeout=20)
    image = sl.Array((2, 3, 4), "u8", bytes(range(24)))
    job = session.run("echo", {"image": image}, {"steps": 2}, timeout=30)
    print(json.dumps({"kind": session.transport.kind, "msgpack": sl.MSGPACK,
                      "echo": list(job.outputs["image"].tobytes()), "ops": sorted(welcome["ops"])}))
    if len(sys.argv) > 2:  # then a long job, and wait to be killed
        job = session.submit("echo", {"image": image}, {"steps": 100, "delay": 30.0})
        while job.step < 1:
            session.poll(0.05)
        print(json.dumps({"job": job.id}), flush=True)
        import time
        time.sleep(60)
    session.close()
""")


def _blocked_env(engine) -> dict:
    env = dict(os.environ)
    env.update(SFUMATO_ENGINE=engine.address, SFUMATO_PYTHON=sys.executable, SFUMATO_ENGINE_ROOT=str(ROOT))
    env.pop("SFUMATO_TRANSPORT", None)
    return env


def test_host_without_zmq_or_msgpack_uses_the_relay(engine):
    out = subprocess.run([sys.executable, "-c", BLOCKED_HOST, str(COMMON)], env=_blocked_env(engine),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"kind": "relay", "msgpack": "minipack", "echo": list(range(24)), "ops": report["ops"]}
    assert "echo" in report["ops"]


def _engine_idle(engine, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = engine.scheduler.status()
        if not st["running"] and st["queued"] == 0:
            return True
        time.sleep(0.1)
    return False


def test_killed_plugin_on_the_relay_path_cancels_its_job(engine):
    """GIMP kills a plug-in whose progress is cancelled; the relay must then cancel its jobs."""
    assert _engine_idle(engine, 10)
    proc = subprocess.Popen([sys.executable, "-c", BLOCKED_HOST, str(COMMON), "long"], env=_blocked_env(engine),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if '"job"' in line:
                break
        assert lines and '"job"' in lines[-1], proc.stderr.read() if proc.poll() is not None else lines
        assert engine.scheduler.status()["running"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _engine_idle(engine, 8), "the job kept running after the plug-in was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_plugin_on_the_zmq_path_cancels_its_job(engine):
    """Same, with the guard process watching a plug-in that talks zmq directly."""
    code = textwrap.dedent("""
        import json, sys, time
        sys.path.insert(0, sys.argv[1])
        import sfumato_link as sl
        session = sl.Session.open(sl.Settings(address=sys.argv[2], transport="zmq"), guard=True)
        session.hello()
        job = session.submit("echo", {"image": sl.Array((2, 2, 3), "u8", bytes(12))}, {"steps": 100, "delay": 30.0})
        while job.step < 1:
            session.poll(0.05)
        print(json.dumps({"job": job.id}), flush=True)
        time.sleep(60)
    """)
    assert _engine_idle(engine, 10)
    proc = subprocess.Popen([sys.executable, "-c", code, str(COMMON), engine.address], stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert '"job"' in line
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _engine_idle(engine, 8), "the job kept running after the plug-in was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- relay framing, msgpack fallback ------------------------------------------------------

def test_relay_framing_agrees_with_the_thin_client(tmp_path):
    frames = [b"head", b"", bytes(range(256)) * 10, memoryview(np.arange(12, dtype=np.float32))]
    path = tmp_path / "stream"
    with open(path, "wb") as f:
        framing.write_message(f, frames)
        engine_relay.write_message(f, frames)
    with open(path, "rb") as f:
        a = engine_relay.read_message(f)
        b = framing.read_message(f)
        assert framing.read_message(f) is None
    expect = [bytes(memoryview(x).cast("B")) for x in frames]
    assert a == expect and b == expect
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 1) + struct.pack("<Q", 10) + b"short")
    with open(path, "rb") as f:
        assert framing.read_message(f) is None and True


SAMPLES = [None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**63, 2**64 - 1, -1, -32, -33,
           -128, -129, -32768, -32769, -2**31 - 1, -2**63, 0.5, -1e300, "", "é" * 40, "x" * 300, "y" * 70000,
           b"", b"\x00" * 300, b"z" * 70000, [], list(range(20)), list(range(70000)), {},
           {"v": 1, "type": "submit", "id": "a-1", "inputs": {"image": {"buf": 1, "shape": [2, 3, 4], "dtype": "u8"}},
            "params": {"strength": 0.75, "seed": None, "tileable": True}},
           {str(i): i for i in range(40)}]


@pytest.mark.parametrize("value", SAMPLES, ids=range(len(SAMPLES)))
def test_minipack_matches_msgpack(value):
    packed = minipack.packb(value)
    assert packed == msgpack.packb(value, use_bin_type=True)
    assert minipack.unpackb(packed) == msgpack.unpackb(packed, raw=False)


def test_minipack_reads_float32_and_rejects_garbage():
    assert minipack.unpackb(msgpack.packb(1.5, use_single_float=True)) == 1.5
    with pytest.raises(minipack.PackError):
        minipack.unpackb(b"\x92\x01")  # array of 2 with 1 item
    with pytest.raises(minipack.PackError):
        minipack.unpackb(b"\xc1")
    with pytest.raises(minipack.PackError):
        minipack.packb(object())


def test_wire_encode_decode_without_numpy():
    image = wire.Array((2, 2, 4), "u16", bytes(32))
    frames = wire.encode({"type": "submit", "id": "x", "op": "echo", "inputs": {"image": image}, "params": {}})
    header = msgpack.unpackb(frames[0])
    assert header["v"] == 1 and header["inputs"]["image"] == {"buf": 1, "shape": [2, 2, 4], "dtype": "u16"}
    back = wire.decode(frames)
    assert back["inputs"]["image"].shape == (2, 2, 4) and back["inputs"]["image"].tobytes() == bytes(32)
    with pytest.raises(ValueError):
        wire.Array((2, 2, 4), "u8", bytes(15))
    with pytest.raises(ValueError):
        wire.decode([frames[0]])


# ---- selection -> crop, pixel layouts -----------------------------------------------------

def test_crop_box_pads_with_context_and_clamps_to_the_layer():
    layer = sl.Box(10, 20, 200, 100)  # a layer with offsets (10, 20)
    sel = sl.Box.from_corners(50, 40, 90, 60)
    assert sl.crop_box(sel, layer, context=16) == sl.Box(34, 24, 72, 52)
    assert sl.crop_box(sel, layer, context=200) == layer  # clamped on every side
    assert sl.crop_box(None, layer) == layer
    assert sl.crop_box(sl.Box(0, 0, 0, 0), layer) == layer
    near_edge = sl.crop_box(sl.Box(0, 0, 15, 25), layer, context=8)
    assert near_edge == sl.Box(10, 20, 13, 13)
    assert sl.crop_box(sel, layer, context=16).relative_to(layer) == sl.Box(24, 4, 72, 52)
    with pytest.raises(sl.LinkError) as info:
        sl.crop_box(sl.Box(500, 500, 10, 10), layer)
    assert info.value.code == "bad_selection"
    assert sl.default_context(sl.Box(0, 0, 40, 8)) == 16
    assert sl.default_context(sl.Box(0, 0, 400, 8)) == 100
    assert sl.default_context(sl.Box(0, 0, 4000, 8)) == 256


def test_mask_helpers():
    w, h = 7, 5
    mask = bytearray(w * h)
    mask[2 * w + 3] = 128
    mask[3 * w + 5] = 255
    assert sl.mask_bbox(bytes(mask), w, h) == sl.Box(3, 2, 3, 2)
    assert sl.mask_bbox(bytes(w * h), w, h) is None
    assert sl.mask_is_empty(bytes(w * h)) and not sl.mask_is_empty(bytes(mask))
    assert sl.mask_is_full(sl.full_mask(w, h)) and not sl.mask_is_full(bytes(mask))
    u16 = np.array([0, 257 * 128, 65535], "<u2").tobytes()
    assert list(sl.mask_to_u8(u16, "u16")) == [0, 128, 255]
    f32 = np.array([-1, 0, 0.5, 1, 2], "<f4").tobytes()
    assert list(sl.mask_to_u8(f32, "f32")) == [0, 0, 128, 255, 255]
    data = bytes(range(w * h))
    assert sl.crop_bytes(data, w, sl.Box(2, 1, 3, 2), 1) == bytes([9, 10, 11, 16, 17, 18])


@pytest.mark.parametrize("dtype,np_dtype", [("u8", "<u1"), ("u16", "<u2"), ("f32", "<f4")])
def test_bgra_rgba_swap_at_every_depth(dtype, np_dtype):
    rng = np.random.default_rng(2)
    px = (rng.random((5, 6, 4)) * 200).astype(np_dtype)
    swapped = np.frombuffer(sl.bgra_to_rgba(px.tobytes(), dtype), np_dtype).reshape(px.shape)
    np.testing.assert_array_equal(swapped, px[..., [2, 1, 0, 3]])
    back = sl.rgba_to_bgra(swapped.tobytes(), dtype)
    assert back == px.tobytes()


def test_precision_and_formats():
    assert sl.dtype_for_gimp_precision("u8-non-linear") == "u8"
    assert sl.dtype_for_gimp_precision("u16-perceptual") == "u16"
    assert sl.dtype_for_gimp_precision("half-linear") == "f32"
    assert sl.dtype_for_gimp_precision("double-non-linear") == "f32"
    assert sl.gimp_babl_format("u16") == "R'G'B'A u16" and sl.gimp_babl_format("f32", 1) == "Y float"
    assert sl.dtype_for_krita_depth("U16") == "u16"
    with pytest.raises(sl.LinkError):
        sl.dtype_for_krita_depth("F16")
    assert sl.output_scale(sl.Box(0, 0, 10, 20), wire.Array((40, 20, 4), "u8", bytes(3200))) == 2.0


# ---- settings and messages -------------------------------------------------------------------

def test_settings_precedence(tmp_path):
    (tmp_path / "sfumato_install.json").write_text(json.dumps({"python": "/opt/eng/bin/python", "engine_root": "/src"}))
    s = sl.load_settings(package_dir=tmp_path, env={})
    assert s.address == sl.DEFAULT_ADDRESS and s.python == "/opt/eng/bin/python" and s.engine_root == "/src"
    stored = json.dumps({"address": "tcp://127.0.0.1:6000", "timeout": 2, "transport": "bogus", "junk": 1})
    s = sl.load_settings(stored, package_dir=tmp_path, env={})
    assert s.address == "tcp://127.0.0.1:6000" and s.timeout == 2.0 and s.transport == "auto"
    s = sl.load_settings(stored, package_dir=tmp_path,
                         env={"SFUMATO_ENGINE": "ipc:///tmp/x", "SFUMATO_PYTHON": "/usr/bin/python3",
                              "SFUMATO_TRANSPORT": "relay"})
    assert (s.address, s.python, s.transport) == ("ipc:///tmp/x", "/usr/bin/python3", "relay")
    assert sl.Settings.from_json(s.to_json()) == s
    assert sl.Settings.from_json("not json") == sl.Settings()


def test_error_messages_say_what_to_do():
    assert "sfumato serve" in sl.describe("engine_unreachable", address="tcp://127.0.0.1:5555")
    assert "models/" in sl.describe("model_missing", "no model 'oil' in models/")
    assert sl.describe("bad_param", "must be at most 1.0", "params.strength").startswith("Invalid setting “strength”")
    assert "smaller" in sl.describe("too_large", "too many pixels")
    assert "bug" in sl.describe("internal", "boom")
    assert sl.describe("cancelled") == "Cancelled."
    err = sl.LinkError("unknown_op", "unknown op 'restore'", op="restore")
    assert "“restore”" in str(err) and err.code == "unknown_op"


def test_op_helpers_fit_params_and_require_op():
    from sfumato_link import ops

    welcome = {"ops": {"inpaint": {"params": {"strength": {"default": 1.0}, "seed": {"default": None}}},
                       "echo": {"params": {}, "test_only": True}}}
    kept, dropped = ops.fit_params(welcome, "inpaint", {"strength": 0.5, "method": "patch", "seed": 3})
    assert kept == {"strength": 0.5, "seed": 3} and dropped == ["method"]
    assert ops.fit_params(None, "inpaint", {"a": 1}) == ({"a": 1}, [])
    assert ops.require_op(welcome, "inpaint") is welcome["ops"]["inpaint"]
    with pytest.raises(sl.LinkError) as info:
        ops.require_op(welcome, "restore")
    assert info.value.code == "unknown_op" and "inpaint" in info.value.message and "echo" not in info.value.message


def test_keepalive_pings_a_quiet_engine_and_gives_up_on_a_dead_one(engine):
    with ZmqTransport(engine.address) as transport:
        s = sl.Session(transport, keepalive=0.2, dead_after=1.0)
        image = arr(np.zeros((4, 4, 3), np.uint8))
        job = s.submit("echo", {"image": image}, {"steps": 1, "delay": 1.6})  # silent for 1.6 s
        job.wait(20)
        assert job.state == "done" and not s._replies  # the pong kept it alive and was not hoarded
    with ZmqTransport("tcp://127.0.0.1:9") as transport:
        s = sl.Session(transport, keepalive=0.2, dead_after=0.6)
        job = s.submit("echo", {"image": image}, {})
        with pytest.raises(sl.LinkError) as info:
            job.wait(10)
        assert info.value.code == sl.ENGINE_UNREACHABLE and job.state == "error"


@pytest.mark.parametrize("dtype,np_dtype", [("u8", "<u1"), ("u16", "<u2"), ("f32", "<f4")])
def test_clear_outside_mask_makes_unselected_pixels_transparent(dtype, np_dtype):
    rng = np.random.default_rng(3)
    px = (rng.random((6, 5, 4)) * 200 + 1).astype(np_dtype)
    mask = np.zeros((6, 5), np.uint8)
    mask[1:4, 2:5] = 255
    mask[0, 0] = 1  # barely selected still counts as selected
    out = np.frombuffer(sl.clear_outside_mask(px.tobytes(), mask.tobytes(), dtype), np_dtype).reshape(px.shape)
    selected = mask > 0
    np.testing.assert_array_equal(out[selected], px[selected])
    assert (out[~selected] == 0).all()
    with pytest.raises(ValueError):
        sl.clear_outside_mask(px.tobytes(), mask.tobytes()[:-1], dtype)
