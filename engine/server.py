"""The engine's ZeroMQ ROUTER loop: validates every request and hands jobs to the scheduler.

One thread owns the ROUTER socket. Worker threads hand their outbound messages to it
through a queue and wake it through an inproc PAIR socket, so no socket is ever used from
two threads.

Vanished clients: the socket enables ZMQ heartbeats (a silent TCP peer is dropped after
HEARTBEAT_TIMEOUT) and ROUTER_MANDATORY (a send to a dropped peer fails with
EHOSTUNREACH instead of being discarded silently). Every running job reports progress, so
the next message to a vanished client fails and all of that client's jobs are cancelled.
Jobs belong to a connection, not to a routing id (engine/peers.py): a closed connection's jobs
are cancelled as soon as the ROUTER's monitor reports it, and nothing of theirs reaches a new
socket that takes the same routing id. With CURVE keys (`keys=DIR`, engine/keys.py) jobs belong
to the authenticated key instead, and wait a while for it to reconnect before they are cancelled.

Shared memory (engine/shm.py): on a loopback or ipc bind without keys the engine offers the same-host
extension in `welcome`. It maps a client's segment when a message names it, and writes a
job's result arrays into the region the submit granted (`shm_out`) on the worker thread,
before the result reaches the socket thread.
"""
from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Callable

import zmq

from . import DEFAULT_ADDRESS, HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, MAX_LOADED_MODELS, PROTOCOL_VERSION, __version__
from . import shm as shmem
from .keys import ServerCurve
from .errors import INTERNAL, NOT_FOUND, EngineError
from .peers import KEY_OWNER, RECONNECT_GRACE_S, Peers, is_key_owner
from .protocol import CAPABILITIES, Limits, decode, encode, request_id_of
from .devices import resolve_device
from .registry import ModelRegistry
from .scheduler import Job, Scheduler
from .tasks import OPERATIONS
from .tasks.base import Operation, check_submit

log = logging.getLogger("sfumato.server")

POLL_MS = 100  # how often the loop looks at the stop flag (signals) when idle
SHM_SWEEP_S = 1.0  # how often idle shared-memory attachments are looked at
SEND_RETRY_S = 30.0  # how long a result waits for a client whose receive queue is full


FINAL = ("result", "error", "cancelled")  # the message types that end a job
INSECURE_WARNING = ("this engine serves the network without authentication: anyone who can reach "
                    "{address} can use it and read the images sent to it")


class BindRefused(ValueError):
    """A bind address the engine will not serve on without --keys or --insecure."""


def is_local_bind(address: str) -> bool:
    """True for loopback TCP (127.0.0.0/8, ::1, localhost), ipc:// and inproc:// addresses."""
    scheme = address.split("://", 1)[0] if "://" in address else ""
    if scheme == "inproc":
        return True
    return shmem.same_host(address)  # ipc, or tcp on a loopback address ("*", names: not provably loopback)


def check_bind(address: str, insecure: bool, keys: bool = False) -> None:
    if "://" not in address:
        raise BindRefused(f"bind address {address!r} needs a scheme, e.g. tcp://127.0.0.1:5555 or ipc:///tmp/sfumato")
    if not is_local_bind(address) and not insecure and not keys:
        raise BindRefused(
            f"refusing to bind {address}: it is reachable from other machines. Serve authorised clients "
            "only with --keys DIR (see `sfumato keys new`), bind a loopback address (tcp://127.0.0.1:PORT) "
            "or an ipc:// path, or pass --insecure to serve the network unauthenticated at your own risk.")


