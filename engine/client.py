"""Python client for the engine: used by the CLI, tests, benchmarks and scripts.

One DEALER connection carries many jobs. A background I/O thread owns the socket (ZeroMQ
sockets are single-threaded) and routes every reply to the request or job with its id;
progress callbacks run in the thread that waits for the job, never in the I/O thread.

Large arrays to an engine on this host (ipc://, loopback tcp) go through shared memory when
the engine offers it (engine/shm.py): the client copies them into its segment, grants the
engine a region of it for the results, and returns results as views of that region, so a
round trip costs two memcpys instead of a trip through the kernel's socket buffers. If the
engine cannot see the segment (another /dev/shm, e.g. a container), the client falls back to
frames for the rest of the connection.

An engine that serves the network authenticates clients with CURVE keys (engine/keys.py).
ZeroMQ keeps a refused handshake to itself (the socket just retries), so the client watches its
socket's monitor: a failed handshake ends the waits at once with the code `refused` and a
message that says which side's key to check, instead of a timeout. After a reconnect it pings
the engine at once, so that a keyed engine routes the key's jobs to the new connection.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np
import zmq

from . import DEFAULT_ADDRESS, HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS
from . import shm as shmem
from .arrays import as_array
from .errors import BAD_MESSAGE, TOO_LARGE, UNKNOWN_OP
from .client_job import EngineClientError, EngineRefused, EngineTimeout, Job, ProgressFn, Result, _Pending
from .keys import ClientCurve, HandshakeWatch
from .opcall import bind
from .protocol import CAPABILITIES, decode, encode, request_id_of

log = logging.getLogger("sfumato.client")

DEFAULT_JOB_TIMEOUT = 3600.0  # run() and the one-call ops: longest wait for one job, in seconds
ENGINE_RESTARTED = "engine_restarted"  # client-side error code: the engine that accepted a job is gone


class Client:
    """A connection to an engine. Thread-safe; use as a context manager or call close().

    `shm`: send large arrays through shared memory when the engine is on this host and
    offers it (the default); False always sends frames."""

    def __init__(self, address: str = DEFAULT_ADDRESS, timeout: float = 30.0, name: str = "sfumato-python",
                 context: zmq.Context | None = None, shm: bool = True,
                 job_timeout: float | None = DEFAULT_JOB_TIMEOUT, server_key: str | os.PathLike | None = None,
                 client_key: str | os.PathLike | None = None):
        """`timeout`: seconds without any message from the engine before a wait fails;
        `job_timeout`: the longest run() (and inpaint(), ...) waits for a job (None: no limit);
        `server_key`, `client_key`: for an engine served with keys, its public key file
        (server.key) and this client's key pair (NAME.key_secret), see `sfumato keys`."""
        curve = ClientCurve.optional(server_key, client_key)  # KeyFileError (a ValueError) before any socket
        self.address, self.timeout, self.name = address, timeout, name
        self.job_timeout = job_timeout
        # inproc:// already passes frames by reference; shared memory only pays across processes.
        self._shm_wanted = shm and shmem.same_host(address) and shmem.available() and curve is None
        self._shm: shmem.ClientShm | None = None
        self._engine: Any = None  # set by in_process
        self._ids = itertools.count(1)
        # ids are unique per connection, or per key on a keyed engine (other programs, other hosts)
        self._prefix = f"{os.getpid():x}{os.urandom(3).hex()}"
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._outq: deque[list] = deque()
        self._last_rx = time.monotonic()
        self._closed = False
        self._own_ctx = context is None  # inproc:// needs the engine's context, which we must not end
        self._ctx = zmq.Context() if context is None else context
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        self._sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        if "[" in address:
            self._sock.setsockopt(zmq.IPV6, 1)
        self._keyed = curve is not None
        if curve is not None:
            curve.apply(self._sock)
        # inproc has no handshake; elsewhere the monitor tells a refused key from a silent engine
        self._watch = None if address.startswith("inproc://") else HandshakeWatch(self._sock, address, self._keyed)
        self._sock.connect(address)
        wake = f"inproc://client-wake-{os.getpid()}-{id(self):x}"
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        self._wake_rx.bind(wake)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        self._wake_tx.connect(wake)
        self._wake_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._io, name="sfumato-client-io", daemon=True)
        self._thread.start()
        self._welcome: dict | None = None

    @classmethod
    def in_process(cls, models_dir: Any = None, device: str = "cpu", timeout: float = 30.0,
                   **engine_kwargs: Any) -> "Client":
        """Start a real engine in this process on a random loopback port and connect to it
        through inproc:// (no copies of the arrays). `client.engine.address` is the engine's
        TCP address for other clients. close() stops the engine too."""
        from .server import Engine

        engine = Engine(bind="tcp://127.0.0.1:*", models_dir=models_dir, device=device, **engine_kwargs).start()
        try:
            client = cls(engine.inproc_address, timeout=timeout, context=engine.context)
        except Exception:
            engine.stop()
            raise
        client._engine = engine
        return client

    @property
    def engine(self) -> Any:
        """The in-process engine (Client.in_process), else None."""
        return self._engine

    # ---- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake()
        self._thread.join(5)
        if self._shm is not None:
            self._shm.close()
        if self._engine is not None:
            self._engine.stop()
            self._engine = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- I/O thread ---------------------------------------------------------------------
    def _wake(self) -> None:
        with self._wake_lock:
            try:
                self._wake_tx.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # a wake-up is already pending, or the I/O thread has closed its sockets

    def _io(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        if self._watch is not None:
            poller.register(self._watch.socket, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(20 if self._outq else 500))
                if self._wake_rx in events:
                    while True:
                        try:
                            self._wake_rx.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                while self._outq:
                    try:
                        self._sock.send_multipart(self._outq[0], zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break  # not connected yet or the engine is not reading: retry shortly
                    self._outq.popleft()
                if self._sock in events:
                    while True:
                        try:
                            frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._receive(frames)
                if self._watch is not None and self._watch.socket in events and self._watch.read():
                    # a reconnect: let the engine hear from the new connection now (a keyed
                    # engine then routes the key's jobs to it; a restarted one shows its instance)
                    self._outq.append(encode({"type": "ping"}))
        finally:
            with self._wake_lock:
                if self._watch is not None:
                    self._watch.close()
                for sock in (self._sock, self._wake_tx, self._wake_rx):
                    sock.close(0)
            if self._own_ctx:
                self._ctx.term()

    def _receive(self, frames: list) -> None:
        self._last_rx = time.monotonic()
        try:
            msg = decode(frames, from_engine=True, shm=self._shm)
        except Exception as exc:
            rid = request_id_of(exc)
            log.warning("dropping an undecodable message from the engine: %s", exc)
            if rid is None:
                return
            # Tell whoever waits for this id rather than leave it waiting until its timeout.
            msg = {"type": "error", "id": rid, "code": getattr(exc, "code", BAD_MESSAGE),
                   "message": f"undecodable reply from the engine: {exc}", "field": getattr(exc, "field", None)}
        rid = msg.get("id")
        if self._shm is not None and isinstance(rid, str) and msg["type"] in ("result", "error", "cancelled"):
            self._shm.finish(rid)  # the engine is done with this job's blocks
        instance = msg.get("instance")
        if isinstance(instance, str):
            self._fail_lost_jobs(instance)
        with self._lock:
            pending = self._pending.get(rid) if isinstance(rid, str) else None
            if pending is not None and msg["type"] == "accepted" and isinstance(instance, str):
                pending.instance = instance
            if pending is not None and msg["type"] in ("result", "error", "cancelled", "welcome", "pong",
                                                        "status", "models"):
                del self._pending[rid]
        if pending is None:
            if msg["type"] == "error":
                log.debug("engine error for id %r: %s %s", rid, msg.get("code"), msg.get("message"))
            return
        if msg["type"] == "progress" and not pending.wants_progress:
            return
        pending.messages.put(msg)

    def _fail_lost_jobs(self, instance: str) -> None:
        """A message from engine run `instance`: jobs another run accepted are lost (the engine
        restarted); end their waits now rather than at a timeout."""
        with self._lock:
            lost = {rid: p for rid, p in self._pending.items() if p.instance not in (None, instance)}
            for rid in lost:
                del self._pending[rid]
        for rid, pending in lost.items():
            if self._shm is not None:
                self._shm.finish(rid)
            pending.messages.put({"type": "error", "id": rid, "code": ENGINE_RESTARTED, "field": None,
                                  "message": f"engine restarted, job lost: the engine at {self.address} "
                                             f"restarted while job {rid} was queued or running; submit it again"})

    # ---- request plumbing ---------------------------------------------------------------
    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _send(self, header: dict, rid: str | None, wants_progress: bool = True) -> _Pending | None:
        if self._closed:
            raise EngineClientError("closed", "this client is closed")
        pending = None
        if rid is not None:
            pending = _Pending(wants_progress)
            with self._lock:
                self._pending[rid] = pending
        frames = encode(header)
        self._outq.append(frames)
        self._wake()
        return pending

    def _wait(self, pending: _Pending, deadline: float | None, what: str) -> dict:
        """Next message for a request; raises EngineTimeout at the deadline or when the engine
        stopped answering (checked with pings while waiting)."""
        last_ping = 0.0
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise EngineTimeout(f"{what}: no answer from the engine at {self.address} in time")
            slice_s = 0.25 if deadline is None else max(0.0, min(0.25, deadline - now))
            try:
                return pending.messages.get(timeout=slice_s)
            except queue.Empty:
                pass
            silent = time.monotonic() - self._last_rx
            refused = self._watch.refused if self._watch is not None else None
            if refused is not None and pending.messages.empty():
                raise EngineRefused(f"{what}: {refused}")
            if silent > self.timeout:
                hint = ("it is not running, unreachable, or it refused this key" if self._keyed
                        else "is `sfumato serve` running there?")
                raise EngineTimeout(f"{what}: the engine at {self.address} has not answered for "
                                    f"{silent:.0f} s; {hint}")
            if silent > self.timeout / 3 and time.monotonic() - last_ping > self.timeout / 3:
                last_ping = time.monotonic()
                self._send({"type": "ping", "id": self._new_id()}, None)

    def _request(self, header: dict, timeout: float | None = None) -> dict:
        rid = self._new_id()
        self._last_rx = time.monotonic()
        pending = self._send({**header, "id": rid}, rid)
        assert pending is not None
        limit = self.timeout if timeout is None else timeout
        try:
            msg = self._wait(pending, time.monotonic() + limit, header["type"])
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        if msg["type"] == "error":
            raise EngineClientError(msg.get("code", "internal"), msg.get("message", ""), msg.get("field"))
        return msg

    # ---- API ----------------------------------------------------------------------------
    def hello(self, timeout: float | None = None) -> dict:
        """The engine's welcome: versions, capabilities, ops with their schemas, models, device, limits."""
        header = {"type": "hello", "client": self.name, "capabilities": list(CAPABILITIES)}
        try:
            self._welcome = self._request(header, timeout)
        except EngineClientError as exc:  # an engine from before capabilities refuses the field
            if (exc.code, exc.field) != (BAD_MESSAGE, "capabilities"):
                raise
            self._welcome = self._request({"type": "hello", "client": self.name}, timeout)
        return self._welcome

    def ping(self, timeout: float | None = None) -> float:
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        self._request({"type": "ping"}, timeout)
        return time.perf_counter() - t0

    def status(self, timeout: float | None = None) -> dict:
        return self._request({"type": "status"}, timeout)

    def models(self, refresh: bool = False, timeout: float | None = None) -> list[dict]:
        return self._request({"type": "models", "refresh": bool(refresh)}, timeout)["models"]

    def submit(self, op: str, inputs: dict[str, Any], params: dict[str, Any] | None = None,
               on_progress: ProgressFn | None = None, timeout: float | None = None) -> Job:
        """Send a job and wait for `accepted`; raises EngineClientError if it is refused."""
        arrays = {name: as_array(value, name) for name, value in inputs.items() if value is not None}
        params = dict(params or {})
        for _attempt in range(3):  # shared memory may be refused once or twice; frames never are for that
            packed = self._shm_pack(arrays, params, timeout)
            header: dict[str, Any] = {"type": "submit", "op": op, "inputs": arrays, "params": params}
            if packed is not None:
                header["inputs"] = {**arrays, **packed.descriptors}
                if packed.grant is not None:
                    header["shm_out"] = packed.grant
            rid = self._new_id()
            header["id"] = rid
            self._last_rx = time.monotonic()
            if packed is not None:
                assert self._shm is not None
                self._shm.add(rid, packed.lease)
            pending = self._send(header, rid, wants_progress=on_progress is not None)
            assert pending is not None
            job = Job(self, rid, on_progress, pending)
            try:
                job.wait_accepted(self.timeout if timeout is None else timeout)
            except EngineClientError as exc:
                if packed is not None and self._shm_refused(exc, packed):
                    continue
                raise
            finally:
                if packed is not None and packed.fresh:
                    packed.lease.arena.unlink()  # the engine unlinked it if it mapped it; make sure
            return job
        raise AssertionError("unreachable: the last attempt sends frames")

    def _shm_pack(self, arrays: dict[str, np.ndarray], params: dict, timeout: float | None) -> Any:
        """Shared-memory descriptors for this submit, or None to send frames."""
        if not self._shm_wanted:
            return None
        out_bytes = shmem.output_estimate(arrays, params)
        if out_bytes < shmem.MIN_BYTES and all(a.nbytes < shmem.MIN_BYTES for a in arrays.values()):
            return None
        if self._shm is None:
            welcome = self._welcome or self.hello(timeout)
            info = welcome.get("shm")
            if not isinstance(info, dict):
                self._shm_wanted = False  # this engine does not offer it
                return None
            self._shm = shmem.ClientShm(info)
        return self._shm.pack(arrays, out_bytes)

    def _shm_refused(self, exc: EngineClientError, packed: Any) -> bool:
        """After a refused shared-memory submit: True to try again (with a new segment, or
        with frames once shared memory proved unusable)."""
        field = exc.field or ""
        if exc.code not in (BAD_MESSAGE, TOO_LARGE) or not (field.startswith("shm_out") or field.endswith(".shm")):
            return False
        assert self._shm is not None
        self._shm.retire(packed.lease.arena)
        if packed.fresh:  # even a brand-new segment was refused: this engine cannot see our /dev/shm
            log.warning("the engine refused shared memory (%s); sending frames from now on", exc.message)
            self._shm_wanted = False
        return True

    def run(self, op: str, inputs: dict[str, Any], params: dict[str, Any] | None = None,
            on_progress: ProgressFn | None = None, timeout: float | None = None) -> Result:
        """Submit and wait (at most `timeout`, default the client's job_timeout). On timeout the
        job is cancelled and EngineTimeout raised."""
        timeout = self.job_timeout if timeout is None else timeout
        start = time.monotonic()
        job = self.submit(op, inputs, params, on_progress, timeout)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        return job.result(left)

    def cancel(self, job_id: str) -> None:
        """Ask the engine to cancel a job of this connection (the job's waiter sees 'cancelled')."""
        self._send({"type": "cancel", "id": job_id}, None)

    # ---- every operation as a method, from its schema ----------------------------------
    def call(self, op: str, *args: Any, on_progress: ProgressFn | None = None, timeout: float | None = None,
             **kwargs: Any) -> np.ndarray:
        """Run an op and return its main image: `call("inpaint", image, mask, steps=20)`. The
        arguments map onto the op's inputs and parameters as engine/opcall.py says."""
        schema = (self._welcome or self.hello(timeout)).get("ops", {}).get(op)
        if schema is None:
            raise EngineClientError(UNKNOWN_OP, f"this engine has no operation {op!r}", "op")
        inputs, params = bind(op, schema, args, kwargs)
        return self.run(op, inputs, params, on_progress=on_progress, timeout=timeout).image

    def __getattr__(self, name: str) -> Callable[..., np.ndarray]:
        """`client.inpaint(image, mask, steps=20)`: any op the engine has (it asks the engine
        once, with `hello`), called as `call` says."""
        if name.startswith("_"):
            raise AttributeError(name)
        ops = (self._welcome or self.hello()).get("ops", {})
        if name not in ops:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}, and the engine has no such "
                                 f"operation (it has: {', '.join(sorted(ops)) or 'none'})")
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)
