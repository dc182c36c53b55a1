"""Which connection a message came from: jobs belong to a connection, not to a routing id.

A ZeroMQ routing id names a peer, but a client may choose its own, and once a connection has
closed its id is free: a new socket that sets the same id would otherwise inherit the old
connection's jobs (status, progress, results, cancel). So the engine keys everything a
connection owns (jobs, shared memory, result regions) by an *owner*: the routing id plus a
serial number given to each connection.

A connection is told apart by the file descriptor its messages arrive on (ZMQ_SRCFD). A closed
descriptor number can be reused by the next connection, so the engine also watches the
ROUTER's monitor: the disconnect event of a descriptor is emitted before the descriptor is
closed, hence before a new connection can get its number, and it is read before each message
is attributed and before each send. Routing id reuse while the first connection is still open
is refused by ZeroMQ itself (ROUTER_HANDOVER is off: the second connection's messages are
dropped). In-process (inproc://) clients have no descriptor; their ids are unique to the
process and keep one owner for their lifetime.
"""
from __future__ import annotations

import itertools
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message


class Peers:
    """Owners of the ROUTER's connections. Used by the server thread only."""

    def __init__(self, router: zmq.Socket):
        self._monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._serial = itertools.count(1)
        self._current: dict[bytes, tuple[int | None, bytes]] = {}  # routing id -> (descriptor, owner)
        self._route: dict[bytes, bytes] = {}  # owner of a live connection -> its routing id
        self._on_fd: dict[int, set[bytes]] = {}  # descriptor -> routing ids seen on it
        self._vanished: list[bytes] = []

    def owner(self, routing_id: bytes, frame: Any) -> bytes:
        """The owner key of the connection a received message (any of its frames) came from."""
        self._drain()
        try:
            fd: int | None = frame.get(zmq.SRCFD)
        except (zmq.ZMQError, AttributeError):
            fd = None  # inproc: no descriptor
        current = self._current.get(routing_id)
        if current is not None and current[0] == fd:
            return current[1]
        if current is not None:
            self._drop(routing_id)  # another connection carries this id now: the old one is gone
        owner = routing_id + next(self._serial).to_bytes(8, "big")
        self._current[routing_id] = (fd, owner)
        self._route[owner] = routing_id
        if fd is not None:
            self._on_fd.setdefault(fd, set()).add(routing_id)
        return owner

    def route(self, owner: bytes) -> bytes | None:
        """The routing id to send an owner's message to, or None if its connection is gone."""
        self._drain()
        return self._route.get(owner)

    def forget(self, owner: bytes) -> None:
        """A send to this owner's connection failed: it is gone."""
        routing_id = self._route.get(owner)
        if routing_id is not None:
            self._drop(routing_id)

    def take_vanished(self) -> list[bytes]:
        """Owners whose connection closed since the last call (their jobs are to be cancelled)."""
        self._drain()
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
        del self._route[owner]
        if fd is not None:
            ids = self._on_fd.get(fd, set())
            ids.discard(routing_id)
            if not ids:
                self._on_fd.pop(fd, None)
        self._vanished.append(owner)
