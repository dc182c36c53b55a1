"""The engine over real loopback sockets: every message, validation, limits, cancellation,
concurrency, vanished clients, bind rules."""
from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from rawclient import Raw
from engine.client import Client
from engine.protocol import Limits
from engine.server import BindRefused, Engine, check_bind, is_local_bind
from engine.tasks import OPERATIONS

LIMITS = Limits(max_queue_per_client=3, max_steps=50)


def rgb(h: int = 4, w: int = 4) -> np.ndarray:
    return (np.arange(h * w * 3) % 251).astype(np.uint8).reshape(h, w, 3)


def submit_header(rid: str, **params) -> tuple[dict, bytes]:
    img = rgb()
    return ({"type": "submit", "id": rid, "op": "echo",
             "inputs": {"image": {"buf": 1, "shape": list(img.shape), "dtype": "u8"}}, "params": params},
            img.tobytes())


@pytest.fixture()
def engine(tmp_path):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu", limits=LIMITS).start()
    yield eng
    eng.stop()


def test_welcome(raw):
    raw.send({"type": "hello", "id": "h", "client": "test"})
    msg, frames = raw.recv()
    assert msg["type"] == "welcome" and msg["id"] == "h" and frames == []
    assert msg["protocol"] == 1 and msg["device"] == "cpu" and isinstance(msg["engine"], str)
    assert msg["ops"]["echo"]["test_only"] is True
    assert msg["ops"]["echo"]["params"]["steps"]["default"] == 1
    assert msg["limits"]["max_queue_per_client"] == 3 and msg["limits"]["max_pixels"] > 0
    assert msg["models"] == []
    assert "rules" in msg["capabilities"] and all(isinstance(c, str) for c in msg["capabilities"])
    assert msg["ops"]["echo"]["params"]["steps"]["max"] == LIMITS.max_steps  # the limit that is enforced
    assert msg["ops"]["echo"]["inputs"]["mask"]["same_size_as"] == "image"


def test_capabilities_from_a_client(raw):
    """A client's capabilities are optional; names the engine does not know are ignored."""
    raw.send({"type": "hello", "id": "c", "client": "future", "capabilities": ["no-such-capability", "rules"]})
    msg = raw.recv()[0]
    assert msg["type"] == "welcome" and msg["id"] == "c" and "rules" in msg["capabilities"]
    raw.send({"type": "hello", "id": "d", "capabilities": "rules"})
    msg = raw.recv()[0]
    assert (msg["type"], msg["code"], msg["field"]) == ("error", "bad_message", "capabilities")


def _queue_events(raw: Raw, ids: tuple[str, ...], last: str) -> dict[str, list]:
    """Every accepted / queued / start event per job id, until `last` has its result."""
    seen: dict[str, list] = {rid: [] for rid in ids}
    while True:
        msg = raw.recv(10.0)[0]
        if msg["type"] == "accepted":
            seen[msg["id"]].append(("accepted", msg["position"]))
        elif msg["type"] == "progress" and msg["stage"] in ("queued", "start"):
            seen[msg["id"]].append((msg["stage"], msg.get("ahead")))
        elif msg["type"] == "result" and msg["id"] == last:
            return seen


@pytest.mark.parametrize("listed", [True, False])
def test_a_waiting_job_hears_how_many_are_ahead(raw, listed):
    """With the `queue` capability a queued job is told its count after `accepted` and each time
    it drops; a client without it gets the v1 sequence (first progress = left the queue)."""
    raw.send({"type": "hello", "id": "h", **({"capabilities": ["queue"]} if listed else {})})
    assert "queue" in raw.recv_until("welcome", "h")["capabilities"]
    for rid, delay in (("a", 0.6), ("b", 0.2), ("c", 0.0)):
        raw.send(*submit_header(rid, steps=3, delay=delay))
    seen = _queue_events(raw, ("a", "b", "c"), last="c")
    assert seen["a"] == [("accepted", 0), ("start", None)]
    if listed:
        assert seen["b"] == [("accepted", 1), ("queued", 1), ("start", None)]
        assert seen["c"] == [("accepted", 2), ("queued", 2), ("queued", 1), ("start", None)]
    else:
        assert seen["b"] == [("accepted", 1), ("start", None)]
        assert seen["c"] == [("accepted", 2), ("start", None)]


