"""A bare ZeroMQ DEALER speaking msgpack, for tests that must control every byte the engine sees."""
from __future__ import annotations

import time

import msgpack
import zmq


class Raw:
    """A bare DEALER speaking msgpack, to control every byte the engine sees."""

    def __init__(self, address: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)

    def send(self, header: dict, *buffers: bytes) -> None:
        self.sock.send_multipart([msgpack.packb({"v": 1, **header}), *buffers])

    def recv(self, timeout: float = 5.0) -> tuple[dict, list[bytes]]:
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError("no message from the engine")
        frames = self.sock.recv_multipart()
        return msgpack.unpackb(frames[0]), frames[1:]

    def recv_until(self, kind: str, rid: str | None = None, timeout: float = 5.0) -> dict:
        """Skip progress and other ids until a message of `kind` (for `rid`) arrives."""
        deadline = time.monotonic() + timeout
        while True:
            msg, _ = self.recv(max(0.01, deadline - time.monotonic()))
            if msg["type"] == kind and (rid is None or msg.get("id") == rid):
                return msg
            if msg["type"] not in ("progress", "accepted") and (rid is None or msg.get("id") == rid):
                raise AssertionError(f"expected {kind}, got {msg}")

    def request(self, header: dict, *buffers: bytes, timeout: float = 10.0) -> dict:
        """Send one request and return the engine's final answer to it (skipping progress)."""
        self.send(header, *buffers)
        deadline = time.monotonic() + timeout
        while True:
            msg, _ = self.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("id") == header["id"] and msg["type"] in ("result", "error", "cancelled", "pong", "welcome"):
                return msg

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()
