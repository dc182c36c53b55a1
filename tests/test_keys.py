"""A remote engine with CURVE keys (issue 18): only authorised keys are served, a refused key is
a clear client-side error at once (not a hang), revoking is deleting a file (no restart), jobs
follow the key across a reconnect and never reach another key, and shared memory is never
offered. Real engine, real sockets on 127.0.0.1, real key files."""
from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from engine import keys
from engine.client import Client, EngineClientError, EngineRefused
from engine.client_job import REFUSED
from engine.server import BindRefused, Engine, check_bind


@pytest.fixture()
def key_dir(tmp_path) -> Path:
    folder = tmp_path / "keys"
    keys.new_server(folder)
    for name in ("anna", "ben"):
        _, secret = keys.add_client(folder, name)
        shutil.copy(secret, tmp_path / secret.name)  # the copy the artist was given
    return folder


@pytest.fixture()
def engine(key_dir, tmp_path):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu", keys=key_dir).start()
    yield eng
    eng.stop()


def given(key_dir: Path, name: str) -> Path:
    return key_dir.parent / f"{name}{keys.SECRET_SUFFIX}"


def keyed(engine: Engine, key_dir: Path, name: str, **kw) -> Client:
    return Client(engine.address, timeout=5, server_key=key_dir / "server.key", client_key=given(key_dir, name), **kw)


def test_key_folder_layout_and_modes(key_dir, tmp_path):
    assert stat.S_IMODE(os.stat(key_dir / "server.key_secret").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_dir / "issued" / "anna.key_secret").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_dir / "clients" / "anna.key").st_mode) == 0o644
    assert sorted(keys.list_clients(key_dir)) == ["anna", "ben"]
    assert not list(key_dir.rglob(".keys-*")), "scratch folders left behind"
    with pytest.raises(keys.KeyFileError, match="--force"):
        keys.new_server(key_dir)
    with pytest.raises(keys.KeyFileError, match="already authorised"):
        keys.add_client(key_dir, "anna")
    with pytest.raises(keys.KeyFileError, match="client name"):
        keys.add_client(key_dir, "../evil")
    with pytest.raises(keys.KeyFileError, match="keys new"):
        keys.add_client(tmp_path / "nothing", "anna")
    keys.revoke(key_dir, "ben")
    assert sorted(keys.list_clients(key_dir)) == ["anna"]
    assert not (key_dir / "issued" / "ben.key_secret").exists()
    with pytest.raises(keys.KeyFileError, match="only a public key"):
        keys.ClientCurve.from_files(key_dir / "server.key", key_dir / "clients" / "anna.key")
    with pytest.raises(keys.KeyFileError, match="both"):
        keys.ClientCurve.optional(key_dir / "server.key", None)


def test_right_key_is_served_without_shared_memory(engine, key_dir):
    with keyed(engine, key_dir, "anna") as client:
        welcome = client.hello()
        assert welcome["security"] == {"auth": "curve", "owner": "key", "reconnect_s": engine.reconnect_s}
        assert "keys" in welcome["capabilities"]
        assert "shm" not in welcome["capabilities"] and "shm" not in welcome
        image = bytes(range(48))
        arr = np.frombuffer(image, np.uint8).reshape(4, 4, 3)
        result = client.run("echo", {"image": arr}, {"steps": 2})
        assert result.image.tobytes() == image
        assert client._shm is None  # frames, never a segment
    assert engine.shm is None
    with pytest.raises(ValueError, match="without keys"):
        Engine(bind="tcp://127.0.0.1:*", device="cpu", keys=key_dir, shm=True)


def refused_within(seconds: float, **client_kw) -> EngineClientError:
    start = time.monotonic()
    with pytest.raises(EngineRefused) as caught:
        with Client(timeout=10, **client_kw) as client:
            client.hello()
    assert time.monotonic() - start < seconds, "a refused key must fail fast, not at the timeout"
    assert caught.value.code == REFUSED
    return caught.value


def test_no_key_wrong_key_and_wrong_engine_key_are_refused_clearly(engine, key_dir, tmp_path):
    exc = refused_within(3, address=engine.address)
    assert "requires a client key" in exc.message
    stranger = tmp_path / "stranger"
    keys.new_server(stranger)
    _, stranger_secret = keys.add_client(stranger, "eve")
    exc = refused_within(3, address=engine.address, server_key=key_dir / "server.key", client_key=stranger_secret)
    assert "refused this client key" in exc.message
    exc = refused_within(3, address=engine.address, server_key=stranger / "server.key",
                         client_key=given(key_dir, "anna"))
    assert "server-key" in exc.message
    with keyed(engine, key_dir, "anna") as client:  # the engine keeps serving authorised keys
        assert client.ping() < 5