def test_welcome_publishes_the_declaration_kinds(raw):
    raw.send({"type": "hello", "id": "k"})
    ops = raw.recv()[0]["ops"]
    restore, generate, stylize = ops["restore"], ops["generate"], ops["stylize"]
    assert restore["params"]["scale"] == {"type": "enum", "default": 2, "choices": [2, 4],
                                          "doc": restore["params"]["scale"]["doc"]}
    assert restore["params"]["task"]["type"] == "multi" and restore["params"]["task"]["exclusive"] == ["auto"]
    assert restore["params"]["model"]["type"] == "model" and "base" in restore["params"]["model"]["model_kinds"]
    assert {"kind": "size", "width": "width", "height": "height"} in generate["rules"]
    pixels = next(r for r in generate["rules"] if r["kind"] == "pixels")
    assert pixels["of"] == ["params.width", "params.height", "params.variants"] and pixels["max"] == 2048 * 2048
    steps = generate["params"]["steps"]
    assert steps["max"] == LIMITS.max_steps and steps["limit"] == "max_steps" and steps["max_code"] == "too_large"
    upscale = next(r for r in restore["rules"] if r["kind"] == "pixels")
    assert upscale["when"] == {"task": "upscale"} and upscale["max"] == LIMITS.max_pixels
    assert stylize["inputs"]["style"]["min_side"] == 16
    assert any(r["kind"] == "require" and r["of"] == ["inputs.style", "params.style_model"] for r in stylize["rules"])


def test_ping_status_models(raw, engine):
    raw.send({"type": "ping", "id": "p"})
    assert raw.recv()[0] == {"v": 1, "type": "pong", "id": "p", "instance": engine.instance}
    raw.send({"type": "status", "id": "s"})
    status = raw.recv()[0]
    assert status["type"] == "status" and status["queued"] == 0 and status["running"] is False
    raw.send({"type": "models", "id": "m", "refresh": True})
    assert raw.recv()[0]["models"] == []


def test_models_lists_a_real_model(tmp_path):
    # an untrained model in the real file format: listing does not need trained weights
    from engine.diffusion.denoiser import Denoiser
    from engine.diffusion.modelfile import save_model

    tiny = {"channels": [8, 8, 8, 8], "groups": 4, "emb_dim": 16}
    save_model(Denoiser.build("unet", tiny), tmp_path / "builtin", {"steps": 0})
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu").start() as eng:
        with Client(eng.address) as client:
            names = [m["name"] for m in client.models(refresh=True)]
            assert "builtin" in names
            assert "builtin" in [m["name"] for m in client.hello()["models"]]


def save_untrained(folder) -> None:
    """A tiny untrained model in the real file format."""
    from engine.diffusion.denoiser import Denoiser
    from engine.diffusion.modelfile import save_model

    save_model(Denoiser.build("unet", {"channels": [8, 8, 8, 8], "groups": 4, "emb_dim": 16}), folder, {"steps": 0})


@pytest.fixture()
def model_engine(tmp_path):
    """An engine whose models folder holds an untrained model in the real file format."""
    models = tmp_path / "models"
    save_untrained(models / "builtin")
    (tmp_path / "elsewhere").mkdir()
    save_untrained(tmp_path / "elsewhere" / "mine")
    with Engine(bind="tcp://127.0.0.1:*", models_dir=models, device="cpu").start() as eng:
        yield eng, models


def model_submit(rid: str, model: str) -> tuple[dict, bytes, bytes]:
    img, mask = rgb(8, 8), np.full((8, 8, 1), 255, np.uint8)
    return ({"type": "submit", "id": rid, "op": "inpaint", "params": {"model": model, "steps": 1},
             "inputs": {"image": {"buf": 1, "shape": [8, 8, 3], "dtype": "u8"},
                        "mask": {"buf": 2, "shape": [8, 8, 1], "dtype": "u8"}}}, img.tobytes(), mask.tobytes())


