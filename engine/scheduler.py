"""Job queue: FIFO order, one worker thread per device, cancellation, progress fan-out.

The worker never touches a socket. Every message it produces (progress, result, error,
cancelled) goes through `emit(client, header)`, which the server turns into a send on its
own thread; so the ROUTER socket stays single-threaded as ZeroMQ requires.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import BUSY, DUPLICATE_ID, INTERNAL, EngineError, JobCancelled
from .protocol import CHANNELS, DTYPE_NAMES, QUEUED_STAGE, plain
from .tasks.base import JobContext, Operation

log = logging.getLogger("sfumato.scheduler")

Emit = Callable[[bytes, dict], None]


@dataclass
class Job:
    """One accepted submit. `client` is the ROUTER identity of the connection that owns it;
    `queue_news`: its client listed the `queue` capability, so it is told how many jobs are ahead."""

    client: bytes
    id: str
    op: Operation
    inputs: dict[str, np.ndarray]
    params: dict[str, Any]
    cancel_event: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"  # queued | running | done
    submitted: float = field(default_factory=time.perf_counter)
    started: float = 0.0
    queue_news: bool = False
    ahead: int = 0  # jobs ahead of it, as last told

    @property
    def key(self) -> tuple[bytes, str]:
        return (self.client, self.id)


class Scheduler:
    """FIFO queue served by one worker thread that owns the device (the GPU is never shared)."""

    def __init__(self, emit: Emit, models: Any = None, device: str = "cpu", max_per_client: int = 8,
                 preview_every: int = 4, instance: str | None = None):
        """`instance`: the engine run's id, stamped on `accepted` (clients notice a restart by it)."""
        self._emit = emit
        self.instance = instance
        self.models = models
        self.device = device
        self.max_per_client = max_per_client
        self.preview_every = preview_every
        self._queue: deque[Job] = deque()
        self._jobs: dict[tuple[bytes, str], Job] = {}  # queued and running
        self._running: Job | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name=f"sfumato-worker-{device}", daemon=True)
        self._worker.start()

    # ---- called from the server thread ---------------------------------------------------
    def submit(self, job: Job) -> int:
        """Queue a job and emit `accepted`; returns its position (0 = runs next).

        Raises duplicate_id or busy (nothing emitted then)."""
        with self._cond:
            if self._stopping:
                raise EngineError(BUSY, "the engine is shutting down", None)
            if job.key in self._jobs:
                raise EngineError(DUPLICATE_ID, f"id {job.id!r} is already used by a queued or running job "
                                  "on this connection", "id")
            mine = sum(1 for k in self._jobs if k[0] == job.client)
            if mine >= self.max_per_client:
                raise EngineError(BUSY, f"this connection already has {mine} queued or running jobs "
                                  f"(limit {self.max_per_client}); wait for one to finish", None)
            position = len(self._queue) + (1 if self._running is not None else 0)
            # `accepted` is emitted before the worker can see the job, so it precedes any progress.
            accepted = {"type": "accepted", "id": job.id, "position": position}
            self._emit(job.client, accepted if self.instance is None else {**accepted, "instance": self.instance})
            self._jobs[job.key] = job
            self._queue.append(job)
            job.ahead = -1  # not told yet: a waiting job hears its count right after `accepted`
            self._tell_queue()
            self._cond.notify_all()
            return position

    def cancel(self, client: bytes, job_id: str) -> str | None:
        """Cancel one job. Returns 'queued' (removed; caller answers `cancelled`), 'running'
        (the worker answers when the job stops) or None (unknown or finished)."""
        with self._cond:
            job = self._jobs.get((client, job_id))
            if job is None:
                return None
            job.cancel_event.set()
            if job.state == "queued":
                self._queue.remove(job)
                del self._jobs[job.key]
                self._tell_queue()
                return "queued"
            return "running"

    def cancel_client(self, client: bytes) -> int:
        """Cancel every job of a vanished connection, silently. Returns how many."""
        with self._cond:
            jobs = [j for k, j in self._jobs.items() if k[0] == client]
            for job in jobs:
                job.cancel_event.set()
                if job.state == "queued":
                    self._queue.remove(job)
                    del self._jobs[job.key]
            self._tell_queue()
        if jobs:
            log.info("client %s vanished: cancelled %d job(s)", client.hex(), len(jobs))
        return len(jobs)

    def status(self, client: bytes | None = None) -> dict:
        """Queue summary; job ids are listed only for the asking connection."""
        with self._cond:
            mine = []
            for pos, job in enumerate(self._queue):
                if job.client == client:
                    mine.append({"id": job.id, "op": job.op.name, "state": "queued",
                                 "position": pos + (1 if self._running else 0)})
            run = self._running
            if run is not None and run.client == client:
                mine.insert(0, {"id": run.id, "op": run.op.name, "state": "running", "position": 0})
            return {"queued": len(self._queue), "running": run is not None, "device": self.device,
                    "jobs": mine}

    def shutdown(self, timeout: float = 10.0) -> list[Job]:
        """Stop taking jobs, cancel the running one, return the queued ones (for the caller
        to answer `cancelled`). Waits up to `timeout` for the running job to stop."""
        with self._cond:
            self._stopping = True
            queued = list(self._queue)
            self._queue.clear()
            for job in queued:
                job.cancel_event.set()
                self._jobs.pop(job.key, None)
            if self._running is not None:
                self._running.cancel_event.set()
            self._cond.notify_all()
        self._worker.join(timeout)
        if self._worker.is_alive():
            log.warning("the running job did not stop within %.0f s; exiting anyway", timeout)
        return queued

    def _tell_queue(self) -> None:
        """Tell each waiting job whose count changed how many jobs are ahead of it (lock held)."""
        running = 1 if self._running is not None else 0
        for pos, job in enumerate(self._queue):
            ahead = pos + running
            if job.queue_news and ahead != job.ahead and ahead > 0:
                self._emit(job.client, {"type": "progress", "id": job.id, "step": 0, "total": 0,
                                        "stage": QUEUED_STAGE, "ahead": ahead})
            job.ahead = ahead

    # ---- worker thread -------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state = "running"
                job.started = time.perf_counter()
                self._running = job
                self._tell_queue()
            header: dict | None = None
            try:
                header = self._run(job)
            finally:
                # The job stops counting as running before its final message is emitted: once a
                # client has the result, cancel answers not_found and the id may be reused.
                with self._cond:
                    self._running = None
                    job.state = "done"
                    self._jobs.pop(job.key, None)
                if header is not None:
                    self._emit(job.client, header)

    def _run(self, job: Job) -> dict:
        """Run one job; returns its final message (result, error or cancelled)."""
        def report(event: dict) -> None:
            self._emit(job.client, {"type": "progress", "id": job.id, **event})

        ctx = JobContext(job.id, report=report, models=self.models, device=self.device,
                         preview_every=self.preview_every, cancel_event=job.cancel_event)
        try:
            ctx.progress(0, 0, "start")  # tells the client the job left the queue
            with self.models.hold() if self.models is not None else nullcontext():  # its models stay loaded
                outputs, meta = job.op.run(job.inputs, job.params, ctx)
            ctx.check_cancelled()  # a cancel that arrived after the last step still wins
            header = {"type": "result", "id": job.id, "outputs": _check_outputs(job.op.name, outputs),
                      "meta": _meta(meta, job)}
        except JobCancelled:
            header = {"type": "cancelled", "id": job.id}
        except EngineError as exc:
            header = {"type": "error", "id": job.id, **exc.to_dict()}
        except Exception as exc:  # a bug in an operation: log it, answer, keep serving
            log.error("job %r (%s) failed:\n%s", job.id, job.op.name, traceback.format_exc())
            header = {"type": "error", "id": job.id, "code": INTERNAL,
                      "message": f"internal error in {job.op.name}: {type(exc).__name__}: {exc} "
                                 "(see the engine log)", "field": None}
        return header


def _check_outputs(op: str, outputs: Any) -> dict[str, np.ndarray]:
    """Ops must return a map of [h, w, c] arrays in protocol dtypes; anything else is a bug."""
    if not isinstance(outputs, dict):
        raise TypeError(f"{op} returned {type(outputs).__name__}, not a map of arrays")
    checked = {}
    for name, arr in outputs.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{op} output {name!r} is {type(arr).__name__}, not an array")
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in CHANNELS or arr.dtype.name not in DTYPE_NAMES:
            raise TypeError(f"{op} output {name!r} has shape {arr.shape} {arr.dtype}; "
                            "expected [h, w, 1|3|4] uint8, uint16 or float32")
        checked[str(name)] = arr
    return checked


def _meta(meta: Any, job: Job) -> dict:
    out = plain(dict(meta or {}))
    timings = out.setdefault("timings", {})
    if isinstance(timings, dict):
        timings.setdefault("queued_s", round(job.started - job.submitted, 4))
        timings.setdefault("run_s", round(time.perf_counter() - job.started, 4))
    out.setdefault("op", job.op.name)
    return out
