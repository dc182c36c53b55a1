"""The docker's brain: one engine connection, its jobs, and what happens when they end.

Nothing here blocks: `connect` sends `hello` (or, when no engine listens at a local
address, starts one: sfumato_link.autostart) and returns; `poll()` reads whatever has
arrived (a zero timeout) and is called from a QTimer by the plug-in, or from a loop by a
test. No Qt and no Krita here: results go to a `host` object that knows how to make layers,
and the panel listens through `subscribe`.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .bootstrap import link
from .convert import thumbnail, to_layer_bytes
from .history import Entry, History, ResultLayer
from .request import Plan

log = logging.getLogger("sfumato.krita")

# connection states
OFFLINE, STARTING, CONNECTING, ONLINE, DOWN = "offline", "starting", "connecting", "online", "down"

PING_EVERY = 10.0  # seconds between liveness pings while idle and online


@dataclass
class Running:
    """A submitted job with what is needed to place its result."""

    job: Any  # link.Job
    plan: Plan
    target: Any = None  # host-specific: where the result goes (document, source layer)
    started: float = field(default_factory=time.monotonic)
    preview_seen: Any = None
    preview_thumb: tuple[int, int, bytes] | None = None
    entry: Entry | None = None
    message: str = ""
    closing: bool = False  # the result is being placed

    @property
    def id(self) -> str:
        return self.job.id


class Controller:
    """Connection + jobs. Listeners get `(kind, data)` with kind in state | progress | finished | message."""

    def __init__(self, host: Any = None, load_store: Callable[[], str] | None = None,
                 save_store: Callable[[str], None] | None = None, client: str = "krita"):
        self.host = host
        self._load_store, self._save_store = load_store, save_store
        self.client = client
        self.settings = link.load_settings(self._stored())
        self.session: Any = None
        self.state = OFFLINE
        self.message = "Not connected."
        self.welcome: dict[str, Any] | None = None
        self.running: dict[str, Running] = {}
        self.history = History()
        self._listeners: list[Callable[[str, Any], None]] = []
        self._hello_id: str | None = None
        self._hello_deadline = 0.0
        self._ping_id: str | None = None
        self._ping_deadline = 0.0
        self._next_ping = 0.0
        self.ticks = 0  # how many times poll() ran: the host test checks the loop keeps ticking
        self.engine_start: Any = None  # link.autostart.EngineStart of the engine this panel started
        self._polling = False

    # --- settings -------------------------------------------------------------------

    def _stored(self) -> dict[str, Any] | None:
        if self._load_store is None:
            return None
        try:
            text = self._load_store()
            return link.Settings.from_json(text).to_dict() if text else None
        except Exception:  # a broken stored value must never stop the panel
            return None

    @property
    def address(self) -> str:
        return self.settings.address

    # --- listeners --------------------------------------------------------------------

    def subscribe(self, fn: Callable[[str, Any], None]) -> None:
        if fn not in self._listeners:
            self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[str, Any], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(self, kind: str, data: Any = None) -> None:
        for fn in list(self._listeners):
            try:
                fn(kind, data)
            except Exception:  # a broken panel must not stop job handling
                log.exception("sfumato listener failed on %s", kind)

    def clear_listeners(self) -> None:
        self._listeners.clear()

    def announce(self, text: str) -> None:
        """Tell the panels something (e.g. why a shortcut action could not run)."""
        self._emit("message", text)

    def _set_state(self, state: str, message: str) -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            self._emit("state", self)

    # --- connection -----------------------------------------------------------------

    def connect(self, address: str | None = None, server_key: str | None = None,
                client_key: str | None = None) -> None:
        """(Re)connect and say hello; returns at once. The answer arrives through poll().
        `server_key`, `client_key`: the key files of an engine served with keys ("" = none)."""
        changes = {name: value.strip() for name, value in (("server_key", server_key), ("client_key", client_key))
                   if value is not None}
        if address is not None and address.strip():
            changes["address"] = address.strip()
        wanted = replace(self.settings, **changes)
        if wanted != self.settings:
            self.settings = wanted
            if self._save_store is not None:
                try:
                    kept = self._stored() or {}  # the other stored settings (autostart, keep_engine, ...) stay
                    self._save_store(link.Settings.from_mapping(
                        {**kept, **{name: getattr(wanted, name) for name in ("address", "server_key", "client_key")}}
                    ).to_json())
                except Exception:
                    log.exception("could not store the Sfumato settings")
        self.close(cancel_jobs=True)  # a reconnect abandons this panel's running jobs: stop them on the engine
        if link.autostart.should_start(self.settings):  # it stops when Krita (this process) exits
            self.engine_start = link.autostart.EngineStart(self.settings, host_pid=os.getpid())
            self._set_state(STARTING, "Starting the engine...")
            return
        self._open()

    def _open(self) -> None:
        """Open the session and send hello (CONNECTING), or go DOWN with the reason."""
        try:
            self.session = link.Session.open(self.settings, client=self.client)
        except link.LinkError as exc:
            self.session = None
            self._set_state(DOWN, str(exc))
            return
        except Exception as exc:  # e.g. a malformed address rejected by zmq
            self.session = None
            self._set_state(DOWN, f"Cannot connect to {self.settings.address!r}: {exc}. Check the engine "
                            f"address (for example {link.DEFAULT_ADDRESS}).")
            return
        self._send_hello()
        self._set_state(CONNECTING, f"Connecting to {self.settings.address}...")

    def _send_hello(self) -> None:
        self._hello_id = self.session.send({"type": "hello", "client": self.client})
        self._hello_deadline = time.monotonic() + max(0.5, self.settings.timeout)

    def close(self, cancel_jobs: bool = True) -> None:
        """Drop the connection (cancelling this panel's running jobs if asked)."""
        if self.session is None:
            return
        for run in list(self.running.values()):
            if cancel_jobs:
                run.job.cancel()
            self._finish(run, "The connection to the engine was closed; the job was abandoned.")
        try:
            self.session.close()
        except Exception:
            log.exception("closing the Sfumato session failed")
        self.session, self.welcome, self._hello_id, self._ping_id = None, None, None, None
        self._set_state(OFFLINE, "Not connected.")

    @property
    def device(self) -> str:
        return str((self.welcome or {}).get("device") or "")

    @property
    def models(self) -> list[dict[str, Any]]:
        return [m for m in (self.welcome or {}).get("models") or [] if isinstance(m, dict)]

    @property
    def transport_kind(self) -> str:
        return getattr(getattr(self.session, "transport", None), "kind", "")

    # --- jobs -----------------------------------------------------------------------

    def schema_of(self, engine_op: str) -> dict[str, Any] | None:
        if self.welcome is None:
            return None
        op = (self.welcome.get("ops") or {}).get(engine_op)
        return None if op is None else dict(op.get("params") or {})

    def submit(self, plan: Plan, target: Any = None) -> Running:
        """Send the plan's job; raises LinkError (with the sentence to show) when that cannot work now."""
        if self.session is None or self.state != ONLINE:
            raise link.LinkError(link.ENGINE_UNREACHABLE, "not connected", address=self.settings.address)
        if self.schema_of(plan.engine_op) is None:
            raise link.LinkError("unknown_op", "", op=plan.engine_op)
        plan.params, _dropped = link.ops.fit_params(self.welcome, plan.engine_op, plan.params)
        job = self.session.submit(plan.engine_op, plan.inputs, plan.params)
        run = Running(job, plan, target)
        self.running[job.id] = run
        self._emit("progress", run)
        return run

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel one job, or every job of this panel."""
        for run in list(self.running.values()):
            if job_id is None or run.id == job_id:
                run.job.cancel()
                run.message = "Cancelling..."
                self._emit("progress", run)

    @property
    def current(self) -> Running | None:
        """The newest running job (what the progress bar shows)."""
        return max(self.running.values(), key=lambda r: r.started, default=None)

    # --- the loop -------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.running) or self.state in (STARTING, CONNECTING)

    def poll(self) -> bool:
        """Handle what has arrived; never waits. Returns True while something is in flight.

        Re-entrant calls return at once: adding a layer runs a nested Qt event loop inside
        Krita, in which the polling timer fires again.
        """
        self.ticks += 1
        if self.state == STARTING and not self._polling:
            self._poll_start()
        if self.session is None or self._polling:
            return self.busy
        self._polling = True
        try:
            return self._poll()
        finally:
            self._polling = False

    def _poll_start(self) -> None:
        """Follow the engine being started: progress text, then connect, or the reason it failed."""
        start = self.engine_start
        state = start.poll()
        if state == link.autostart.READY_STATE:
            self._open()
        elif state == link.autostart.FAILED:
            self._set_state(DOWN, str(start.error))
        else:
            self._set_state(STARTING, f"Starting the engine at {self.settings.address}: {start.status}")

    def _poll(self) -> bool:
        try:
            events = self.session.poll(0.0)
        except link.LinkError as exc:  # the relay died
            self._fail_all(str(exc))
            self.close(cancel_jobs=False)
            self._set_state(DOWN, str(exc))
            return False
        now = time.monotonic()
        for event in events:
            self._on_event(event, now)
        if self.state == CONNECTING and now > self._hello_deadline:
            self._set_state(DOWN, link.describe(link.ENGINE_UNREACHABLE, address=self.settings.address))
        if self._ping_id is not None and now > self._ping_deadline:
            self._ping_id = None
            if not self.running:
                self._set_state(DOWN, link.describe(link.ENGINE_UNREACHABLE, address=self.settings.address))
        if self.state in (ONLINE, DOWN) and not self.running and self._ping_id is None and now > self._next_ping:
            self._ping_id = self.session.send({"type": "ping"})
            self._ping_deadline = now + max(0.5, self.settings.timeout)
            self._next_ping = now + PING_EVERY
        return self.busy

    def _on_event(self, event: Any, now: float) -> None:
        if event.job is not None:
            run = self.running.get(event.job.id)
            if run is not None:
                self._on_job_event(run, event)
            return
        if event.type == "welcome":
            self.welcome = event.data
            self._hello_id = None
            ops = sorted(k for k, v in (self.welcome.get("ops") or {}).items() if not v.get("test_only"))
            self._set_state(ONLINE, f"Connected to {self.settings.address} ({self.device or 'device ?'}; "
                            f"ops: {', '.join(ops) or 'none'}).")
        elif event.type == "pong":
            if event.id == self._ping_id:
                self._ping_id = None
            if self.state == DOWN:  # it came back (maybe restarted): fetch a fresh welcome
                self._send_hello()
                self._set_state(CONNECTING, f"Engine at {self.settings.address} is back; reconnecting...")
        elif event.type == "error" and event.id == self._hello_id:
            self._set_state(DOWN, link.describe(str(event.data.get("code")), str(event.data.get("message", "")),
                                                address=self.settings.address))

    def _on_job_event(self, run: Running, event: Any) -> None:
        job = run.job
        if event.type == "progress" and job.preview is not None and job.preview is not run.preview_seen:
            run.preview_seen = job.preview
            try:
                run.preview_thumb = thumbnail(job.preview, 192)
            except Exception:
                log.exception("could not decode a preview")
        if job.finished:
            self._finish(run)
        else:
            self._emit("progress", run)

    def _finish(self, run: Running, message: str | None = None) -> None:
        """Place the result (or note the failure), then drop the job from `running` and tell the panels."""
        if run.closing:
            return
        run.closing = True
        try:
            self._conclude(run, message)
        finally:
            self.running.pop(run.id, None)
        self._emit("finished", run)

    def _conclude(self, run: Running, message: str | None) -> None:
        job = run.job
        if message is not None:
            run.message = message
        elif job.state == "done":
            try:
                run.entry = self.history.add(make_entry(run.plan, job.outputs, job.meta))
                if self.host is not None and run.target is not None:
                    self.host.insert(run.target, run.entry)
                elapsed = time.monotonic() - run.started
                run.message = f"Done in {elapsed:.1f} s: added {run.entry.group or run.entry.layers[0].name}."
                summary = link.result_summary(job.meta)
                if summary:
                    run.message += f" {summary[0].upper()}{summary[1:]}."
            except link.LinkError as exc:
                run.message = str(exc)
            except Exception as exc:  # the document was closed meanwhile, or similar
                log.exception("placing the result failed")
                run.message = f"The result arrived but could not be placed: {exc}. It is in the history list."
        elif job.state == "cancelled":
            run.message = "Cancelled."
        else:
            err = job.error
            run.message = str(err) if err is not None else "The job failed."
            if getattr(err, "code", "") == link.ENGINE_UNREACHABLE:
                self._set_state(DOWN, run.message)

    def _fail_all(self, message: str) -> None:
        for run in list(self.running.values()):
            self._finish(run, message)


def make_entry(plan: Plan, outputs: dict[str, Any], meta: dict[str, Any]) -> Entry:
    """Engine outputs -> layers in the document's depth and byte order, named after what was done.

    Variants keep the engine's order (#1 first); KritaHost stacks them with #1 on top.
    """
    outs = link.ordered_outputs(outputs)
    if not outs:
        raise link.LinkError("internal", "the engine returned no image")
    multi = len(outs) > 1
    layers = []
    for i, (_, arr) in enumerate(outs):
        if plan.clip is not None:  # only what the mask covers (Extend canvas: the new strips)
            arr = link.Array(arr.shape, arr.dtype, link.clear_outside_mask(arr.data, plan.clip, arr.dtype, arr.channels))
        data = to_layer_bytes(arr, plan.dtype)
        name = link.layer_name(plan.ui, plan.params, meta, i if multi else None)
        layers.append(ResultLayer(name, plan.box.x, plan.box.y, arr.width, arr.height, data))
    first = outs[0][1]
    return Entry(label=link.layer_name(plan.ui, plan.params, meta), op=plan.ui.key, dtype=plan.dtype, layers=layers,
                 group=link.group_name(plan.ui, plan.params, meta, len(outs)) if multi else None,
                 thumb=thumbnail(first, 64), meta=dict(meta),
                 # a repeat tile has its own size and still goes into this image (at the motif's corner)
                 new_image=(first.width, first.height) != (plan.box.w, plan.box.h) and plan.ui.selection != "motif",
                 wrap_tile=plan.wrap_tile)