class Engine:
    """A serving engine. `start()` runs it on a background thread; `serve_forever()` in this one."""

    def __init__(self, bind: str = DEFAULT_ADDRESS, models_dir: str | Path | None = None, device: str = "auto",
                 insecure: bool = False, limits: Limits | None = None,
                 operations: dict[str, Operation] | None = None, shm: bool | None = None,
                 shm_idle_s: float = shmem.DEFAULT_IDLE_S, keys: str | Path | None = None,
                 reconnect_s: float = RECONNECT_GRACE_S, max_models: int = MAX_LOADED_MODELS):
        """`shm`: offer the same-host shared-memory extension (None: when the bind is
        loopback tcp or ipc, without keys, and /dev/shm is usable; True: require it; False: never).
        `shm_idle_s`: how long a client's segment stays mapped without being used.
        `keys`: a key folder (`sfumato keys new`): serve only its authorised clients, through
        CURVE; their jobs then belong to their key and wait `reconnect_s` for it to reconnect.
        `max_models`: models kept loaded at once (the least recently used beyond it are unloaded)."""
        check_bind(bind, insecure, keys=keys is not None)
        self.bind = bind
        self.curve = ServerCurve(keys) if keys is not None else None  # reads the key pair now: errors early
        self.reconnect_s = reconnect_s
        self.insecure = insecure and self.curve is None and not is_local_bind(bind)
        self.device = resolve_device(device)
        self.limits = limits or Limits()
        self.operations = dict(OPERATIONS if operations is None else operations)
        self.models = ModelRegistry(models_dir, self.device, max_models=max_models)
        self.address: str | None = None
        self.inproc_address: str | None = None
        # Names this run of the engine in welcome, pong and accepted: a client that sees another
        # value knows the engine restarted and that the jobs it had accepted are lost.
        self.instance = secrets.token_hex(8)
        self._ctx: zmq.Context | None = None
        self._router: zmq.Socket | None = None
        self._peers: Peers | None = None  # jobs belong to a connection (engine/peers.py)
        self._queue_news: set[bytes] = set()  # connections whose hello listed the `queue` capability
        self._wake_tx: zmq.Socket | None = None
        self._wake_rx: zmq.Socket | None = None
        self._wake_lock = threading.Lock()
        self._outbox: deque[tuple[bytes, dict]] = deque()
        self._backlog: deque[tuple[bytes, list, Any, bool, float]] = deque()  # client, frames, id, ends job, deadline
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None
        self.scheduler: Scheduler | None = None
        # Never with keys: a keyed engine serves remote clients, and a segment name proves nothing.
        offer = shmem.available() and shmem.same_host(bind) and self.curve is None
        if shm and not offer:
            raise ValueError(f"shared memory needs a loopback tcp or ipc bind without keys and a usable "
                             f"{shmem.SHM_DIR}")
        self.shm: shmem.EngineShm | None = (
            shmem.EngineShm(idle_s=shm_idle_s, max_bytes=4 * self.limits.max_message_bytes)
            if offer and shm is not False else None)
        self._grants: dict[tuple[bytes, str], shmem.Grant] = {}  # result regions of jobs in flight
        self._grants_lock = threading.Lock()
        self._next_sweep = 0.0

    # ---- lifecycle ----------------------------------------------------------------------
    def _open(self) -> None:
        if self._router is not None:
            raise RuntimeError("engine already started")
        self._ctx = zmq.Context()
        router = self._ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        router.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        router.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
        router.setsockopt(zmq.SNDHWM, 10000)
        router.setsockopt(zmq.LINGER, 2000)
        if "[" in self.bind:
            router.setsockopt(zmq.IPV6, 1)
        if self.curve is not None:
            self.curve.start(self._ctx, router)
        self._peers = Peers(router, grace_s=self.reconnect_s)  # before bind: every connection is seen
        try:
            router.bind(self.bind)
        except zmq.ZMQError as exc:
            self._peers.close()
            if self.curve is not None:
                self.curve.stop()
            router.close(0)
            self._ctx.term()
            raise OSError(f"cannot bind {self.bind}: {exc}") from exc
        self.address = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        if self.insecure:
            log.warning("*** INSECURE: %s; use --keys DIR (sfumato keys new) to serve authorised clients "
                        "only ***", INSECURE_WARNING.format(address=self.address))
        # Clients in this process (Client.in_process) connect here: inproc passes frames by
        # reference, so arrays cross without any copy.
        self.inproc_address = f"inproc://sfumato-engine-{id(self):x}"
        router.bind(self.inproc_address)
        self._router = router
        wake = f"inproc://sfumato-wake-{id(self):x}"
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        self._wake_rx.bind(wake)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        self._wake_tx.connect(wake)
        self.scheduler = Scheduler(self._emit, models=self.models, device=self.device,
                                   max_per_client=self.limits.max_queue_per_client, instance=self.instance)

    def start(self) -> "Engine":
        """Bind and serve on a background thread; `.address` is set when this returns."""
        self._open()
        self._thread = threading.Thread(target=self._serve, name="sfumato-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Bind and serve on this thread until stop(), SIGINT or SIGTERM."""
        self._open()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)
        if on_ready is not None:
            on_ready(self.address or self.bind)
        self._serve()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop serving: cancel the running job, answer queued ones, close the socket."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        else:
            self._done.wait(timeout)

    @property
    def context(self) -> zmq.Context:
        """The engine's ZeroMQ context (an inproc client must share it)."""
        assert self._ctx is not None, "engine not started"
        return self._ctx

    def __enter__(self) -> "Engine":
        return self if self._router is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self._stop.set()

    # ---- outbound path (any thread) ------------------------------------------------------
    def _emit(self, client: bytes, header: dict) -> None:
        kind = header.get("type")
        if kind in ("result", "error", "cancelled") and self._grants:
            with self._grants_lock:
                grant = self._grants.pop((client, header.get("id")), None)
            if grant is not None and kind == "result" and isinstance(header.get("outputs"), dict):
                # On the worker thread: the copy into the client's segment never holds up the socket.
                header = {**header, "outputs": grant.place(header["outputs"])}
        self._outbox.append((client, header))
        if threading.get_ident() != self._loop_thread_id:
            self._wake()

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_tx is not None:
                try:
                    self._wake_tx.send(b"", zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # a wake-up is already pending, or the engine is closing

    # ---- server thread -----------------------------------------------------------------
    def _serve(self) -> None:
        self._loop_thread_id = threading.get_ident()
        router, wake_rx = self._router, self._wake_rx
        assert router is not None and wake_rx is not None
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(wake_rx, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(20 if self._backlog else POLL_MS))
                if wake_rx in events:
                    while True:
                        try:
                            wake_rx.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                self._flush()
                if self.shm is not None and time.monotonic() >= self._next_sweep:
                    self._next_sweep = time.monotonic() + min(SHM_SWEEP_S, self.shm.idle_s / 4)
                    self.shm.expire()
                if router in events:
                    for _ in range(64):  # bounded, so outbound progress keeps flowing
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(frames)
                        self._flush()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        try:
            if self.scheduler is not None:
                queued = self.scheduler.shutdown()
                for job in queued:
                    self._outbox.append((job.client, {"type": "cancelled", "id": job.id}))
            self._flush()
            deadline = time.monotonic() + 2.0
            while self._backlog and time.monotonic() < deadline:
                time.sleep(0.02)
                self._flush()
        finally:
            if self.shm is not None:
                self.shm.close()
            with self._grants_lock:
                self._grants.clear()
            with self._wake_lock:
                for sock in (self._wake_tx, self._wake_rx):
                    if sock is not None:
                        sock.close(0)
                self._wake_tx = self._wake_rx = None
            if self._peers is not None:
                self._peers.close()
            if self._router is not None:
                self._router.close()  # LINGER lets the last replies go out
            if self.curve is not None:
                self.curve.stop()
            if self._ctx is not None:
                # term() waits for the last replies (LINGER) and for every socket of this
                # context; an in-process client that is still open must not hang the engine.
                closer = threading.Thread(target=self._ctx.term, name="sfumato-term", daemon=True)
                closer.start()
                closer.join(5.0)
            self._done.set()
            log.info("engine stopped")

    def _flush(self) -> None:
        router, peers = self._router, self._peers
        assert router is not None and peers is not None
        for owner in peers.take_vanished():  # closed connections: cancel their jobs now
            self._vanish(owner)
        now = time.monotonic()
        for _ in range(len(self._backlog)):
            client, frames, job_id, ends, deadline = self._backlog.popleft()
            self._send(client, frames, job_id, ends, final=True, deadline=deadline, now=now)
        while self._outbox:
            client, header = self._outbox.popleft()
            try:
                frames = encode(header)
            except Exception:
                log.error("cannot encode a %s message:\n%s", header.get("type"), traceback.format_exc())
                frames = encode({"type": "error", "id": header.get("id"), "code": INTERNAL,
                                 "message": f"the engine could not encode its {header.get('type')} reply "
                                            "(see the engine log)", "field": None})
            kind = header.get("type")
            self._send(client, frames, header.get("id"), kind in FINAL, final=kind != "progress",
                       deadline=now + SEND_RETRY_S, now=now)

    def _send(self, client: bytes, frames: list, job_id: Any, ends: bool, final: bool, deadline: float,
              now: float) -> None:
        """Send to the owner's connection (for a key: the job's submitter, else its latest). A
        key with no open connection gets its final messages when it reconnects in time."""
        peers = self._peers
        assert peers is not None
        route = peers.route(client, job_id)
        if route is None:
            back = peers.waiting(client)
            if back is None:  # its connection closed: never to a new connection that took the routing id
                self._vanish(client)
            elif final and now < back:
                self._backlog.append((client, frames, job_id, ends, back))
            return
        try:
            self._router.send_multipart([route, *frames], zmq.NOBLOCK, copy=False)  # type: ignore[union-attr]
        except zmq.Again:
            if final and now < deadline:
                self._backlog.append((client, frames, job_id, ends, deadline))  # client not reading: retry later
            elif final:
                log.warning("dropping a reply to %s: the client has not read anything for %.0f s",
                            client.hex(), SEND_RETRY_S)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                peers.forget(route)
                if final:  # another connection of its key may take it; else it is dropped next round
                    self._backlog.append((client, frames, job_id, ends, deadline))
            else:
                log.error("send to %s failed: %s", client.hex(), exc)
        else:
            if ends:
                peers.end_job(client, job_id)

    def _vanish(self, client: bytes) -> None:
        """A connection that is gone: cancel its jobs (silently), unmap its shared memory."""
        if self.scheduler is not None:
            self.scheduler.cancel_client(client)
        self._queue_news.discard(client)
        self._forget_shm(client)

    def _forget_shm(self, client: bytes) -> None:
        """A vanished client: unmap its segment and drop the result regions of its jobs."""
        if self.shm is not None:
            self.shm.drop_client(client)
        with self._grants_lock:
            for key in [k for k in self._grants if k[0] == client]:
                del self._grants[key]

    def _handle(self, frames: list) -> None:
        if len(frames) < 1:
            return
        client = self._peers.owner(frames[0].bytes, frames[-1])  # type: ignore[union-attr]
        if self.curve is not None and is_key_owner(client) and self._key_name(client) is None:
            self._revoked(client)
            return
        rid: str | None = None
        try:
            access = self.shm.access(client) if self.shm is not None else None
            msg = decode(frames[1:], self.limits, shm=access)
            rid = msg.get("id")
            getattr(self, "_on_" + msg["type"])(client, msg)
        except EngineError as exc:
            self._emit(client, {"type": "error", "id": rid if rid is not None else request_id_of(exc),
                                **exc.to_dict()})
        except Exception as exc:  # a bug in the engine: log it, answer, keep serving
            log.error("internal error while handling a message:\n%s", traceback.format_exc())
            self._emit(client, {"type": "error", "id": rid, "code": INTERNAL,
                                "message": f"internal error: {type(exc).__name__}: {exc} (see the engine log)",
                                "field": None})

    # ---- handlers (server thread) -------------------------------------------------------
    def welcome(self) -> dict:
        """The `welcome` body: versions, capabilities, op schemas (with the limits folded in),
        models, device, limits."""
        offered = {"shm": self.shm is not None, "keys": self.curve is not None}
        capabilities = [c for c in CAPABILITIES if offered.get(c, True)]
        body = {"engine": __version__, "protocol": PROTOCOL_VERSION, "capabilities": capabilities,
                "instance": self.instance, "security": self.security(),
                "ops": {name: op.schema(self.limits) for name, op in sorted(self.operations.items())},
                "models": self.models.list(), "device": self.device, "limits": self.limits.to_dict()}
        if self.shm is not None:
            body["shm"] = self.shm.info()  # absent = not offered (plain-frame clients ignore it)
        return body

    def security(self) -> dict:
        """The `welcome.security` map: how clients are authenticated and who owns jobs."""
        if self.curve is not None:
            return {"auth": "curve", "owner": "key", "reconnect_s": self.reconnect_s}
        body: dict[str, Any] = {"auth": "none", "owner": "connection"}
        if self.insecure:
            body["warning"] = "INSECURE: " + INSECURE_WARNING.format(address=self.address or self.bind)
        return body

    def _on_hello(self, client: bytes, msg: dict) -> None:
        # Of a client's `capabilities` only `queue` changes what it is sent (docs/protocol.md,
        # "Evolution"); the others are accepted and ignored.
        if "queue" in msg.get("capabilities", []):
            self._queue_news.add(client)
        else:
            self._queue_news.discard(client)
        log.info("hello from %r (%s)", msg.get("client", "?"), self._who(client))  # repr: no forged log lines
        self._emit(client, {"type": "welcome", "id": msg.get("id"), **self.welcome()})

    def _key_name(self, client: bytes) -> str | None:
        """The name of a key owner's key in the key folder now; None once it is revoked."""
        assert self.curve is not None
        return self.curve.clients.name_of(client[len(KEY_OWNER):].decode("ascii"))

    def _who(self, client: bytes) -> str:
        """An owner for the log: the client key's name, or the connection's routing id."""
        if self.curve is not None and is_key_owner(client):
            return f"key {self._key_name(client)!r}"
        return client.hex()

    def _revoked(self, client: bytes) -> None:
        """A message on a connection whose key was revoked after its handshake: ZeroMQ cannot
        close one peer of a ROUTER, so the engine ignores it (as a refused handshake gets no
        answer) and cancels the key's jobs."""
        if self.scheduler is not None and self.scheduler.cancel_client(client):
            log.warning("a revoked key is still connected: its jobs are cancelled and its messages ignored")

    def _on_ping(self, client: bytes, msg: dict) -> None:
        self._emit(client, {"type": "pong", "id": msg.get("id"), "instance": self.instance})

    def _on_status(self, client: bytes, msg: dict) -> None:
        assert self.scheduler is not None
        self._emit(client, {"type": "status", "id": msg.get("id"), **self.scheduler.status(client)})

    def _on_models(self, client: bytes, msg: dict) -> None:
        listing = self.models.refresh() if msg.get("refresh") else self.models.list()
        self._emit(client, {"type": "models", "id": msg.get("id"), "models": listing})

    def _on_submit(self, client: bytes, msg: dict) -> None:
        assert self.scheduler is not None
        op, inputs, params = check_submit(msg, self.operations, self.limits, self.models)
        key = (client, msg["id"])
        grant = msg.get("shm_out")
        with self._grants_lock:  # stored before the job can finish; never over a live job's grant
            mine = grant is not None and key not in self._grants
            if mine:
                self._grants[key] = grant
        try:
            self.scheduler.submit(Job(client, msg["id"], op, inputs, params,  # emits `accepted`
                                      queue_news=client in self._queue_news))
            self._peers.claim(client, msg["id"])  # type: ignore[union-attr]  # before anything is sent
        except BaseException:
            if mine:
                with self._grants_lock:
                    self._grants.pop(key, None)
            raise

    def _on_cancel(self, client: bytes, msg: dict) -> None:
        assert self.scheduler is not None
        state = self.scheduler.cancel(client, msg["id"])
        if state == "queued":
            self._emit(client, {"type": "cancelled", "id": msg["id"]})
        elif state is None:
            raise EngineError(NOT_FOUND, f"no queued or running job with id {msg['id']!r} on this connection",
                              "id")
