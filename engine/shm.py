"""Same-host shared-memory transport for large arrays (optional protocol v1 extension "shm").

Why: over tcp and ipc the kernel copies every frame into a socket buffer and out again into
a fresh receive buffer, so a 64 MiB image costs several copies plus page faults each way.
A client on the engine's host instead writes its arrays into a POSIX shared-memory segment
(a file in /dev/shm) and names it in the descriptor; the engine reads the arrays in place
and writes result arrays into a region of the same segment that the client granted.

Why segments are reused rather than made per message: fresh tmpfs pages are allocated and
zeroed 4 KiB at a time (shmem rarely gets huge pages) and mapping them costs page-table work
per page, which together cost several times a plain copy. So a client keeps one segment per
connection (its arena) and reuses it; the engine maps it once and keeps it mapped. In steady
state a round trip is two memcpys and a few small messages.

Lifetime (docs/protocol.md is normative): the client creates the segment (O_EXCL, mode
0600, fully allocated); the engine maps it the first time a message names it and then
unlinks the name, so once the engine has seen it nothing is left in /dev/shm whoever dies
first: the two mappings behave like anonymous shared memory. A connection has one attached
segment; naming another detaches the previous one (jobs that use it keep their own
reference). An attachment unused for `idle_s` seconds, or of a vanished client, is dropped.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import secrets
import stat
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .errors import TOO_LARGE
from .protocol import DTYPE_NAMES, SHM_ALIGN, SHM_NAME_RE, SegmentError, wire_array

log = logging.getLogger("sfumato.shm")

SHM_DIR = "/dev/shm"
PAGE = 4096
MIN_BYTES = 1 << 20  # arrays smaller than this travel as frames: the fixed costs would dominate
MIN_ARENA = 8 << 20
DEFAULT_IDLE_S = 120.0
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # map every page now, not one fault at a time


def available(directory: str = SHM_DIR) -> bool:
    """True where POSIX shared memory is a folder we can create files in (Linux /dev/shm)."""
    return os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)


def same_host(address: str) -> bool:
    """True for ipc:// and loopback tcp:// addresses: the peer shares this host's /dev/shm
    (unless it runs in another mount namespace; the client then falls back to frames)."""
    scheme, _, rest = address.partition("://")
    if scheme == "ipc":
        return True
    if scheme != "tcp":
        return False
    host = urlsplit("//" + rest).hostname or ""
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_name(role: str) -> str:
    """A fresh segment name; the pid tag shows who created a leftover segment."""
    return f"sfumato-{role}{os.getpid():x}-{secrets.token_urlsafe(12)}"


def _round(n: int, to: int) -> int:
    return -(-n // to) * to


def open_segment(name: str, need: int, max_bytes: int, directory: str = SHM_DIR) -> tuple[mmap.mmap, int]:
    """Map an existing segment read-write and unlink its name (engine side).

    Refuses (SegmentError) anything but a regular file owned by this process's user, at
    least `need` and at most `max_bytes` long, and fully allocated: a sparse tmpfs file
    could make a write into it fail with SIGBUS when /dev/shm is full."""
    if not SHM_NAME_RE.fullmatch(name):
        raise SegmentError(f"bad segment name {name!r}")
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SegmentError(f"no shared-memory segment {name!r} in {directory} (the engine unlinks a segment "
                           "when it first maps it; a connection can reuse only its current segment)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SegmentError(f"segment {name!r} is a symbolic link") from None
        raise SegmentError(f"cannot open segment {name!r}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SegmentError(f"segment {name!r} is not a regular file")
        if st.st_uid != os.geteuid():
            raise SegmentError(f"segment {name!r} belongs to uid {st.st_uid}; the engine (uid {os.geteuid()}) "
                               "maps only segments of its own user")
        if st.st_size < need:
            raise SegmentError(f"segment {name!r} has {st.st_size} bytes but the descriptor needs {need}")
        if st.st_size > max_bytes:
            raise SegmentError(f"segment {name!r} has {st.st_size} bytes; the engine limit is {max_bytes}",
                               code=TOO_LARGE)
        if st.st_blocks * 512 < st.st_size:
            raise SegmentError(f"segment {name!r} is not fully allocated (posix_fallocate it, or write every "
                               "byte, before naming it)")
        try:
            mm = mmap.mmap(fd, st.st_size, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            raise SegmentError(f"cannot map segment {name!r}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:  # unlink the name only if it still is the file we mapped
        now = os.stat(path, follow_symlinks=False)
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.unlink(path)
    except FileNotFoundError:
        pass
    return mm, st.st_size


# ---------------------------------------------------------------------------------------
# engine side


@dataclass
class Attachment:
    """A client segment the engine has mapped (its name is already unlinked)."""

    name: str
    mm: mmap.mmap
    size: int
    readonly: memoryview  # base of the input arrays: jobs cannot write into their inputs
    last_used: float = field(default_factory=time.monotonic)


class Grant:
    """A region of a client's segment that the engine may fill with one job's result arrays."""

    def __init__(self, att: Attachment, offset: int, nbytes: int):
        self.att, self.offset, self.nbytes = att, offset, nbytes

    def place(self, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Copy each output that fits into the region; return descriptors for those and the
        arrays themselves (sent as frames) for the rest."""
        out: dict[str, Any] = {}
        pos, end = self.offset, self.offset + self.nbytes
        for key, value in outputs.items():
            arr = wire_array(value)
            start = _round(pos, SHM_ALIGN)
            if start + arr.nbytes > end:
                out[key] = value
                continue
            dst = np.frombuffer(self.att.mm, dtype=arr.dtype, count=arr.size, offset=start).reshape(arr.shape)
            np.copyto(dst, arr)
            del dst
            out[key] = {"shm": self.att.name, "offset": start, "shape": list(arr.shape),
                        "dtype": DTYPE_NAMES[arr.dtype.name]}
            pos = start + arr.nbytes
        self.att.last_used = time.monotonic()
        return out