def test_model_names_never_reach_outside_the_models_folder(model_engine, tmp_path):
    """Only names the registry lists: a path (absolute, `..`, /proc/self/cwd) is bad_param on
    params.model, an unlisted name model_missing, and no message shows where models live."""
    eng, models = model_engine
    paths = [str(tmp_path / "elsewhere" / "mine"), "../elsewhere/mine", f"/proc/self/cwd/{tmp_path}/elsewhere/mine",
             str(models / "builtin"), "builtin/", "..", "./builtin", "C:\\models\\builtin"]
    r = Raw(eng.address)
    try:
        for i, name in enumerate(paths + ["mine"]):
            msg = r.request(*model_submit(f"p{i}", name))
            expected = "model_missing" if name == "mine" else "bad_param"
            assert (msg["type"], msg["code"], msg["field"]) == ("error", expected, "params.model"), (name, msg)
            if str(models) not in name:  # the message may repeat the name sent, and nothing more
                assert str(models) not in msg["message"] and str(models.resolve()) not in msg["message"]
        assert [m["loaded"] for m in eng.models.list()] == [False]  # nothing was loaded on the way
    finally:
        r.close()


def test_one_cached_model_per_real_folder(tmp_path):
    from engine.registry import ModelRegistry

    save_untrained(tmp_path / "builtin")
    (tmp_path / "alias").symlink_to(tmp_path / "builtin", target_is_directory=True)
    reg = ModelRegistry(tmp_path, "cpu")
    assert reg.names() == ["alias", "builtin"]
    assert reg.get("alias") is reg.get("builtin") is reg.get("builtin")
    assert all(m["loaded"] for m in reg.list())


def test_submit_progress_result(raw, engine):
    header, buf = submit_header("j1", steps=3)
    raw.send(header, buf)
    msg, _ = raw.recv()
    assert msg == {"v": 1, "type": "accepted", "id": "j1", "position": 0, "instance": engine.instance}
    steps = []
    while True:
        msg, frames = raw.recv()
        if msg["type"] != "progress":
            break
        steps.append(msg["step"])
    assert steps == [0, 1, 2, 3]
    assert msg["type"] == "result" and msg["id"] == "j1"
    out = msg["outputs"]["image"]
    assert out["shape"] == [4, 4, 3] and out["dtype"] == "u8"
    assert frames[out["buf"] - 1] == buf
    assert msg["meta"]["op"] == "echo" and "timings" in msg["meta"]


def test_preview_is_an_array_frame(raw):
    header, buf = submit_header("pv", steps=4, preview=True)
    raw.send(header, buf)
    while True:
        msg, frames = raw.recv()
        if msg["type"] == "progress" and "preview" in msg:
            desc = msg["preview"]
            assert desc["dtype"] == "u8" and len(frames[desc["buf"] - 1]) == int(np.prod(desc["shape"]))
            break
    raw.recv_until("result", "pv")


def test_unknown_op(raw):
    header, buf = submit_header("u")
    raw.send({**header, "op": "nope"}, buf)
    msg = raw.recv()[0]
    assert msg["type"] == "error" and msg["code"] == "unknown_op" and msg["field"] == "op" and msg["id"] == "u"


BAD_SUBMITS = [
    ({"params": {"speed": 3}}, "bad_param", "params.speed"),
    ({"params": {"steps": "many"}}, "bad_param", "params.steps"),
    ({"params": {"steps": 2.5}}, "bad_param", "params.steps"),
    ({"params": {"delay": float("nan")}}, "bad_param", "params.delay"),
    ({"params": {"delay": float("inf")}}, "bad_param", "params.delay"),
    ({"params": {"delay": -1}}, "bad_param", "params.delay"),
    ({"params": {"preview": 1}}, "bad_param", "params.preview"),
    ({"params": {"fail": "maybe"}}, "bad_param", "params.fail"),
    ({"params": {"steps": 51}}, "too_large", "params.steps"),  # engine cap (50 here)
    ({"params": {"steps": 5000}}, "too_large", "params.steps"),  # op cap
]


@pytest.mark.parametrize("change,code,field", BAD_SUBMITS)
def test_bad_params(raw, change, code, field):
    header, buf = submit_header("b")
    raw.send({**header, **change}, buf)
    msg = raw.recv()[0]
    assert (msg["type"], msg["code"], msg["field"], msg["id"]) == ("error", code, field, "b"), msg
    assert msg["message"]


def test_named_model_must_exist(raw):
    op = next(o for o in OPERATIONS.values() if any(p.name == "model" for p in o.params))
    inputs, buffers = {}, []
    for i, s in enumerate(x for x in op.inputs if x.required):
        c = s.channels[0]
        inputs[s.name] = {"buf": i + 1, "shape": [8, 8, c], "dtype": "u8"}
        buffers.append(bytes(64 * c))
    raw.send({"type": "submit", "id": "mm", "op": op.name, "inputs": inputs, "params": {"model": "no-such-model"}},
             *buffers)
    msg = raw.recv_until("error", "mm")
    assert (msg["code"], msg["field"]) == ("model_missing", "params.model") and "models" in msg["message"]


