"""Cancel a killed plug-in's jobs: a tiny watcher process for the direct ZeroMQ path.

GIMP stops a plug-in whose progress the user cancels by killing its process, so the
plug-in cannot send `cancel` itself. Before submitting, the GIMP plug-in starts this
watcher (in its own session, so it survives), tells it each open job id on stdin
("+ID" / "-ID" lines), and closes stdin when it finishes normally ("q" first). If stdin
ends without "q" while jobs are open, the watcher connects a DEALER with the plug-in's
routing id (free again once the plug-in's socket is gone) and sends `cancel` for each.
(The relay does the same for the relay path, since it owns the socket there.)

Run as: python guard.py ADDRESS ROUTING_ID
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, IO

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cancel_jobs(address: str, routing_id: bytes, job_ids: list[str], wait: float = 5.0) -> list[str]:
    """Send `cancel` for each job from a socket using `routing_id`; return the ids acknowledged."""
    import zmq

    from sfumato_link import wire

    ctx = zmq.Context.instance()
    done: set[str] = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(done) < len(job_ids):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
        sock.connect(address)
        for jid in job_ids:
            if jid not in done:
                sock.send_multipart(wire.encode({"type": "cancel", "id": jid}))
        # the ROUTER refuses our id while the dead peer's connection is still known: retry
        end = min(deadline, time.monotonic() + 0.5)
        while time.monotonic() < end and len(done) < len(job_ids):
            if sock.poll(50):
                try:
                    header = wire.decode(sock.recv_multipart())
                except Exception:
                    continue
                if header.get("id") in job_ids and header.get("type") in ("cancelled", "error", "result"):
                    done.add(header["id"])
        sock.close(linger=0)
    return sorted(done)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    address, routing_id = args[0], args[1].encode()
    open_jobs: list[str] = []
    clean = False
    for raw in sys.stdin:
        line = raw.strip()
        if line == "q":
            clean = True
        elif line.startswith("+"):
            open_jobs.append(line[1:])
        elif line.startswith("-") and line[1:] in open_jobs:
            open_jobs.remove(line[1:])
    if open_jobs and not clean:
        acked = cancel_jobs(address, routing_id, open_jobs)
        print(f"sfumato guard: plug-in gone; cancelled {acked} of {open_jobs}", file=sys.stderr)
    return 0


def detached() -> dict[str, Any]:
    """Popen arguments for a helper process that the editor's signals and console do not reach
    (no window on Windows, a session of its own elsewhere): the guard and the relay."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)
                | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}


class Guard:
    """Parent side: start the watcher, report open/closed jobs, stop it on a clean exit."""

    def __init__(self, address: str, routing_id: bytes, python: str | None = None):
        kwargs = detached()
        log_path = os.environ.get("SFUMATO_GUARD_LOG")  # for debugging: where the watcher reports
        err = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen([python or sys.executable, os.path.abspath(__file__), address,
                                       routing_id.decode()], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=err, **kwargs)
        if log_path:
            err.close()
        self._stdin: IO[bytes] = self._proc.stdin  # type: ignore[assignment]

    def _say(self, line: str) -> None:
        try:
            self._stdin.write((line + "\n").encode())
            self._stdin.flush()
        except OSError:
            pass

    def opened(self, job_id: str) -> None:
        self._say("+" + job_id)

    def closed(self, job_id: str) -> None:
        self._say("-" + job_id)

    def stop(self, clean: bool = True) -> None:
        if clean:
            self._say("q")
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()


if __name__ == "__main__":
    sys.exit(main())