class EngineShm:
    """The engine's shared-memory state: one attached segment per connection."""

    def __init__(self, idle_s: float = DEFAULT_IDLE_S, max_bytes: int = 4 << 30, directory: str = SHM_DIR):
        self.idle_s, self.max_bytes, self.directory = idle_s, max_bytes, directory
        self._attached: dict[bytes, Attachment] = {}
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """The `shm` map of `welcome`."""
        return {"align": SHM_ALIGN, "max_bytes": self.max_bytes, "idle_s": self.idle_s}

    def access(self, client: bytes) -> "_MessageAccess":
        """What decode() uses for one message of `client`."""
        return _MessageAccess(self, client)

    def attached(self, client: bytes) -> Attachment | None:
        with self._lock:
            return self._attached.get(client)

    def names(self) -> list[str]:
        """Names of the segments mapped now, one per connection (diagnostics, tests)."""
        with self._lock:
            return [a.name for a in self._attached.values()]

    def _segment(self, client: bytes, name: str, need: int) -> Attachment:
        with self._lock:
            att = self._attached.get(client)
        if att is None or att.name != name:
            mm, size = open_segment(name, need, self.max_bytes, self.directory)
            att = Attachment(name, mm, size, memoryview(mm).toreadonly())
            with self._lock:
                self._attached[client] = att  # the previous one is detached; its jobs keep their views
            log.debug("attached %s (%d bytes) for %s", name, size, client.hex())
        elif need > att.size:
            raise SegmentError(f"segment {name!r} has {att.size} bytes but the descriptor needs {need}")
        att.last_used = time.monotonic()
        return att

    def expire(self, now: float | None = None) -> int:
        """Drop attachments unused for idle_s; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [c for c, a in self._attached.items() if now - a.last_used > self.idle_s]
            for client in old:
                del self._attached[client]
        return len(old)

    def drop_client(self, client: bytes) -> None:
        with self._lock:
            self._attached.pop(client, None)

    def close(self) -> None:
        with self._lock:
            self._attached.clear()


class _MessageAccess:
    """ShmAccess for one message: resolves names for one connection and remembers the input
    ranges, so that a submit's `shm_out` cannot overlap its own inputs."""

    def __init__(self, owner: EngineShm, client: bytes):
        self.owner, self.client = owner, client
        self.reads: list[tuple[str, int, int]] = []

    def read(self, name: str, offset: int, nbytes: int) -> tuple[memoryview, int]:
        att = self.owner._segment(self.client, name, offset + nbytes)
        self.reads.append((name, offset, offset + nbytes))
        return att.readonly, offset

    def region(self, name: str, offset: int, nbytes: int) -> Grant:
        att = self.owner._segment(self.client, name, offset + nbytes)
        for other, start, end in self.reads:
            if other == name and start < offset + nbytes and offset < end:
                raise SegmentError(f"the region [{offset}, {offset + nbytes}) overlaps an input array "
                                   f"[{start}, {end}) of the same segment", key="offset")
        return Grant(att, offset, nbytes)


