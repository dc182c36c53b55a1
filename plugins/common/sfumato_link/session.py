"""Session and Job: hello/welcome, submit, non-blocking event polling, cancel.

A `Session` owns one transport (one engine connection carries many jobs). The editor calls
`poll()` from its own loop; each call reads what has arrived, updates the `Job` objects and
returns the events, so a UI can redraw progress, show previews and paste results.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import wire
from .errors import ENGINE_UNREACHABLE, PROTOCOL_MISMATCH, TIMEOUT, LinkError
from .settings import Settings, guess_python
from .transport import RelayTransport, Transport, ZmqTransport, zmq_available

JOB_EVENTS = ("accepted", "progress", "result", "error", "cancelled")
FINAL = ("done", "error", "cancelled")


@dataclass
class Event:
    """One message from the engine. `job` is set for job events; `data` is the decoded header."""

    type: str
    id: str | None
    data: dict[str, Any]
    job: "Job | None" = None


@dataclass
class Job:
    """The client's view of one submitted job; updated by `Session.poll`."""

    id: str
    op: str
    session: "Session" = field(repr=False)
    state: str = "sent"  # sent -> queued -> running -> done | error | cancelled
    position: int | None = None
    step: int = 0
    total: int = 0
    stage: str = ""
    preview: wire.Array | None = None
    outputs: dict[str, wire.Array] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: LinkError | None = None
    cancel_requested: bool = False
    submitted_at: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    @property
    def fraction(self) -> float:
        """0..1 for a progress bar (0 until the first progress event)."""
        if self.state == "done":
            return 1.0
        return min(1.0, self.step / self.total) if self.total else 0.0

    def cancel(self) -> None:
        """Ask the engine to stop; the job ends with a `cancelled` (or its result, if it won the race)."""
        if not self.finished and not self.cancel_requested:
            self.cancel_requested = True
            self.session.cancel(self.id)

    def wait(self, timeout: float | None = None, on_event: Callable[[Event], Any] | None = None,
             interval: float = 0.05) -> dict[str, wire.Array]:
        """Block (polling) until the job ends; return its outputs or raise its LinkError.

        `on_event` sees every event of the session while waiting; if it returns True the
        job is cancelled (how GIMP's loop turns a user cancel into `cancel`).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise LinkError(ENGINE_UNREACHABLE if self.state == "sent" else TIMEOUT,
                                f"no result within {timeout:g} s", address=self.session.address, op=self.op)
            for event in self.session.poll(interval):
                if on_event is not None and on_event(event) is True:
                    self.cancel()
        if self.state == "done":
            return self.outputs
        assert self.error is not None
        raise self.error


class Session:
    """One connection to the engine.

    `keepalive`: with jobs open and nothing heard for this many seconds, send a `ping`;
    `dead_after`: nothing heard for this long -> open jobs fail with engine_unreachable.
    """

    def __init__(self, transport: Transport, client: str = "sfumato-link", *,
                 keepalive: float = 5.0, dead_after: float = 20.0, guard: Any = None):
        self.transport = transport
        self.guard = guard  # a guard.Guard told about open jobs (GIMP kills cancelled plug-ins)
        self.client = client
        self.address = transport.address
        self.welcome: dict[str, Any] | None = None
        self.jobs: dict[str, Job] = {}
        self.keepalive, self.dead_after = keepalive, dead_after
        self._ids = itertools.count(1)
        self._prefix = f"{client[:24]}-{os.getpid()}-{os.urandom(3).hex()}"
        self._replies: dict[str, dict[str, Any]] = {}
        self._heard = time.monotonic()
        self._pinged = False
        self._listeners: list[Callable[[Event], Any]] = []
        self._keepalive_ids: set[str] = set()

    # --- opening --------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings | None = None, client: str = "sfumato-link", *, guard: bool = False,
             **kwargs: Any) -> "Session":
        """Open the transport the settings ask for (auto: zmq if it imports, else the relay).

        Does not talk to the engine yet: call `hello()` (it raises if the engine is down).
        `guard=True` starts a watcher that cancels this session's open jobs if the process is
        killed (only needed on the zmq path; the relay does it itself).
        """
        settings = settings or Settings()
        use = settings.transport
        if use == "auto":
            use = "zmq" if zmq_available() else "relay"
        if use == "zmq":
            transport: Transport = ZmqTransport(settings.address, server_key=settings.server_key,
                                                client_key=settings.client_key)
        else:
            transport = RelayTransport(settings.address, guess_python(settings), settings.engine_root or None,
                                       server_key=settings.server_key, client_key=settings.client_key)
        watcher = None
        if guard and isinstance(transport, ZmqTransport):
            from .guard import Guard

            watcher = Guard(settings.address, transport.routing_id)
        session = cls(transport, client, guard=watcher, **kwargs)
        session.default_timeout = settings.timeout
        return session

    default_timeout = 5.0

    def next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def send(self, header: dict[str, Any]) -> str:
        """Send one message (Array values become frames); return its id."""
        header = dict(header)
        header.setdefault("id", self.next_id())
        self.transport.send(wire.encode(header))
        return header["id"]

    def request(self, kind: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send `kind` and wait for the reply with the same id (job events keep flowing meanwhile)."""
        timeout = self.default_timeout if timeout is None else timeout
        rid = self.send({"type": kind, **fields})
        deadline = time.monotonic() + timeout
        while rid not in self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(ENGINE_UNREACHABLE, f"no answer to {kind} within {timeout:g} s",
                                address=self.address)
            self.poll(min(left, 0.1))
        reply = self._replies.pop(rid)
        if reply.get("type") == "error":
            raise LinkError(str(reply.get("code", "internal")), str(reply.get("message", "")),
                            reply.get("field"), address=self.address)
        return reply

    def hello(self, timeout: float | None = None) -> dict[str, Any]:
        """Exchange hello/welcome; remember and return the welcome (ops, models, device, limits)."""
        reply = self.request("hello", timeout, client=self.client)
        if reply.get("type") != "welcome":
            raise LinkError(PROTOCOL_MISMATCH, f"expected welcome, got {reply.get('type')!r}")
        if reply.get("protocol", wire.VERSION) != wire.VERSION:
            raise LinkError(PROTOCOL_MISMATCH, f"engine protocol {reply.get('protocol')}, plug-in {wire.VERSION}")
        self.welcome = reply
        return reply

    # --- jobs -----------------------------------------------------------------------

    def submit(self, op: str, inputs: dict[str, wire.Array] | None = None,
               params: dict[str, Any] | None = None) -> Job:
        """Queue `op` on the engine; returns at once with a Job (state 'sent')."""
        if not self.active_jobs:  # the quiet-engine clock starts now, not at the last message
            self._heard, self._pinged = time.monotonic(), False
        job = Job(id=self.next_id(), op=op, session=self)
        self.jobs[job.id] = job
        if self.guard is not None:
            self.guard.opened(job.id)
        self.send({"type": "submit", "id": job.id, "op": op, "inputs": dict(inputs or {}),
                   "params": {k: v for k, v in (params or {}).items()}})
        return job

    def cancel(self, job_id: str) -> None:
        self.send({"type": "cancel", "id": job_id})

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        return self.request("status", timeout)

    def models(self, refresh: bool = False, timeout: float | None = None) -> list[Any]:
        return list(self.request("models", timeout, refresh=refresh).get("models", []))

    def ping(self, timeout: float | None = None) -> float:
        """Round-trip time in seconds."""
        t0 = time.monotonic()
        self.request("ping", timeout)
        return time.monotonic() - t0

    def add_listener(self, fn: Callable[[Event], Any]) -> None:
        """Call `fn(event)` for every event `poll` returns (a docker can subscribe once)."""
        self._listeners.append(fn)

    # --- the loop -------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Handle everything that has arrived; wait up to `timeout` seconds for the first message."""
        events: list[Event] = []
        frames = self.transport.recv(timeout)
        while frames is not None:
            event = self._handle(frames)
            if event is not None:
                events.append(event)
            frames = self.transport.recv(0.0)
        self._check_alive(events)
        for event in events:
            for fn in self._listeners:
                fn(event)
        return events

    @property
    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs.values() if not j.finished]

    def _check_alive(self, events: list[Event]) -> None:
        now = time.monotonic()
        if events:
            self._heard, self._pinged = now, False
            return
        if not self.active_jobs:
            return
        quiet = now - self._heard
        if quiet > self.dead_after:
            err_text = f"no message from the engine for {quiet:.0f} s"
            for job in self.active_jobs:
                job.state = "error"
                job.error = LinkError(ENGINE_UNREACHABLE, err_text, address=self.address, op=job.op)
                events.append(Event("error", job.id, {"type": "error", "code": ENGINE_UNREACHABLE,
                                                      "message": err_text}, job))
        elif quiet > self.keepalive and not self._pinged:
            self._pinged = True
            self._keepalive_ids.add(self.send({"type": "ping"}))

    def _handle(self, frames: list[Any]) -> Event | None:
        try:
            header = wire.decode(frames)
        except Exception:
            return None  # not ours (wrong address?); the hello timeout reports it
        kind = str(header.get("type", ""))
        rid = header.get("id")
        job = self.jobs.get(rid) if isinstance(rid, str) else None
        if job is None or kind not in JOB_EVENTS:
            if isinstance(rid, str) and rid not in self._keepalive_ids:
                self._replies[rid] = header
            self._keepalive_ids.discard(rid)
            return Event(kind, rid, header)
        if kind == "accepted":
            job.state = "queued" if job.state == "sent" else job.state
            job.position = header.get("position")
        elif kind == "progress":
            job.state = "running"
            job.step = int(header.get("step", job.step) or 0)
            job.total = int(header.get("total", job.total) or 0)
            job.stage = str(header.get("stage", job.stage) or "")
            if isinstance(header.get("preview"), wire.Array):
                job.preview = header["preview"]
        elif kind == "result":
            job.state = "done"
            job.outputs = {k: v for k, v in (header.get("outputs") or {}).items() if isinstance(v, wire.Array)}
            job.meta = header.get("meta") or {}
        elif kind == "error":
            job.state = "error"
            job.error = LinkError(str(header.get("code", "internal")), str(header.get("message", "")),
                                  header.get("field"), address=self.address, op=job.op)
        elif kind == "cancelled":
            job.state = "cancelled"
            job.error = LinkError("cancelled", "cancelled", op=job.op)
        if job.finished and self.guard is not None:
            self.guard.closed(job.id)
        return Event(kind, rid, header, job)

    def run(self, op: str, inputs: dict[str, wire.Array] | None = None, params: dict[str, Any] | None = None,
            timeout: float | None = None, on_event: Callable[[Event], Any] | None = None) -> Job:
        """submit + wait; returns the finished Job (raises its LinkError on error or cancel)."""
        job = self.submit(op, inputs, params)
        job.wait(timeout, on_event)
        return job

    def close(self) -> None:
        """Cancel what is still running (a closed editor should not keep the engine busy), then disconnect."""
        still_open = self.active_jobs
        for job in still_open:
            try:
                job.cancel()
            except Exception:
                pass
        if self.guard is not None:  # with jobs open the watcher sends its own cancel too (harmless twice)
            self.guard.stop(clean=not still_open)
        self.transport.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
