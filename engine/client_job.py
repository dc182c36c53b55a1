"""What the Python client hands back: a submitted job, its result, and the client-side errors.

A `Job` reads the messages the client's I/O thread routes to its id (engine/client.py) and
runs the progress callback in the thread that waits for it.
"""
from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from .client import Client

ProgressFn = Callable[[dict], None]
REFUSED = "refused"  # client-side error code: the engine refused the connection's handshake (keys)


class EngineClientError(Exception):
    """An error reply from the engine (or a client-side failure), with the engine's code."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(f"[{code}] {message}" + (f" (field: {field})" if field else ""))
        self.code, self.message, self.field = code, message, field


class EngineRefused(EngineClientError):
    """The engine refused this client's handshake: a key not authorised (or revoked), the wrong
    engine key, or a key on one side only."""

    def __init__(self, message: str):
        super().__init__(REFUSED, message)


class EngineTimeout(EngineClientError, TimeoutError):
    """No answer in time: the engine is not running, unreachable, or the job took too long."""

    def __init__(self, message: str):
        super().__init__("timeout", message)


@dataclass
class Result:
    """A finished job: output arrays (read-only views of the received frames) and metadata."""

    outputs: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        return self.outputs["image"]


class _Pending:
    """Messages for one request id, filled by the I/O thread. A job without a progress
    callback is not woken for its progress messages (each wake-up of a waiting thread costs,
    and on a busy machine it may wait for a free core)."""

    def __init__(self, wants_progress: bool = True) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        self.wants_progress = wants_progress
        self.instance: str | None = None  # the engine run that accepted this job (welcome/pong/accepted)


class Job:
    """A submitted job. `result()` waits for it, calling on_progress for each progress event."""

    def __init__(self, client: "Client", job_id: str, on_progress: ProgressFn | None, pending: _Pending):
        self.client, self.id, self.on_progress = client, job_id, on_progress
        self._pending = pending
        self.position: int | None = None
        self._outcome: Result | EngineClientError | None = None

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def cancel(self) -> None:
        """Ask the engine to cancel; result() then raises EngineClientError('cancelled')."""
        if self._outcome is None:
            self.client.cancel(self.id)

    def _next(self, deadline: float | None) -> dict:
        return self.client._wait(self._pending, deadline, f"job {self.id}")

    def wait_accepted(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        msg = self._next(deadline)
        if msg["type"] == "accepted":
            self.position = msg.get("position")
        else:
            self._consume(msg)
            if isinstance(self._outcome, EngineClientError):
                raise self._outcome

    def _consume(self, msg: dict) -> None:
        kind = msg["type"]
        if kind == "progress":
            if self.on_progress is not None:
                self.on_progress({k: v for k, v in msg.items() if k not in ("v", "type", "id")})
        elif kind == "accepted":
            self.position = msg.get("position")
        elif kind == "result":
            self._outcome = Result(dict(msg.get("outputs") or {}), dict(msg.get("meta") or {}))
        elif kind == "cancelled":
            self._outcome = EngineClientError("cancelled", f"job {self.id} was cancelled")
        elif kind == "error":
            self._outcome = EngineClientError(msg.get("code", "internal"), msg.get("message", ""), msg.get("field"))

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the job; raises EngineClientError (code 'cancelled', an engine code, or
        'timeout', in which case the job is cancelled)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._outcome is None:
            try:
                msg = self._next(deadline)
            except EngineTimeout:
                self.cancel()
                raise
            self._consume(msg)
        if isinstance(self._outcome, EngineClientError):
            raise self._outcome
        return self._outcome