# ---------------------------------------------------------------------------------------
# client side


class Arena:
    """One client-created segment, mapped read-write, with a first-fit block allocator."""

    def __init__(self, size: int, directory: str = SHM_DIR):
        self.size = _round(size, PAGE)
        self.name = new_name("c")
        self.path = os.path.join(directory, self.name)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)  # ENOSPC now, never SIGBUS later
            self.mm = mmap.mmap(fd, self.size, flags=mmap.MAP_SHARED | _POPULATE,
                                prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            os.unlink(self.path)
            raise
        os.close(fd)
        self.linked = True
        self.last_used = time.monotonic()
        self._free: list[tuple[int, int]] = [(0, self.size)]
        self._lock = threading.Lock()

    def unlink(self) -> None:
        """Remove the name (the engine normally did already); the mapping stays valid."""
        if self.linked:
            self.linked = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def alloc(self, nbytes: int) -> int | None:
        """Offset of a free page-aligned block of at least nbytes, or None."""
        n = _round(max(nbytes, 1), PAGE)
        with self._lock:
            for i, (start, length) in enumerate(self._free):
                if length >= n:
                    self._free[i:i + 1] = [(start + n, length - n)] if length > n else []
                    return start
        return None

    def free(self, offset: int, nbytes: int) -> None:
        n = _round(max(nbytes, 1), PAGE)
        with self._lock:
            blocks = sorted(self._free + [(offset, n)])
            merged: list[tuple[int, int]] = []
            for start, length in blocks:
                if merged and merged[-1][0] + merged[-1][1] == start:
                    merged[-1] = (merged[-1][0], merged[-1][1] + length)
                else:
                    merged.append((start, length))
            self._free = merged

    def write(self, offset: int, arr: np.ndarray) -> None:
        dst = np.frombuffer(self.mm, dtype=arr.dtype, count=arr.size, offset=offset).reshape(arr.shape)
        np.copyto(dst, arr)

    @property
    def free_bytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._free)


class Lease:
    """One job's blocks: its input arrays (free once the job is over) and the result region
    (free once the job is over and every result array viewing it has been garbage collected)."""

    def __init__(self, arena: Arena, inputs: list[tuple[int, int]], grant: tuple[int, int] | None):
        self.arena, self.inputs = arena, inputs
        self.grant = grant
        self.block: Any = None
        if grant is not None:
            off, n = grant
            # The result arrays' base. It must be the buffer's exporter: numpy keeps the
            # exporter alive, not a memoryview it was handed (it makes its own), so a ctypes
            # array is used; its finalizer frees the region when the last view of it is gone.
            self.block = (ctypes.c_char * n).from_buffer(arena.mm, off)
            weakref.finalize(self.block, arena.free, off, n)

    def release(self) -> None:
        """The job is over: the engine will not touch these blocks again."""
        for off, n in self.inputs:
            self.arena.free(off, n)
        self.inputs = []
        self.block = None  # result arrays still hold it; its finalizer frees the region


@dataclass
class Packed:
    """A submit's shared-memory part: descriptors, the result grant and its lease."""

    descriptors: dict[str, dict]
    grant: dict | None
    lease: Lease
    fresh: bool  # the arena was created for this submit


def output_estimate(arrays: dict[str, np.ndarray], params: dict) -> int:
    """Bytes to set aside for a job's results: as much as its inputs (ops return arrays of
    their input's size and dtype), times variants; width x height for generated images; a
    result that does not fit the region simply comes back as a frame."""
    total = sum(a.nbytes for a in arrays.values())
    width, height = params.get("width"), params.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        itemsize = max((a.dtype.itemsize for a in arrays.values()), default=1)
        total = max(total, width * height * 4 * itemsize)
    task, scale = params.get("task"), params.get("scale")
    if isinstance(task, str) and "upscale" in task and isinstance(scale, int) and scale > 1:
        total *= scale * scale
    variants = params.get("variants")
    return total * (variants if isinstance(variants, int) and variants > 1 else 1)


