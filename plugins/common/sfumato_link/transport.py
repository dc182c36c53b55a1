"""Two ways to move multipart messages to the engine, with the same small interface.

- `ZmqTransport`: a DEALER socket, when the editor's Python can `import zmq`.
- `RelayTransport`: starts the engine's own Python (`python -m engine.relay`) and talks
  length-prefixed frames over its stdin/stdout; the relay owns the DEALER. Used when pyzmq
  is missing in the editor (GIMP on Windows, odd bundled Pythons).

Both take the key files of an engine served with keys (CURVE). A refused handshake is
silent in ZeroMQ, so both watch for it and raise `key_refused` rather than let the
plug-in wait for a welcome that never comes.

Both are non-blocking: `recv(timeout=0)` returns at once, so an editor can poll from its
UI loop (a QTimer in Krita, a progress loop in GIMP).
"""
from __future__ import annotations

import collections
import os
import queue
import subprocess
import threading
import uuid
from typing import Any, Sequence

from . import framing
from .errors import KEY_REFUSED, RELAY_FAILED, LinkError
from .guard import detached


class Transport:
    """send(frames); recv(timeout) -> frames or None; close(). `kind` names the path taken."""

    kind = "none"
    address = ""

    def send(self, frames: Sequence[Any]) -> None:
        raise NotImplementedError

    def recv(self, timeout: float = 0.0) -> list[Any] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def zmq_available() -> bool:
    try:
        import zmq  # noqa: F401
    except Exception:  # ImportError, or a broken binary wheel for another ABI
        return False
    return True


def new_routing_id() -> bytes:
    """A routing id unique to this connection; a helper process can reuse it to cancel jobs."""
    return b"sfl-" + uuid.uuid4().hex[:16].encode()


class ZmqTransport(Transport):
    """A DEALER connected to the engine's ROUTER. Large frames go out without copies."""

    kind = "zmq"

    def __init__(self, address: str, routing_id: bytes | None = None, server_key: str = "", client_key: str = ""):
        import zmq

        self._zmq = zmq
        self.address = address
        self.routing_id = routing_id or new_routing_id()
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.ROUTING_ID, self.routing_id)
        self._keyed = bool(server_key or client_key)
        if self._keyed:
            try:
                _apply_keys(self._sock, server_key, client_key)
            except LinkError:
                self._sock.close(0)
                raise
        failed = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                  | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        self._monitor = self._sock.get_monitor_socket(failed)
        self._sock.connect(address)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)

    def send(self, frames: Sequence[Any]) -> None:
        # copy=False only pays off for big buffers; tiny ones are cheaper to copy
        big = any((f.nbytes if isinstance(f, memoryview) else len(f)) > 65536 for f in frames)
        # A DEALER's send waits for a connection; one whose keys are refused never comes up.
        while not self._sock.poll(100, self._zmq.POLLOUT):
            self._check_refused()
        self._sock.send_multipart(list(frames), copy=not big)

    def _check_refused(self) -> None:
        """Raise key_refused if the engine refused a handshake since the last look."""
        from zmq.utils.monitor import recv_monitor_message

        if self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            raise LinkError(KEY_REFUSED, _refusal(self._zmq, event, self._keyed), address=self.address)

    def recv(self, timeout: float = 0.0) -> list[Any] | None:
        ready = dict(self._poller.poll(int(max(0.0, timeout) * 1000)))
        if self._sock in ready:
            return self._sock.recv_multipart(copy=False)
        self._check_refused()
        return None

    def close(self) -> None:
        if not self._sock.closed:
            self._sock.disable_monitor()
            self._monitor.close(0)
            self._sock.close(linger=300)  # long enough for a last `cancel` to leave


