"""Start the local engine for the artist when none answers (both editors share this).

When the configured address is local (loopback tcp or ipc) and nothing listens there, the
plug-in starts `PYTHON -m engine.cli serve --bind ADDRESS --stop-with HOST_PID` with the
Python recorded by `sfumato plugins install` (settings.python / engine_root), in a session
of its own so that the editor's signals do not reach it. The engine stops by itself when
the editor process ends (`--stop-with`), unless `keep_engine` is set. A remote address is
never started: that engine belongs to someone else.

`EngineStart` never blocks: `poll()` says starting / ready / failed, so Krita polls it from
its timer; `wait()` is the blocking loop for GIMP's plug-in process. The engine's output
goes to a log file (GIMP's plug-in process exits long before the engine does); a failed
start shows the end of that log and the command to run by hand.
"""
from __future__ import annotations

import collections
import os
import re
import shlex
import socket
import subprocess
import tempfile
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from .errors import ENGINE_START_FAILED, LinkError
from .guard import detached
from .settings import Settings, guess_python
from .transport import _relay_env as engine_env  # the engine's Python, never the editor's settings

READY = " ready on "  # the line `sfumato serve` prints once it listens (engine/cli/commands.py)
START_TIMEOUT = 180.0  # seconds: a cold start imports torch, which is slow on a busy laptop
TAIL_LINES = 12
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STARTING, READY_STATE, FAILED = "starting", "ready", "failed"


def is_local(address: str) -> bool:
    """ipc:// paths and loopback tcp addresses: the only ones a plug-in may start an engine for."""
    if address.startswith("ipc://"):
        return True
    if not address.startswith("tcp://"):
        return False
    return (urlsplit(address).hostname or "") in LOCAL_HOSTS


def listening(address: str, timeout: float = 0.5) -> bool:
    """Whether anything accepts connections at a local address (a quick probe before `hello`)."""
    try:
        if address.startswith("ipc://"):
            if not hasattr(socket, "AF_UNIX"):
                return True  # cannot probe: let hello decide
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = address[len("ipc://"):]
        else:
            parts = urlsplit(address)
            if parts.port is None:
                return True
            family = socket.AF_INET6 if ":" in (parts.hostname or "") else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            target = (parts.hostname, parts.port)
    except ValueError:
        return True  # a malformed address: let the transport report it
    sock.settimeout(timeout)
    try:
        sock.connect(target)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def should_start(settings: Settings) -> bool:
    """Auto-start is on, the address is local, and nothing listens there."""
    return settings.autostart and is_local(settings.address) and not listening(settings.address)


def engine_command(settings: Settings, host_pid: int | None) -> list[str]:
    """The engine's command line; `--stop-with` unless the engine should outlive the editor."""
    cmd = [guess_python(settings), "-m", "engine.cli", "serve", "--bind", settings.address]
    if host_pid and not settings.keep_engine:
        cmd += ["--stop-with", str(host_pid)]
    return cmd


def log_path(address: str) -> str:
    """Where a started engine writes its output: one file per address in the temp folder."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", address).strip("-")
    return os.path.join(tempfile.gettempdir(), f"sfumato-engine-{name}.log")


class EngineStart:
    """One engine process started for this editor. `poll()` from a loop or timer; never blocks."""

    def __init__(self, settings: Settings, host_pid: int | None = None, log: str | None = None):
        self.settings = settings
        self.command = engine_command(settings, host_pid)
        self.log = log or log_path(settings.address)
        self.started = time.monotonic()
        self.state = STARTING
        self.error: LinkError | None = None
        self.status = "starting engine..."
        self._seen = 0
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        root = settings.engine_root or None
        try:
            with open(self.log, "wb") as out:
                self.proc: subprocess.Popen | None = subprocess.Popen(
                    self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=engine_env(root), cwd=root, **detached())
        except OSError as exc:
            self.proc = None
            self._fail(f"{self.command[0]}: {exc}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def by_hand(self) -> str:
        """The command a person can run in a terminal instead (it keeps running there)."""
        cmd = list(self.command)
        if "--stop-with" in cmd:
            i = cmd.index("--stop-with")
            del cmd[i:i + 2]
        text = shlex.join(cmd)
        if self.settings.engine_root:
            text = f"cd {shlex.quote(self.settings.engine_root)} && {text}"
        return text

    def _read(self) -> None:
        try:
            with open(self.log, "rb") as f:
                f.seek(self._seen)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines; the rest is read next time
        self._seen += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            if line.strip():
                self._tail.append(line.rstrip())

    def tail(self) -> str:
        self._read()
        return "\n".join(self._tail)

    def _fail(self, detail: str) -> None:
        self.state = FAILED
        self.error = LinkError(ENGINE_START_FAILED, f"{detail}\nTo start it by hand: {self.by_hand}",
                               address=self.settings.address)

    def poll(self) -> str:
        """starting | ready | failed; updates `status` (a line for the editor's progress text)."""
        if self.state != STARTING or self.proc is None:
            return self.state
        self._read()
        if any(READY in line for line in self._tail):
            self.state, self.status = READY_STATE, "engine started"
            return self.state
        code = self.proc.poll()
        if code is not None:
            if listening(self.settings.address):  # another start won the race: use that engine
                self.state, self.status = READY_STATE, "engine found"
                return self.state
            self._fail(f"the engine stopped (exit status {code}):\n{self.tail() or '(no output)'}")
        elif self.elapsed > START_TIMEOUT:
            self.stop()
            self._fail(f"the engine did not start within {START_TIMEOUT:.0f} s:\n{self.tail() or '(no output)'}")
        else:
            self.status = f"starting engine... {self.elapsed:.0f} s"
        return self.state

    def wait(self, on_wait: Callable[["EngineStart"], Any] | None = None, interval: float = 0.2) -> None:
        """Block until the engine is ready (or raise its LinkError); `on_wait(self)` between polls."""
        while self.poll() == STARTING:
            if on_wait is not None:
                on_wait(self)
            time.sleep(interval)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Stop the engine this object started (an editor closing without keep_engine)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