class ClientShm:
    """The client's shared-memory state: one arena, and a lease per job in flight."""

    def __init__(self, info: dict[str, Any], directory: str = SHM_DIR, min_bytes: int = MIN_BYTES):
        self.max_bytes = int(info.get("max_bytes") or 0)
        self.idle_s = float(info.get("idle_s") or DEFAULT_IDLE_S)
        self.directory, self.min_bytes = directory, min_bytes
        self.arena: Arena | None = None
        self.leases: dict[str, Lease] = {}
        self.used = 0  # submits that went through shared memory (tests, diagnostics)
        self._lock = threading.Lock()

    def pack(self, arrays: dict[str, np.ndarray], out_bytes: int) -> Packed | None:
        """Put large arrays (and a region for results) into the arena; None if shared memory
        would not help or cannot be had (full /dev/shm, over max_bytes)."""
        big = {k: wire_array(a) for k, a in arrays.items() if a.nbytes >= self.min_bytes}
        if out_bytes < self.min_bytes:
            out_bytes = 0
        if not big and not out_bytes:
            return None
        sizes = [a.nbytes for a in big.values()] + ([out_bytes] if out_bytes else [])
        need = sum(_round(n, PAGE) for n in sizes)
        if need > self.max_bytes:
            return None
        with self._lock:
            fresh = False
            arena = self.arena
            if arena is not None and time.monotonic() - arena.last_used > self.idle_s / 2:
                arena.unlink()
                arena = None  # the engine may have dropped it by now: start a new one
            blocks = _alloc_all(arena, sizes) if arena is not None else None
            if blocks is None:
                size = min(max(MIN_ARENA, 1 << (need - 1).bit_length()), self.max_bytes)
                try:
                    arena = Arena(size, self.directory)
                except OSError as exc:
                    log.warning("no shared memory for this job (%s); sending frames", exc)
                    return None
                fresh = True
                blocks = _alloc_all(arena, sizes)
                assert blocks is not None
            self.arena = arena
            arena.last_used = time.monotonic()
        descriptors = {}
        for (key, arr), off in zip(big.items(), blocks):
            arena.write(off, arr)
            descriptors[key] = {"shm": arena.name, "offset": off, "shape": list(arr.shape),
                                "dtype": DTYPE_NAMES[arr.dtype.name]}
        grant = None
        inputs = [(off, n) for off, n in zip(blocks, sizes)]
        if out_bytes:
            grant = {"shm": arena.name, "offset": blocks[-1], "nbytes": out_bytes}
            inputs = inputs[:-1]
        lease = Lease(arena, inputs, (blocks[-1], out_bytes) if out_bytes else None)
        self.used += 1
        return Packed(descriptors, grant, lease, fresh)

    def retire(self, arena: Arena | None = None) -> None:
        """Stop using an arena (the engine lost it, or the client closes); live result arrays
        keep their mapping."""
        with self._lock:
            if arena is None or arena is self.arena:
                old, self.arena = self.arena, None
            else:
                old = arena
        if old is not None:
            old.unlink()

    def read(self, name: str, offset: int, nbytes: int) -> tuple[Any, int]:
        """ShmAccess.read for results: only inside a region this client granted."""
        with self._lock:
            leases = list(self.leases.values())
        for lease in leases:
            if lease.block is None or lease.grant is None or lease.arena.name != name:
                continue
            start, length = lease.grant
            if start <= offset and offset + nbytes <= start + length:
                return lease.block, offset - start
        raise SegmentError(f"{name!r} at offset {offset} is not inside a result region this client granted")

    def region(self, name: str, offset: int, nbytes: int) -> Any:
        raise SegmentError("an engine message cannot grant a region")

    def add(self, rid: str, lease: Lease) -> None:
        with self._lock:
            self.leases[rid] = lease

    def finish(self, rid: str) -> None:
        """The job's final message (or its refusal) arrived."""
        with self._lock:
            lease = self.leases.pop(rid, None)
        if lease is not None:
            lease.release()

    def close(self) -> None:
        with self._lock:
            leases, self.leases = list(self.leases.values()), {}
        for lease in leases:
            lease.release()
        self.retire()


def _alloc_all(arena: Arena, sizes: list[int]) -> list[int] | None:
    """Offsets for every size, or None (and nothing kept) if one does not fit."""
    got: list[int] = []
    for n in sizes:
        off = arena.alloc(n)
        if off is None:
            for o, m in zip(got, sizes):
                arena.free(o, m)
            return None
        got.append(off)
    return got