def _apply_keys(sock: Any, server_key: str, client_key: str) -> None:
    """CURVE on a socket from the two key files (zmq certificate files)."""
    from zmq.auth.certs import load_certificate

    if not server_key or not client_key:
        raise LinkError(KEY_REFUSED, "both the engine key file (server.key) and this editor's client key file "
                        "(NAME.key_secret) are needed")
    try:
        server_public, _ = load_certificate(server_key)
        public, secret = load_certificate(client_key)
    except (OSError, ValueError) as exc:
        raise LinkError(KEY_REFUSED, f"cannot read a key file: {exc}") from None
    if not secret:
        raise LinkError(KEY_REFUSED, f"{client_key} holds no secret key; use the NAME.key_secret file")
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret


def _refusal(zmq: Any, event: int, keyed: bool) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return "this client key is not authorised (or was revoked) on the engine"
    if not keyed:
        return "the engine requires a client key"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return "the engine does not use keys; clear the key settings"
    return "the engine key file is not this engine's server.key, or the engine refused this key"


RELAY_REFUSED = 3  # the relay's exit status when the engine refused its keys (engine/relay.py)


def _relay_env(engine_root: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if engine_root:
        env["PYTHONPATH"] = engine_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    # the relay is another Python: never let the editor's Python settings leak into it
    for key in ("PYTHONHOME", "PYTHONEXECUTABLE"):
        env.pop(key, None)
    return env


class RelayTransport(Transport):
    """Frames over the stdin/stdout of `python -m engine.relay --address ADDRESS`.

    The relay runs in its own session so that an editor killing the plug-in's process group
    (GIMP does, on Cancel) leaves the relay alive long enough to see end-of-input and send
    `cancel` for the jobs still open.
    """

    kind = "relay"

    def __init__(self, address: str, python: str, engine_root: str | None = None, start_timeout: float = 10.0,
                 server_key: str = "", client_key: str = ""):
        self.address, self.python = address, python
        cmd = [python, "-m", "engine.relay", "--address", address]
        if server_key or client_key:
            cmd += ["--server-key", server_key, "--client-key", client_key]
        kwargs = detached()
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, bufsize=0, env=_relay_env(engine_root),
                                          cwd=engine_root or None, **kwargs)
        except OSError as exc:
            raise LinkError(RELAY_FAILED, f"{python}: {exc}") from None
        self._inbox: "queue.Queue[list[bytes] | None]" = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._read_stdout, name="sfumato-relay-out", daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="sfumato-relay-err", daemon=True)
        self._stderr_thread.start()

    def _read_stdout(self) -> None:
        try:
            while True:
                msg = framing.read_message(self._proc.stdout)
                if msg is None:
                    break
                self._inbox.put(msg)
        except (OSError, ValueError) as exc:
            self._stderr.append(f"relay stream error: {exc}")
        self._inbox.put(None)

    def _read_stderr(self) -> None:
        for line in iter(self._proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def _failed(self) -> LinkError:
        try:
            self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        else:
            self._stderr_thread.join(timeout=1.0)  # let the reader take the last words before reporting
        tail = self.stderr_tail().strip().splitlines()
        detail = tail[-1] if tail else f"exit status {self._proc.returncode}"
        if self._proc.returncode == RELAY_REFUSED:
            return LinkError(KEY_REFUSED, detail.removeprefix("sfumato relay: "), address=self.address)
        return LinkError(RELAY_FAILED, f"{self.python} -m engine.relay stopped: {detail}")

    def send(self, frames: Sequence[Any]) -> None:
        if self._closed:
            raise LinkError(RELAY_FAILED, "relay is closed")
        try:
            with self._lock:
                framing.write_message(self._proc.stdin, frames)
        except (OSError, ValueError):
            raise self._failed() from None

    def recv(self, timeout: float = 0.0) -> list[Any] | None:
        try:
            msg = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return None
        if msg is None:
            self._inbox.put(None)  # stay failed for later calls
            raise self._failed()
        return msg

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._proc.stdin.close()  # the relay cancels open jobs and exits on end of input
        except OSError:
            pass
        try:
            self._proc.wait(timeout=3.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
