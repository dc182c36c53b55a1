"""A client written only from docs/protocol.md: plain pyzmq + msgpack, none of engine's code.

The engine under test runs in this process (that part uses our code); everything the client
sends and checks is built by hand from the document.
"""
from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
import zmq


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    from engine.server import Engine  # the engine under test; the client below never imports engine

    engine = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path_factory.mktemp("models"), device="cpu").start()
    yield engine.address
    engine.stop()


class DocClient:
    def __init__(self, address: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)

    def send(self, frames: list) -> None:
        self.sock.send_multipart(frames, copy=False)

    def request(self, header: dict, *buffers) -> None:
        self.send([msgpack.packb({"v": 1, **header}, use_bin_type=True), *buffers])

    def recv(self, timeout: float = 5.0) -> tuple[dict, list]:
        assert self.sock.poll(int(timeout * 1000)), "the engine did not answer"
        frames = self.sock.recv_multipart(copy=False)
        return msgpack.unpackb(frames[0].bytes, raw=False), frames[1:]

    def wait_for(self, kind: str, rid: str) -> tuple[dict, list]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg, frames = self.recv()
            if msg.get("id") == rid and msg["type"] == kind:
                return msg, frames
        raise AssertionError(f"no {kind} for {rid}")

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def array(desc: dict, frames: list) -> np.ndarray:
    dtype = {"u8": "<u1", "u16": "<u2", "f32": "<f4"}[desc["dtype"]]
    return np.frombuffer(frames[desc["buf"] - 1].buffer, dtype=dtype).reshape(desc["shape"])


def test_documented_session(address):
    c = DocClient(address)
    # hello -> welcome
    c.request({"type": "hello", "id": "h1", "client": "doc-client"})
    welcome, _ = c.recv()
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1 and welcome["id"] == "h1"
    for key in ("engine", "ops", "models", "device", "limits"):
        assert key in welcome
    assert welcome["ops"]["echo"]["test_only"] is True
    limits = welcome["limits"]

    # a job that runs to its result, checking the bytes come back
    image = np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4)
    c.request({"type": "submit", "id": "ok", "op": "echo",
               "inputs": {"image": {"buf": 1, "shape": [6, 5, 4], "dtype": "u8"}}, "params": {"steps": 2}},
              image)
    accepted, _ = c.recv()
    instance = welcome["instance"]  # this run of the engine; a restart changes it
    assert isinstance(instance, str) and instance
    assert accepted == {"v": 1, "type": "accepted", "id": "ok", "position": 0, "instance": instance}
    result, frames = c.wait_for("result", "ok")
    assert np.array_equal(array(result["outputs"]["image"], frames), image)

    # submit a slow job, then cancel it while it runs
    c.request({"type": "submit", "id": "slow", "op": "echo",
               "inputs": {"image": {"buf": 1, "shape": [6, 5, 4], "dtype": "u8"}},
               "params": {"steps": 50, "delay": 25}}, image)
    c.wait_for("accepted", "slow")
    c.wait_for("progress", "slow")
    c.request({"type": "cancel", "id": "slow"})
    cancelled, _ = c.wait_for("cancelled", "slow")
    assert cancelled["type"] == "cancelled"

    # every listed error, each answered with its code; the engine keeps serving
    def submit(rid: str, inputs: dict, buffers: list, params: dict | None = None, op: str = "echo") -> list:
        header = {"v": 1, "type": "submit", "id": rid, "op": op, "inputs": inputs}
        if params is not None:
            header["params"] = params
        return [msgpack.packb(header), *buffers]

    d = {"buf": 1, "shape": [6, 5, 4], "dtype": "u8"}
    big = limits["max_side"] + 1
    cases = [
        ("malformed msgpack", [b"\xc1\xc1\xc1"], "bad_message"),
        ("missing frame", submit("e1", {"image": d}, []), "bad_message"),
        ("extra frame", submit("e2", {"image": d}, [image.tobytes(), b"more"]), "bad_message"),
        ("size mismatch", submit("e3", {"image": d}, [image.tobytes()[:-1]]), "bad_message"),
        ("unknown op", submit("e4", {"image": d}, [image.tobytes()], op="teleport"), "unknown_op"),
        ("unknown param", submit("e5", {"image": d}, [image.tobytes()], {"colour": 1}), "bad_param"),
        ("wrong type", submit("e6", {"image": d}, [image.tobytes()], {"steps": "ten"}), "bad_param"),
        ("NaN param", submit("e7", {"image": d}, [image.tobytes()], {"delay": float("nan")}), "bad_param"),
        ("inf pixels", submit("e8", {"image": {"buf": 1, "shape": [1, 1, 1], "dtype": "f32"}},
                              [np.array([np.inf], "<f4").tobytes()]), "bad_param"),
        ("negative size", submit("e9", {"image": {**d, "shape": [-6, 5, 4]}}, [image.tobytes()]), "bad_message"),
        ("absurd size", submit("e10", {"image": {**d, "shape": [big, big, 4]}}, [image.tobytes()]), "too_large"),
        ("too many pixels", submit("e11", {"image": {**d, "shape": [limits["max_side"], limits["max_side"], 1]}},
                                   [b"x"]), "too_large"),
        ("too many steps", submit("e12", {"image": d}, [image.tobytes()], {"steps": limits["max_steps"] + 1}),
         "too_large"),
        ("wrong version", [msgpack.packb({"v": 2, "type": "ping", "id": "e13"})], "bad_message"),
    ]
    for name, frames, code in cases:
        c.send(frames)
        msg, _ = c.recv()
        assert msg["type"] == "error" and msg["code"] == code, (name, msg)
        assert isinstance(msg["message"], str) and msg["message"], name

    # duplicate id while the first job is still running, then a too-long queue
    slow = {"steps": 40, "delay": 20}
    c.send(submit("dup", {"image": d}, [image.tobytes()], slow))
    c.wait_for("accepted", "dup")
    c.send(submit("dup", {"image": d}, [image.tobytes()], slow))
    assert c.wait_for("error", "dup")[0]["code"] == "duplicate_id"
    for i in range(limits["max_queue_per_client"] - 1):
        c.send(submit(f"q{i}", {"image": d}, [image.tobytes()], slow))
        c.wait_for("accepted", f"q{i}")
    c.send(submit("over", {"image": d}, [image.tobytes()], slow))
    assert c.wait_for("error", "over")[0]["code"] == "busy"
    c.request({"type": "status", "id": "st"})
    status, _ = c.wait_for("status", "st")
    assert len(status["jobs"]) == limits["max_queue_per_client"]
    for rid in [f"q{i}" for i in range(limits["max_queue_per_client"] - 1)] + ["dup"]:
        c.request({"type": "cancel", "id": rid})
        c.wait_for("cancelled", rid)
    c.request({"type": "cancel", "id": "never"})
    assert c.wait_for("error", "never")[0]["code"] == "not_found"

    # models, then the engine still answers ping
    c.request({"type": "models", "id": "m", "refresh": True})
    assert isinstance(c.wait_for("models", "m")[0]["models"], list)
    c.request({"type": "ping", "id": "last"})
    pong, _ = c.wait_for("pong", "last")
    assert pong == {"v": 1, "type": "pong", "id": "last", "instance": instance}
    c.close()
