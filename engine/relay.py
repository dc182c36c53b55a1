"""Relay for plug-ins whose Python cannot import pyzmq: stdin/stdout frames <-> a DEALER socket.

An editor's bundled Python (GIMP on Windows is an MSYS2 build) may lack a working pyzmq.
The plug-in then starts this module with the engine's own Python,
``python -m engine.relay --address tcp://127.0.0.1:5555``, and writes each multipart
message to its stdin as: u32 frame count, then per frame a u64 length and the bytes
(little-endian); replies come back on stdout the same way. The frames are passed through
unchanged, so the plug-in still speaks protocol v1 end to end.

When stdin ends (the plug-in exited or was killed) the relay sends `cancel` for every job
it saw submitted that has not ended, waits briefly for the answers, and exits: a killed
plug-in leaves no work running on the engine. Input that breaks the framing (too many
frames, a frame longer than the engine's frame limit) does the same and exits with status 1. Only pyzmq and msgpack are imported here
(no numpy, no torch), so the relay starts in a fraction of a second.

An engine served with keys needs `--server-key FILE --client-key FILE` (or the environment
variables SFUMATO_SERVER_KEY, SFUMATO_CLIENT_KEY). If the engine refuses the handshake, the
relay says why on stderr and exits with status 3 (the plug-in shows its last stderr line).
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import threading
import time
from typing import Any, BinaryIO, Sequence

import msgpack
import zmq

from . import DEFAULT_ADDRESS, MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from .keys import ENV_CLIENT_KEY, ENV_SERVER_KEY, ClientCurve, HandshakeWatch

MAX_FRAMES = 64
REFUSED_STATUS = 3  # exit status when the engine refused the handshake (the plug-ins' transport knows it)
_FINAL = ("result", "error", "cancelled")


def write_message(stream: BinaryIO, frames: Sequence[Any]) -> None:
    stream.write(struct.pack("<I", len(frames)))
    for frame in frames:
        view = memoryview(getattr(frame, "buffer", frame)).cast("B")
        stream.write(struct.pack("<Q", view.nbytes))
        stream.write(view)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_message(stream: BinaryIO) -> list[bytes] | None:
    """One message, or None at end of input."""
    head = _read_exact(stream, 4)
    if head is None:
        return None
    (count,) = struct.unpack("<I", head)
    if count > MAX_FRAMES:
        raise ValueError(f"input out of sync: {count} frames announced")
    frames = []
    for _ in range(count):
        size = _read_exact(stream, 8)
        if size is None:
            return None
        (n,) = struct.unpack("<Q", size)
        if n > MAX_MESSAGE_BYTES:
            raise ValueError(f"input out of sync: a frame of {n} bytes announced; the engine takes at most "
                             f"{MAX_MESSAGE_BYTES} bytes per frame")
        data = _read_exact(stream, n) if n else b""
        if data is None:
            return None
        frames.append(data)
    return frames


def _header(frames: Sequence[Any]) -> dict:
    try:
        header = msgpack.unpackb(memoryview(getattr(frames[0], "buffer", frames[0])), raw=False)
    except Exception:
        return {}
    return header if isinstance(header, dict) else {}


class Relay:
    """Moves messages between a byte stream pair and one DEALER connection."""

    def __init__(self, address: str, stdin: BinaryIO, stdout: BinaryIO, ctx: zmq.Context | None = None,
                 curve: ClientCurve | None = None):
        self.ctx = ctx or zmq.Context.instance()
        self.address = address
        self.stdin, self.stdout = stdin, stdout
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 500)
        if curve is not None:
            curve.apply(self.dealer)
        self.watch = HandshakeWatch(self.dealer, address, keyed=curve is not None)  # a refused key is told
        self.dealer.connect(address)
        self.open_jobs: set[str] = set()
        self.failed = False  # the plug-in's input broke the framing: exit non-zero
        self.refused = False  # the engine refused the handshake: exit REFUSED_STATUS
        self._inproc = f"inproc://sfumato-relay-{id(self)}"
        self._pipe_in = self.ctx.socket(zmq.PAIR)
        self._pipe_in.bind(self._inproc)

    def _pump_stdin(self) -> None:
        """Thread: stdin messages -> inproc PAIR (zmq sockets stay single-threaded); [] = end."""
        out = self.ctx.socket(zmq.PAIR)
        out.connect(self._inproc)
        try:
            while True:
                try:
                    frames = read_message(self.stdin)
                except (OSError, ValueError, MemoryError) as exc:
                    print(f"sfumato relay: {exc or type(exc).__name__}; cancelling open jobs and exiting",
                          file=sys.stderr)
                    self.failed = True
                    frames = None
                if frames is None or not frames:
                    out.send(b"")  # end of input
                    break
                out.send_multipart(frames)
        finally:
            out.close(linger=1000)

    def _to_engine(self, frames: list[Any]) -> None:
        header = _header(frames)
        if header.get("type") == "submit" and isinstance(header.get("id"), str):
            self.open_jobs.add(header["id"])
        # A DEALER's send blocks until a connection is up; a refused one never comes up.
        while not self.dealer.poll(50, zmq.POLLOUT):
            if self._refused():
                return
        self.dealer.send_multipart(frames, copy=False)

    def _to_plugin(self, frames: list[Any]) -> None:
        header = _header(frames)
        if header.get("type") in _FINAL:
            self.open_jobs.discard(header.get("id"))
        write_message(self.stdout, frames)

    def run(self) -> int:
        threading.Thread(target=self._pump_stdin, name="relay-stdin", daemon=True).start()
        poller = zmq.Poller()
        poller.register(self.dealer, zmq.POLLIN)
        poller.register(self._pipe_in, zmq.POLLIN)
        poller.register(self.watch.socket, zmq.POLLIN)
        try:
            while not self.refused:
                ready = dict(poller.poll())
                if self.watch.socket in ready and self._refused():
                    break
                if self._pipe_in in ready:
                    frames = self._pipe_in.recv_multipart(copy=False)
                    if len(frames) == 1 and len(frames[0].buffer) == 0:
                        break
                    self._to_engine(frames)
                if self.dealer in ready:
                    try:
                        self._to_plugin(self.dealer.recv_multipart(copy=False))
                    except (BrokenPipeError, OSError):
                        break  # the plug-in is gone: treat like end of input
            if not self.refused:
                self._cancel_open()
        finally:
            self._pipe_in.close(linger=0)
            self.watch.close()
            self.dealer.close(linger=500)
        return REFUSED_STATUS if self.refused else 1 if self.failed else 0

    def _refused(self) -> bool:
        """True (after saying why on stderr) once the engine has refused the handshake."""
        self.watch.read()
        if self.watch.refused is not None and not self.refused:
            print(f"sfumato relay: {self.watch.refused}", file=sys.stderr, flush=True)
            self.refused = True
        return self.refused

    def _cancel_open(self, wait: float = 3.0) -> None:
        """The plug-in went away: cancel its open jobs and wait briefly for the engine to confirm."""
        if not self.open_jobs:
            return
        for jid in sorted(self.open_jobs):
            self.dealer.send_multipart([msgpack.packb({"v": PROTOCOL_VERSION, "type": "cancel", "id": jid},
                                                      use_bin_type=True)])
        deadline = time.monotonic() + wait
        while self.open_jobs and time.monotonic() < deadline:
            if self.dealer.poll(50):
                header = _header(self.dealer.recv_multipart())
                if header.get("type") in _FINAL:
                    self.open_jobs.discard(header.get("id"))
        if self.open_jobs:
            print(f"sfumato relay: no confirmation of cancel for {sorted(self.open_jobs)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default=DEFAULT_ADDRESS, help="the engine's ROUTER address")
    parser.add_argument("--server-key", metavar="FILE", default=os.environ.get(ENV_SERVER_KEY) or None,
                        help=f"an engine served with keys: its server.key (or {ENV_SERVER_KEY})")
    parser.add_argument("--client-key", metavar="FILE", default=os.environ.get(ENV_CLIENT_KEY) or None,
                        help=f"this client's NAME.key_secret (or {ENV_CLIENT_KEY})")
    args = parser.parse_args(argv)
    try:
        curve = ClientCurve.optional(args.server_key, args.client_key)
    except ValueError as exc:
        print(f"sfumato relay: {exc}", file=sys.stderr)
        return 2
    code = Relay(args.address, sys.stdin.buffer, sys.stdout.buffer, curve=curve).run()
    if code == REFUSED_STATUS:  # refused while the plug-in keeps stdin open: the reader thread still blocks in read,
        sys.stdout.flush()  # and Python's shutdown would abort on its lock; leave at once instead
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
