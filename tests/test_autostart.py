"""The plug-ins' engine auto-start (plugins/common/sfumato_link/autostart.py) with the real
`sfumato serve`: started only for a local address where nothing listens, used once ready,
stopped when the "editor" process ends, and a failed start explained with the engine's own
output and the command to run by hand."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "common"))

import sfumato_link as sl  # noqa: E402
from sfumato_link import autostart  # noqa: E402


@pytest.mark.parametrize("address, local", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:7000", True), ("tcp://[::1]:5555", True),
    ("ipc:///tmp/sfumato.sock", True), ("tcp://192.0.2.7:5555", False), ("tcp://studio.example:5555", False),
])
def test_only_local_addresses_are_started(address, local):
    assert autostart.is_local(address) is local
    settings = sl.Settings(address=address)
    if not local:  # never probed, never started, whatever answers there
        assert autostart.should_start(settings) is False
    assert autostart.should_start(sl.Settings(address=address, autostart=False)) is False


def test_should_start_only_where_nothing_listens():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        busy = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        assert autostart.should_start(sl.Settings(address=busy)) is False
    assert autostart.should_start(sl.Settings(address=f"tcp://127.0.0.1:{free_port()}")) is True


def test_command_keeps_running_only_when_asked():
    settings = sl.Settings(address="tcp://127.0.0.1:5599", python="/opt/py/bin/python3")
    assert autostart.engine_command(settings, 4242)[-2:] == ["--stop-with", "4242"]
    kept = sl.Settings(address="tcp://127.0.0.1:5599", python="/opt/py/bin/python3", keep_engine=True)
    assert "--stop-with" not in autostart.engine_command(kept, 4242)
    assert autostart.engine_command(kept, 4242)[:5] == ["/opt/py/bin/python3", "-m", "engine.cli", "serve", "--bind"]


def test_started_engine_serves_then_stops_with_its_editor(tmp_path):
    """A stand-in editor process: the engine answers hello, then ends when the editor ends."""
    address = f"tcp://127.0.0.1:{free_port()}"
    settings = sl.Settings(address=address, python=sys.executable, engine_root=str(ROOT))
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    seen: list[str] = []
    try:
        start = autostart.EngineStart(settings, host_pid=editor.pid, log=str(tmp_path / "engine.log"))
        start.wait(on_wait=lambda s: seen.append(s.status))
        assert start.state == "ready" and seen and seen[0].startswith("starting engine...")
        session = sl.Session.open(settings, client="autostart-test")
        try:
            assert session.hello(timeout=10)["protocol"] == 1
        finally:
            session.close()
        assert autostart.should_start(settings) is False  # it listens now: a second call reuses it
    finally:
        editor.kill()
        editor.wait()
    assert start.proc.wait(timeout=30) == 0  # --stop-with: a clean stop once the editor is gone
    assert "has ended: stopping" in start.tail()


def test_failed_start_shows_the_engine_output_and_the_command(tmp_path):
    """An interpreter without Sfumato: the error carries its last words and the command to run."""
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\necho 'No module named engine' >&2\nexit 1\n")
    python.chmod(0o755)
    settings = sl.Settings(address=f"tcp://127.0.0.1:{free_port()}", python=str(python))
    start = autostart.EngineStart(settings, host_pid=os.getpid(), log=str(tmp_path / "engine.log"))
    with pytest.raises(sl.LinkError) as caught:
        start.wait()
    err = caught.value
    assert err.code == sl.ENGINE_START_FAILED and start.state == "failed"
    text = str(err)
    assert "No module named engine" in text and "exit status 1" in text
    assert f"{python} -m engine.cli serve --bind {settings.address}" in text and "--stop-with" not in text
    assert "SFUMATO_PYTHON" in text


def test_missing_interpreter_fails_at_once(tmp_path):
    settings = sl.Settings(address=f"tcp://127.0.0.1:{free_port()}", python=str(tmp_path / "nope"))
    start = autostart.EngineStart(settings, host_pid=os.getpid(), log=str(tmp_path / "engine.log"))
    assert start.poll() == "failed" and "nope" in str(start.error)
    t0 = time.monotonic()
    with pytest.raises(sl.LinkError):
        start.wait()
    assert time.monotonic() - t0 < 1.0