def test_a_revoked_key_is_refused_without_a_restart(engine, key_dir):
    with keyed(engine, key_dir, "ben") as client:
        client.hello()
    keys.revoke(key_dir, "ben")
    exc = refused_within(3, address=engine.address, server_key=key_dir / "server.key",
                         client_key=given(key_dir, "ben"))
    assert "revoked" in exc.message
    keys.add_client(key_dir, "ben", out=key_dir.parent / "ben2.key_secret")  # a new pair, same name
    with Client(engine.address, timeout=5, server_key=key_dir / "server.key",
                client_key=key_dir.parent / "ben2.key_secret") as client:
        client.hello()


# ---- ownership by key: raw CURVE sockets, to see exactly which connection gets what ------------
def dealer(ctx: zmq.Context, engine: Engine, key_dir: Path, name: str) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    keys.ClientCurve.from_files(key_dir / "server.key", given(key_dir, name)).apply(sock)
    sock.connect(engine.address)
    return sock


def send(sock: zmq.Socket, header: dict, *frames: bytes) -> None:
    sock.send_multipart([msgpack.packb({"v": 1, **header}), *frames])


def until(sock: zmq.Socket, want, timeout: float = 5.0) -> list[dict]:
    """Messages received until one satisfies `want` (which is the last); fails at the timeout."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.poll(50):
            seen.append(msgpack.unpackb(sock.recv_multipart()[0]))
            if want(seen[-1]):
                return seen
    raise AssertionError(f"timed out; got {seen}")


def slow_job(rid: str, seconds: float) -> tuple[dict, bytes]:
    """An echo job of `seconds`, cancellable every 1/100 of it."""
    return ({"type": "submit", "id": rid, "op": "echo", "params": {"steps": 100, "delay": seconds},
             "inputs": {"image": {"buf": 1, "shape": [2, 2, 3], "dtype": "u8"}}}, bytes(12))


def test_jobs_follow_the_key_across_a_reconnect_and_never_reach_another_key(engine, key_dir):
    ctx = zmq.Context()
    try:
        first = dealer(ctx, engine, key_dir, "anna")
        send(first, *slow_job("drawing-1", 1.5))
        until(first, lambda m: m["type"] == "progress")
        first.close(0)  # the network drops
        time.sleep(0.3)
        other = dealer(ctx, engine, key_dir, "ben")
        send(other, {"type": "status", "id": "s"})
        assert until(other, lambda m: m["type"] == "status")[-1]["jobs"] == []
        send(other, {"type": "cancel", "id": "drawing-1"})
        reply = until(other, lambda m: m.get("id") == "drawing-1")[-1]
        assert (reply["type"], reply["code"]) == ("error", "not_found")

        again = dealer(ctx, engine, key_dir, "anna")  # the same key, a new connection
        send(again, {"type": "status", "id": "s"})
        status = until(again, lambda m: m["type"] == "status")[-1]
        assert [(j["id"], j["state"]) for j in status["jobs"]] == [("drawing-1", "running")]
        rest = until(again, lambda m: m["type"] == "result")
        assert rest[-1]["id"] == "drawing-1"
        assert any(m["type"] == "progress" for m in rest), "progress reaches the new connection"
        assert not other.poll(200), "another key got a message of this key's job"
    finally:
        ctx.destroy(0)


def test_a_key_that_does_not_come_back_loses_its_jobs(key_dir, tmp_path):
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu", keys=key_dir,
                reconnect_s=0.5) as eng:
        ctx = zmq.Context()
        try:
            sock = dealer(ctx, eng, key_dir, "anna")
            send(sock, *slow_job("gone", 10.0))
            until(sock, lambda m: m["type"] == "progress")
            sock.close(0)
            deadline = time.monotonic() + 5
            while eng.scheduler.status()["running"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not eng.scheduler.status()["running"], "the job outlived its key's grace period"
        finally:
            ctx.destroy(0)


def test_bind_rules_and_the_insecure_warning(key_dir):
    with pytest.raises(BindRefused, match="--keys"):
        check_bind("tcp://0.0.0.0:5555", insecure=False)
    check_bind("tcp://0.0.0.0:5555", insecure=False, keys=True)
    open_engine = Engine(bind="tcp://0.0.0.0:5555", device="cpu", insecure=True)  # not started: nothing bound
    security = open_engine.welcome()["security"]
    assert security["auth"] == "none" and "INSECURE" in security["warning"]
    assert "warning" not in Engine(bind="tcp://127.0.0.1:5555", device="cpu").welcome()["security"]


# ---- the plug-ins' thin client: both transports take the key files ------------------------------
@pytest.mark.parametrize("kind", ["zmq", "relay"])
def test_plugin_transports_with_keys(engine, key_dir, tmp_path, kind):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "common"))
    import sfumato_link as sl
    from sfumato_link.errors import KEY_REFUSED

    root = str(Path(__file__).resolve().parents[1])

    def session(server_key: str, client_key: str) -> "sl.Session":
        settings = sl.Settings(address=engine.address, transport=kind, python=sys.executable, engine_root=root,
                               server_key=server_key, client_key=client_key, timeout=10)
        return sl.Session.open(settings, client=f"test-{kind}")

    good = session(str(key_dir / "server.key"), str(given(key_dir, "anna")))
    try:
        assert good.hello()["security"]["auth"] == "curve"
    finally:
        good.close()
    stranger = tmp_path / "stranger"
    keys.new_server(stranger)
    _, eve = keys.add_client(stranger, "eve")
    for server_key, client_key, words in (("", "", "requires a client key"),
                                          (str(key_dir / "server.key"), str(eve), "not authorised")):
        start = time.monotonic()
        bad = session(server_key, client_key)
        try:
            with pytest.raises(sl.LinkError) as caught:
                bad.hello()
        finally:
            bad.close()
        assert caught.value.code == KEY_REFUSED and words in caught.value.message, caught.value.message
        assert time.monotonic() - start < 8, "a refused key must not wait for the hello timeout"


class Cable:
    """A TCP forwarder between a client and the engine that can be cut, like a network drop:
    every open connection is closed; new connections go through again."""

    def __init__(self, target: str):
        import socket
        import threading

        host, port = target.rsplit("//", 1)[1].rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                near, _ = self._listener.accept()
            except OSError:
                return
            far = socket.create_connection(self._target)
            with self._lock:
                self._open += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        import socket

        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open = []

    def close(self) -> None:
        self._listener.close()
        self.cut()


def test_the_python_client_gets_its_result_after_a_network_drop(engine, key_dir):
    cable = Cable(engine.address)
    try:
        with Client(cable.address, timeout=30, server_key=key_dir / "server.key",
                    client_key=given(key_dir, "anna")) as client:
            job = client.submit("echo", {"image": np.zeros((2, 2, 3), np.uint8)}, {"steps": 100, "delay": 1.5})
            deadline = time.monotonic() + 5
            while not engine.scheduler.status()["running"] and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            cable.cut()
            start = time.monotonic()
            result = job.result(timeout=20)
            assert result.image.shape == (2, 2, 3)
            assert time.monotonic() - start < 5, "the result waited for a ping at a third of the timeout"
    finally:
        cable.close()


def test_a_key_revoked_while_connected_is_ignored_and_loses_its_jobs(engine, key_dir):
    ctx = zmq.Context()
    try:
        sock = dealer(ctx, engine, key_dir, "ben")
        send(sock, *slow_job("late", 10.0))
        until(sock, lambda m: m["type"] == "progress")
        keys.revoke(key_dir, "ben")
        send(sock, {"type": "status", "id": "s"})
        deadline = time.monotonic() + 3
        while engine.scheduler.status()["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not engine.scheduler.status()["running"], "a revoked key's job kept running"
        rest = until(sock, lambda m: m["type"] == "cancelled")  # the running job's own end
        assert all(m["type"] in ("progress", "cancelled") for m in rest), "a revoked key got an answer"
    finally:
        ctx.destroy(0)


def test_cli_keys_commands_and_client_options(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    folder = tmp_path / "studio"
    assert main(["keys", "new", str(folder)]) == 0
    assert main(["keys", "new", str(folder)]) == 2 and "--force" in capsys.readouterr().err
    assert main(["keys", "add-client", str(folder), "anna", "--out", str(tmp_path / "anna.key_secret")]) == 0
    assert main(["keys", "add-client", str(folder), "ben"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", str(folder)]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["anna", "ben"]
    assert main(["keys", "revoke", str(folder), "ben"]) == 0
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu", keys=folder) as eng:
        capsys.readouterr()
        assert main(["info", "--engine", eng.address, "--json", "--server-key", str(folder / "server.key"),
                     "--client-key", str(tmp_path / "anna.key_secret")]) == 0
        assert '"auth": "curve"' in capsys.readouterr().out
        monkeypatch.setenv("SFUMATO_SERVER_KEY", str(folder / "server.key"))
        monkeypatch.setenv("SFUMATO_CLIENT_KEY", str(tmp_path / "anna.key_secret"))
        assert main(["info", "--engine", eng.address, "--json"]) == 0
        monkeypatch.delenv("SFUMATO_CLIENT_KEY")
        assert main(["info", "--engine", eng.address]) == 2
        assert "both" in capsys.readouterr().err
        monkeypatch.delenv("SFUMATO_SERVER_KEY")
        assert main(["info", "--engine", eng.address, "--timeout", "10"]) == 1
        assert "[refused]" in capsys.readouterr().err
