"""The Python client against a real in-process engine on loopback."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from conftest import free_port
from engine.client import Client, EngineClientError, EngineTimeout, Result, as_array


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with Client.in_process(models_dir=tmp_path_factory.mktemp("models"), device="cpu", timeout=10) as c:
        yield c


def test_hello_ping_status_models(client):
    welcome = client.hello()
    assert welcome["protocol"] == 1 and "echo" in welcome["ops"]
    assert client.ping() < 5
    assert client.status()["jobs"] == []
    assert client.models(refresh=True) == []


def test_run_numpy_and_pil(client):
    arr = np.random.default_rng(0).integers(0, 256, (9, 7, 4), dtype=np.uint8)
    result = client.run("echo", {"image": arr})
    assert isinstance(result, Result) and np.array_equal(result.image, arr)
    assert result.meta["op"] == "echo"
    pil = Image.fromarray(arr[:, :, :3])
    assert np.array_equal(client.run("echo", {"image": pil}).image, arr[:, :, :3])
    grey = Image.fromarray(arr[:, :, 0])
    mask = client.run("echo", {"image": arr, "mask": grey}).outputs["mask"]
    assert mask.shape == (9, 7, 1) and np.array_equal(mask[:, :, 0], arr[:, :, 0])
    f32 = np.linspace(0, 1, 30, dtype=np.float64).reshape(5, 6, 1)
    out = client.run("echo", {"image": f32}).image
    assert out.dtype == np.float32 and np.allclose(out, f32)


def test_on_progress(client):
    events = []
    client.run("echo", {"image": np.zeros((4, 4, 3), np.uint8)}, {"steps": 4, "preview": True},
               on_progress=events.append)
    assert [e["step"] for e in events] == [0, 1, 2, 3, 4]
    assert events[-1]["total"] == 4 and isinstance(events[-1]["preview"], np.ndarray)


def test_submit_and_cancel(client):
    job = client.submit("echo", {"image": np.zeros((4, 4, 3), np.uint8)}, {"steps": 40, "delay": 20})
    assert job.position == 0 and not job.done
    time.sleep(0.2)
    job.cancel()
    with pytest.raises(EngineClientError) as info:
        job.result(5)
    assert info.value.code == "cancelled"


def test_cancel_a_queued_job(client):
    img = np.zeros((4, 4, 3), np.uint8)
    first = client.submit("echo", {"image": img}, {"steps": 40, "delay": 20})
    second = client.submit("echo", {"image": img})
    assert second.position >= 1  # behind the first job (and any job still winding down)
    client.cancel(second.id)
    with pytest.raises(EngineClientError, match="cancelled"):
        second.result(5)
    first.cancel()
    with pytest.raises(EngineClientError):
        first.result(5)


def test_job_timeout_cancels_the_job(client):
    with pytest.raises(EngineTimeout):
        client.run("echo", {"image": np.zeros((4, 4, 3), np.uint8)}, {"steps": 40, "delay": 20}, timeout=0.5)
    deadline = time.monotonic() + 5
    while client.status()["jobs"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.status()["jobs"] == []


def test_errors_carry_the_engine_code(client):
    with pytest.raises(EngineClientError) as info:
        client.run("echo", {"image": np.zeros((4, 4, 3), np.uint8)}, {"steps": "x"})
    assert (info.value.code, info.value.field) == ("bad_param", "params.steps")
    with pytest.raises(EngineClientError) as info:
        client.run("echo", {"image": np.zeros((4, 4, 3), np.uint8)}, {"fail": "internal"})
    assert info.value.code == "internal"
    assert client.ping() < 5


def test_every_op_is_a_method(client):
    """Op methods come from the engine's declarations: positional inputs, keyword parameters."""
    img, mask = np.arange(48, dtype=np.uint8).reshape(4, 4, 3), np.full((4, 4, 1), 9, np.uint8)
    assert np.array_equal(client.echo(img), img)
    events = []
    assert np.array_equal(client.echo(img, mask, steps=2, on_progress=events.append), img)
    assert [e["step"] for e in events if e["stage"] == "echo"] == [1, 2]
    assert np.array_equal(client.call("echo", image=img, mask=None), img)
    with pytest.raises(EngineClientError) as info:
        client.echo(img, steps=0)
    assert (info.value.code, info.value.field) == ("bad_param", "params.steps")
    with pytest.raises(TypeError):
        client.echo(img, mask, img)
    with pytest.raises(AttributeError, match="no such operation"):
        client.no_such_op(img)
    with pytest.raises(EngineClientError) as info:
        client.call("no_such_op", img)
    assert info.value.code == "unknown_op"


def test_hello_to_an_engine_from_before_capabilities():
    """An older engine refuses the unknown `capabilities` field; the client says hello again without it."""
    import threading

    import msgpack
    import zmq

    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    seen = []

    def old_engine() -> None:
        for _ in range(2):
            if not router.poll(5000):
                return
            ident, frame = router.recv_multipart()
            header = msgpack.unpackb(frame)
            seen.append(sorted(header))
            reply = ({"type": "error", "code": "bad_message", "field": "capabilities", "message": "unknown field"}
                     if "capabilities" in header else {"type": "welcome", "protocol": 1, "ops": {}})
            router.send_multipart([ident, msgpack.packb({"v": 1, "id": header["id"], **reply})])

    thread = threading.Thread(target=old_engine, daemon=True)
    thread.start()
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=5) as c:
            assert c.hello()["type"] == "welcome"
    finally:
        thread.join(5)
        router.close(0)
    assert seen == [["capabilities", "client", "id", "type", "v"], ["client", "id", "type", "v"]]


def test_no_engine_is_a_clear_timeout():
    with Client(f"tcp://127.0.0.1:{free_port()}", timeout=0.5) as c:
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout) as info:
            c.hello()
        assert info.value.code == "timeout" and time.monotonic() - t0 < 3


def test_closed_client_refuses():
    c = Client(f"tcp://127.0.0.1:{free_port()}")
    c.close()
    with pytest.raises(EngineClientError):
        c.ping()


def test_as_array_conversions():
    assert as_array(np.zeros((2, 3), bool)).shape == (2, 3, 1)
    assert as_array(np.ones((2, 2, 3), bool)).max() == 255
    assert as_array(Image.new("LA", (3, 2))).shape == (2, 3, 4)
    assert as_array(Image.new("P", (3, 2))).shape == (2, 3, 3)
    assert as_array(Image.new("I;16", (3, 2))).dtype == np.uint16
    assert as_array(Image.new("F", (3, 2))).dtype == np.float32
    with pytest.raises(TypeError):
        as_array(np.zeros((2, 2, 3), np.int32))
    with pytest.raises(ValueError):
        as_array(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(TypeError):
        as_array([[1, 2]])