def test_bad_inputs(raw):
    img, mask3, mask_small = rgb(), np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2, 1), np.uint8)
    d = lambda i, a, t="u8": {"buf": i, "shape": list(a.shape), "dtype": t}  # noqa: E731
    cases = [
        ({"image": d(1, img), "extra": d(2, img)}, [img, img], "inputs.extra"),
        ({"mask": d(1, mask_small)}, [mask_small], "inputs.image"),
        ({"image": d(1, img), "mask": d(2, mask3)}, [img, mask3], "inputs.mask"),
        ({"image": d(1, img), "mask": d(2, mask_small)}, [img, mask_small], "inputs.mask"),
    ]
    for i, (inputs, arrays, field) in enumerate(cases):
        raw.send({"type": "submit", "id": f"i{i}", "op": "echo", "inputs": inputs}, *[a.tobytes() for a in arrays])
        msg = raw.recv()[0]
        assert (msg["code"], msg["field"], msg["id"]) == ("bad_param", field, f"i{i}"), msg


def test_every_decode_error_gets_an_error_reply(raw):
    cases = [
        ([b"\xc1not msgpack"], "bad_message"),
        ([msgpack.packb({"v": 1, "type": "ping"}), b"extra"], "bad_message"),
        ([msgpack.packb({"v": 1, "type": "submit", "id": "x", "op": "echo",
                         "inputs": {"image": {"buf": 1, "shape": [4, 4, 3], "dtype": "u8"}}})], "bad_message"),
        ([msgpack.packb({"v": 1, "type": "submit", "id": "x", "op": "echo",
                         "inputs": {"image": {"buf": 1, "shape": [4, 4, 3], "dtype": "u8"}}}), b"short"],
         "bad_message"),
        ([msgpack.packb({"v": 1, "type": "submit", "id": "x", "op": "echo",
                         "inputs": {"image": {"buf": 1, "shape": [-4, 4, 3], "dtype": "u8"}}}), b""], "bad_message"),
        ([msgpack.packb({"v": 1, "type": "submit", "id": "x", "op": "echo",
                         "inputs": {"image": {"buf": 1, "shape": [10**5, 10**5, 3], "dtype": "u8"}}}), b""],
         "too_large"),
        ([msgpack.packb({"v": 1, "type": "submit", "id": "x", "op": "echo",
                         "inputs": {"image": {"buf": 1, "shape": [1, 1, 1], "dtype": "f32"}}}),
          np.array([np.nan], np.float32).tobytes()], "bad_param"),
        ([msgpack.packb({"v": 9, "type": "ping"})], "bad_message"),
        ([msgpack.packb({"v": 1, "type": "ping", "id": 3})], "bad_message"),
    ]
    for frames, code in cases:
        raw.sock.send_multipart(frames)
        msg = raw.recv()[0]
        assert msg["type"] == "error" and msg["code"] == code, (frames[0][:40], msg)
    raw.send({"type": "ping", "id": "alive"})
    assert raw.recv()[0]["type"] == "pong"


def test_too_many_pixels(tmp_path):
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu",
                limits=Limits(max_pixels=15)).start() as eng:
        r = Raw(eng.address)
        header, buf = submit_header("big")
        r.send(header, buf)
        msg = r.recv()[0]
        assert (msg["code"], msg["field"]) == ("too_large", "inputs.image.shape")
        r.close()


def test_oversized_frame_disconnects_only_that_client(tmp_path):
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu",
                limits=Limits(max_message_bytes=10_000)).start() as eng:
        bad = Raw(eng.address)
        bad.sock.send_multipart([msgpack.packb({"v": 1, "type": "ping", "id": "x"}), bytes(20_000)])
        with pytest.raises(TimeoutError):
            bad.recv(0.5)  # ZMQ drops a peer that exceeds MAXMSGSIZE
        good = Raw(eng.address)
        good.send({"type": "ping", "id": "ok"})
        assert good.recv()[0]["type"] == "pong"
        bad.close()
        good.close()


