"""Jobs belong to a connection, not to a routing id (issue 18 D11): a new socket that takes the
routing id of a client that went away sees none of its jobs, cannot cancel them and gets none
of their messages; the jobs of the vanished connection are cancelled."""
from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
import zmq

from engine.server import Engine


@pytest.fixture()
def engine(tmp_path):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu").start()
    yield eng
    eng.stop()


def dealer(ctx: zmq.Context, address: str, routing_id: bytes) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, routing_id)
    sock.connect(address)
    return sock


def send(sock: zmq.Socket, header: dict, *frames: bytes) -> None:
    sock.send_multipart([msgpack.packb({"v": 1, **header}), *frames])


def recv(sock: zmq.Socket, timeout: float) -> dict | None:
    return msgpack.unpackb(sock.recv_multipart()[0]) if sock.poll(int(timeout * 1000)) else None


def slow_job(rid: str) -> tuple[dict, bytes]:
    return ({"type": "submit", "id": rid, "op": "echo", "params": {"steps": 3, "delay": 3.0},  # a step a second
             "inputs": {"image": {"buf": 1, "shape": [2, 2, 3], "dtype": "u8"}}}, bytes(12))


def test_a_reused_routing_id_does_not_inherit_jobs(engine):
    ctx = zmq.Context()
    try:
        victim = dealer(ctx, engine.address, b"artist-1")
        for rid in ("v-run", "v-queued"):
            send(victim, *slow_job(rid))
        seen = set()
        while len(seen) < 2:
            msg = recv(victim, 5)
            assert msg is not None
            seen |= {msg["id"]} if msg["type"] == "accepted" else set()
        victim.close(0)

        time.sleep(0.3)  # the engine drops the closed connection (ZeroMQ ignores an id still in use)
        status = None
        for attempt in range(20):  # a connection that came too early stays ignored: make a new one
            thief = dealer(ctx, engine.address, b"artist-1")
            send(thief, {"type": "status", "id": f"s{attempt}"})
            status = recv(thief, 0.25)
            if status is not None:
                break
            thief.close(0)
        assert status is not None and status["type"] == "status", status
        assert status["jobs"] == [], "a new connection sees the jobs of a vanished one"
        send(thief, {"type": "cancel", "id": "v-run"})
        send(thief, {"type": "cancel", "id": "v-queued"})
        replies = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            msg = recv(thief, 0.1)
            if msg is not None:
                replies.append(msg)
        about_jobs = [(m["type"], m.get("code")) for m in replies if m.get("id") in ("v-run", "v-queued")]
        assert about_jobs == [("error", "not_found"), ("error", "not_found")], replies
        deadline = time.monotonic() + 3
        while engine.scheduler.status()["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        left = engine.scheduler.status()
        assert not left["running"] and left["queued"] == 0, "the vanished connection's jobs kept running"
        thief.close(0)
    finally:
        ctx.destroy(linger=0)


def test_in_process_clients_still_work(tmp_path):
    from engine.client import Client

    with Client.in_process(models_dir=tmp_path) as client:
        image = np.zeros((3, 3, 3), np.uint8)
        assert np.array_equal(client.run("echo", {"image": image}, {"steps": 2}).image, image)
        assert client.status()["jobs"] == []
