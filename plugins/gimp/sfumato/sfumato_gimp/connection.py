"""Talking to the engine from GIMP: settings kept in a parasite, one job with GIMP's progress bar.

A plug-in call is its own process, so a blocking wait does not freeze GIMP. Cancelling
GIMP's progress kills this process; the guard (zmq) or the relay then sends `cancel` to
the engine on our behalf. When no engine answers at a local address, the first call starts
one (sfumato_link.autostart) that lives until GIMP (this process's parent) exits.
"""
from __future__ import annotations

import os
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

import sfumato_link as link  # noqa: E402

PARASITE = "sfumato-settings"
PROGRESS_EVERY = 0.1  # seconds between progress bar redraws


def stored_settings() -> dict:
    """The settings saved from Engine Status (a persistent global parasite), as a dict."""
    try:
        parasite = Gimp.get_parasite(PARASITE)
    except Exception:
        return {}
    if parasite is None:
        return {}
    data = parasite.get_data()
    raw = bytes(data) if not isinstance(data, (bytes, bytearray)) else data
    return link.Settings.from_json(raw.decode("utf-8", "replace")).to_dict()


def save_settings(settings: link.Settings) -> None:
    data = settings.to_json().encode("utf-8")
    Gimp.attach_parasite(Gimp.Parasite.new(PARASITE, Gimp.PARASITE_PERSISTENT, list(data)))


def current_settings() -> link.Settings:
    """Defaults < installer's file < saved parasite < SFUMATO_* environment variables."""
    return link.load_settings(stored_settings())


def client_name() -> str:
    return f"gimp-{Gimp.version()}"


def open_session(settings: link.Settings, label: str, guard: bool = False) -> link.Session:
    """A session to the engine; a local engine that is not running is started first, with
    "starting engine..." in GIMP's progress bar. Raises LinkError (engine_start_failed)."""
    if link.autostart.should_start(settings):
        start = link.autostart.EngineStart(settings, host_pid=os.getppid())  # GIMP runs plug-ins as children

        def show(s: link.autostart.EngineStart) -> None:
            Gimp.progress_set_text(f"Sfumato {label}: {s.status}")
            Gimp.progress_pulse()

        show(start)
        start.wait(on_wait=show)
    return link.Session.open(settings, client=client_name(), guard=guard)


def run_job(op: str, label: str, inputs: dict, params: dict) -> link.Job:
    """Connect, submit, follow progress in GIMP's progress bar, return the finished job.

    Parameters the connected engine does not declare are dropped (the dialog comes from the
    shipped schema snapshot, the engine may be older or newer).
    """
    settings = current_settings()
    Gimp.progress_init(f"Sfumato {label}: connecting to {settings.address}")
    try:
        session = open_session(settings, label, guard=True)
    except BaseException:
        Gimp.progress_end()
        raise
    try:
        welcome = session.hello()
        link.ops.require_op(welcome, op)
        params, _dropped = link.ops.fit_params(welcome, op, params)
        job = session.submit(op, inputs, params)
        last = [0.0]

        def show(event: link.Event) -> None:
            now = time.monotonic()
            if event.job is job and (now - last[0] > PROGRESS_EVERY or event.type != "progress"):
                last[0] = now
                if job.state == "queued":
                    Gimp.progress_set_text(f"Sfumato {label}: queued (position {job.position})")
                elif job.state == "running":
                    Gimp.progress_set_text(f"Sfumato {label}: {job.stage} {job.step}/{job.total}")
                    Gimp.progress_update(job.fraction)

        job.wait(on_event=show)
        Gimp.progress_update(1.0)
        return job
    finally:
        session.close()
        Gimp.progress_end()


def engine_status_text(settings: link.Settings) -> str:
    """Address, transport, device, models, operations and queue, as a few lines for a message."""
    session = open_session(settings, "engine")
    try:
        welcome = session.hello()
        status = session.status()
        models = welcome.get("models") or []
        names = ", ".join(str(m.get("name", m)) if isinstance(m, dict) else str(m) for m in models) or "none"
        ops = ", ".join(sorted(k for k, v in (welcome.get("ops") or {}).items() if not v.get("test_only")))
        return (f"Sfumato engine {welcome.get('engine', '?')} at {settings.address} "
                f"(via {session.transport.kind})\n"
                f"Device: {welcome.get('device', '?')}\nModels: {names}\nOperations: {ops or 'none'}\n"
                f"Queue: {'1 running' if status.get('running') else 'idle'}, {status.get('queued', 0)} queued")
    finally:
        session.close()