def test_duplicate_id_and_busy(raw):
    header, buf = submit_header("d", steps=50, delay=10)
    raw.send(header, buf)
    assert raw.recv_until("accepted", "d")["position"] == 0
    raw.send(header, buf)
    msg = raw.recv_until("error", "d")
    assert msg["code"] == "duplicate_id" and msg["field"] == "id"
    for rid in ("e", "f"):
        h, b = submit_header(rid, steps=50, delay=10)
        raw.send(h, b)
        assert raw.recv_until("accepted", rid)["position"] >= 1
    h, b = submit_header("g")
    raw.send(h, b)
    msg = raw.recv_until("error", "g")
    assert msg["code"] == "busy"
    # another connection is not limited by this one's queue
    other = Raw(raw.sock.getsockopt_string(zmq.LAST_ENDPOINT))
    h, b = submit_header("o")
    other.send(h, b)
    assert other.recv_until("accepted", "o")["position"] == 3
    other.close()
    for rid in ("f", "e", "d"):
        raw.send({"type": "cancel", "id": rid})
        raw.recv_until("cancelled", rid)


def test_cancel_queued_and_running(raw):
    for rid in ("run", "wait"):
        h, b = submit_header(rid, steps=40, delay=20)
        raw.send(h, b)
        raw.recv_until("accepted", rid)
        if rid == "run":
            raw.recv_until("progress", "run")  # it left the queue
    raw.send({"type": "status", "id": "st"})
    status = raw.recv_until("status", "st")
    assert [(j["id"], j["state"]) for j in status["jobs"]] == [("run", "running"), ("wait", "queued")]
    raw.send({"type": "cancel", "id": "wait"})
    assert raw.recv_until("cancelled", "wait")["id"] == "wait"
    t0 = time.monotonic()
    raw.send({"type": "cancel", "id": "run"})
    raw.recv_until("cancelled", "run")
    assert time.monotonic() - t0 < 3.0  # stopped at its next progress call, not after 20 s
    raw.send({"type": "cancel", "id": "run"})
    msg = raw.recv_until("error", "run")
    assert msg["code"] == "not_found"


def test_internal_and_engine_errors_keep_serving(raw):
    h, b = submit_header("boom", fail="internal")
    raw.send(h, b)
    msg = raw.recv_until("error", "boom")
    assert msg["code"] == "internal" and "RuntimeError" in msg["message"]
    h, b = submit_header("bp", fail="bad_param")
    raw.send(h, b)
    assert raw.recv_until("error", "bp")["code"] == "bad_param"
    raw.send({"type": "ping", "id": "after"})
    assert raw.recv_until("pong", "after")


def test_eight_concurrent_clients(engine):
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            with Client(engine.address, timeout=20) as client:
                for i in range(3):
                    img = np.full((16 + k, 8 + i, 4), k * 10 + i, np.uint8)
                    out = client.run("echo", {"image": img}, {"steps": 2, "delay": 0.01}).image
                    assert np.array_equal(out, img)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_vanished_client_jobs_are_cancelled(engine):
    gone = Raw(engine.address)
    for rid in ("a", "b"):
        h, b = submit_header(rid, steps=50, delay=30)
        gone.send(h, b)
    gone.recv_until("accepted", "b")
    gone.close()  # vanishes with one running and one queued job
    with Client(engine.address, timeout=10) as client:
        t0 = time.monotonic()
        out = client.run("echo", {"image": rgb()}, timeout=10).image
        assert np.array_equal(out, rgb()) and time.monotonic() - t0 < 10
        assert client.status()["queued"] == 0


def test_ipc_bind(tmp_path):
    address = f"ipc://{tmp_path}/engine.sock"
    with Engine(bind=address, models_dir=tmp_path, device="cpu").start() as eng:
        assert eng.address == address
        with Client(eng.address) as client:
            assert client.ping() < 5


def test_bind_rules():
    for address in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:5555", "tcp://127.0.0.2:*",
                    "ipc:///tmp/x", "inproc://x"):
        assert is_local_bind(address), address
        check_bind(address, insecure=False)
    for address in ("tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.2:5555", "tcp://eth0:5555",
                    "tcp://example.com:1", "udp://127.0.0.1:1"):
        assert not is_local_bind(address), address
        with pytest.raises(BindRefused, match="--insecure"):
            check_bind(address, insecure=False)
    check_bind("tcp://0.0.0.0:5555", insecure=True)
    with pytest.raises(BindRefused):
        Engine(bind="tcp://0.0.0.0:5555")
