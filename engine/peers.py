"""Who owns a message: a connection, or, with CURVE keys, the client key it authenticated with.

A ZeroMQ routing id names a peer, but a client may choose its own, and once a connection has
closed its id is free: a new socket that sets the same id would otherwise inherit the old
connection's jobs (status, progress, results, cancel). So the engine keys everything a client
owns (jobs, shared memory, result regions) by an *owner*:

- without keys, the connection: the routing id plus a serial number given to each connection;
- with keys (`sfumato serve --keys`), the authenticated key: ZeroMQ stamps every message of a
  CURVE connection with the client's public key ("User-Id", set by the ZAP authenticator). All
  connections of one key share its jobs, and when the last of them closes the jobs keep running
  for `grace_s` seconds: a client that reconnects with its key (after a network drop) sees them
  again, gets their progress and their results. Another key never sees them.

A connection is told apart by the file descriptor its messages arrive on (ZMQ_SRCFD). A closed
descriptor number can be reused by the next connection, so the engine also watches the
ROUTER's monitor: the disconnect event of a descriptor is emitted before the descriptor is
closed, hence before a new connection can get its number, and it is read before each message
is attributed and before each send. Routing id reuse while the first connection is still open
is refused by ZeroMQ itself (ROUTER_HANDOVER is off: the second connection's messages are
dropped). In-process (inproc://) clients have no descriptor; their ids are unique to the
process and keep one owner for their lifetime.

Messages of a key's job go to the connection that submitted it while that one is open, else to
the key's connection heard from most recently.
"""
from __future__ import annotations

import itertools
import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

KEY_OWNER = b"\x01key:"  # owner prefix of an authenticated key (ZeroMQ's own routing ids start with 0)
RECONNECT_GRACE_S = 60.0  # how long a key's jobs wait for one of its connections to come back


def is_key_owner(owner: bytes) -> bool:
    return owner.startswith(KEY_OWNER)


def user_id(frame: Any) -> str | None:
    """The authenticated client key (z85) of a received frame, or None (no CURVE, inproc)."""
    try:
        user = frame.get("User-Id")
    except (zmq.ZMQError, AttributeError, TypeError):
        return None
    return user or None


class Peers:
    """Owners of the ROUTER's connections. Used by the server thread only."""

    def __init__(self, router: zmq.Socket, grace_s: float = RECONNECT_GRACE_S):
        self._monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.grace_s = grace_s
        self._serial = itertools.count(1)
        self._current: dict[bytes, tuple[int | None, bytes]] = {}  # routing id -> (descriptor, owner)
        self._routes: dict[bytes, list[bytes]] = {}  # owner -> routing ids of its open connections, latest last
        self._on_fd: dict[int, set[bytes]] = {}  # descriptor -> routing ids seen on it
        self._jobs: dict[tuple[bytes, str], bytes] = {}  # (key owner, job id) -> routing id that submitted it
        self._waiting: dict[bytes, float] = {}  # key owner without an open connection -> deadline (monotonic)
        self._vanished: list[bytes] = []
        self._last: bytes | None = None  # routing id of the message attributed last

    def owner(self, routing_id: bytes, frame: Any) -> bytes:
        """The owner key of the connection a received message (any of its frames) came from."""
        self._drain()
        try:
            fd: int | None = frame.get(zmq.SRCFD)
        except (zmq.ZMQError, AttributeError):
            fd = None  # inproc: no descriptor
        current = self._current.get(routing_id)
        if current is not None and current[0] == fd:
            owner = current[1]
        else:
            if current is not None:
                self._drop(routing_id)  # another connection carries this id now: the old one is gone
            key = user_id(frame)
            owner = KEY_OWNER + key.encode("ascii") if key else routing_id + next(self._serial).to_bytes(8, "big")
            self._current[routing_id] = (fd, owner)
            self._waiting.pop(owner, None)  # the key is back: its jobs are no longer waiting
            if fd is not None:
                self._on_fd.setdefault(fd, set()).add(routing_id)
        routes = self._routes.setdefault(owner, [])
        if routes[-1:] != [routing_id]:
            if routing_id in routes:
                routes.remove(routing_id)
            routes.append(routing_id)
        self._last = routing_id
        return owner

    def claim(self, owner: bytes, job_id: str) -> None:
        """The message attributed last submitted job `job_id`: its messages go back there."""
        if is_key_owner(owner) and self._last is not None:
            self._jobs[(owner, job_id)] = self._last

    def end_job(self, owner: bytes, job_id: Any) -> None:
        """A job's final message has gone."""
        if isinstance(job_id, str):
            self._jobs.pop((owner, job_id), None)

    def route(self, owner: bytes, job_id: Any = None) -> bytes | None:
        """The routing id to send an owner's message (about `job_id`) to, or None if no
        connection of the owner is open."""
        self._drain()
        routes = self._routes.get(owner)
        if not routes:
            return None
        if isinstance(job_id, str):
            submitter = self._jobs.get((owner, job_id))
            if submitter is not None and submitter in routes:
                return submitter
        return routes[-1]

    def waiting(self, owner: bytes) -> float | None:
        """For a key whose connections are all closed: until when its jobs wait for it."""
        return self._waiting.get(owner)

    def forget(self, routing_id: bytes) -> None:
        """A send to this connection failed: it is gone."""
        if routing_id in self._current:
            self._drop(routing_id)

    def take_vanished(self) -> list[bytes]:
        """Owners that are gone since the last call (their jobs are to be cancelled): closed
        connections, and keys that did not come back in time."""
        self._drain()
        now = time.monotonic()
        for owner in [o for o, deadline in self._waiting.items() if deadline <= now]:
            del self._waiting[owner]
            self._vanished.append(owner)
            for job in [k for k in self._jobs if k[0] == owner]:
                del self._jobs[job]
        gone, self._vanished = self._vanished, []
        return gone

    def close(self) -> None:
        self._monitor.close(0)

    def _drain(self) -> None:
        while self._monitor.get(zmq.EVENTS) & zmq.POLLIN:  # cheaper than a failing recv on every send
            event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                for routing_id in list(self._on_fd.get(event["value"], ())):
                    self._drop(routing_id)

    def _drop(self, routing_id: bytes) -> None:
        fd, owner = self._current.pop(routing_id)
        routes = self._routes.get(owner, [])
        if routing_id in routes:
            routes.remove(routing_id)
        if fd is not None:
            ids = self._on_fd.get(fd, set())
            ids.discard(routing_id)
            if not ids:
                self._on_fd.pop(fd, None)
        if routes:
            return  # the key has other open connections
        self._routes.pop(owner, None)
        if is_key_owner(owner):
            self._waiting[owner] = time.monotonic() + self.grace_s
        else:
            self._vanished.append(owner)
