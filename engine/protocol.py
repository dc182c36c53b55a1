"""Wire protocol v1: encode, decode and validate multipart messages (no sockets, no torch).

Frame 0 is a msgpack map (the header); frames 1..n are raw array buffers that the header
describes as ``{"buf": i, "shape": [h, w, c], "dtype": "u8"|"u16"|"f32"}``. Arrays are
decoded with ``numpy.frombuffer`` (no copy) and encoded as the arrays themselves, so a
socket can send them with ``copy=False``. docs/protocol.md is the normative description;
this module is its executable form, used by the engine and the Python client alike.

The optional same-host extension ("shm") lets a descriptor name a shared-memory segment
instead of a frame: ``{"shm": NAME, "offset": O, "shape": [...], "dtype": ...}``. This module
checks such descriptors and asks a `ShmAccess` (engine/shm.py, which owns the files and
mappings) for the bytes, so the wire rules stay here and the file handling stays there.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol, Sequence

import msgpack
import numpy as np

from . import MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from .errors import BAD_MESSAGE, BAD_PARAM, TOO_LARGE, EngineError

DTYPES: dict[str, np.dtype] = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2"), "f32": np.dtype("<f4")}
DTYPE_NAMES: dict[str, str] = {dt.name: name for name, dt in DTYPES.items()}  # numpy name -> wire name
CHANNELS = (1, 3, 4)
MAX_ID_LENGTH = 128
MAX_HEADER_DEPTH = 32  # nesting of maps and lists in a header; deeper is refused before anything recurses

# Shared-memory extension: segment names (files directly in /dev/shm; no path separators, no
# dots, so a name can never leave that folder) and the alignment of every offset.
SHM_NAME_RE = re.compile(r"sfumato-[A-Za-z0-9_-]{8,64}")  # always used with fullmatch
SHM_ALIGN = 64

# Capabilities: named additions to v1 (docs/protocol.md, "Evolution"). The engine lists the ones
# it has in `welcome.capabilities`; a client may list its own in `hello.capabilities`, and
# either side ignores names it does not know.
#   rules: op schemas carry `rules`, and the parameter types `multi` and `model`
#   shm: the same-host shared-memory extension (listed only where the engine offers it)
#   keys: clients authenticate with CURVE keys and jobs belong to the key (engine served with keys)
#   queue: a waiting job gets `progress` with stage "queued" and `ahead` (sent only to clients
#     that list it in hello: to others a job's first progress means it left the queue)
CAPABILITIES = ("rules", "shm", "keys", "queue")
QUEUED_STAGE = "queued"
MAX_CAPABILITIES = 64

CLIENT_TYPES = ("hello", "submit", "cancel", "status", "models", "ping")
ENGINE_TYPES = ("welcome", "accepted", "progress", "result", "error", "cancelled", "pong", "status", "models")

# Header fields each client message may carry (besides v, type, id), and which are required.
_CLIENT_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "hello": ({"client", "capabilities"}, set()),
    "submit": ({"op", "inputs", "params", "shm_out"}, {"op", "inputs"}),
    "cancel": (set(), set()),
    "status": (set(), set()),
    "models": ({"refresh"}, set()),
    "ping": (set(), set()),
}
_ID_REQUIRED = {"submit", "cancel"}
# Where engine messages carry arrays: a map of arrays, or a single array.
_ARRAY_MAPS = {"submit": "inputs", "result": "outputs"}
_ARRAY_SINGLE = {"progress": "preview"}


@dataclass(frozen=True)
class Limits:
    """What one engine accepts; reported in `welcome` so clients can check before sending."""

    max_pixels: int = 8192 * 8192  # per array (h * w)
    max_side: int = 16384  # per dimension; bigger is an absurd size
    max_steps: int = 200  # sampler steps per job
    max_variants: int = 8
    max_queue_per_client: int = 8  # queued + running jobs of one connection
    max_message_bytes: int = MAX_MESSAGE_BYTES  # ZMQ MAXMSGSIZE, per frame
    max_header_bytes: int = 1 << 20
    max_frames: int = 16  # array frames in one message

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class SegmentError(ValueError):
    """A shared-memory segment a descriptor names cannot be used; becomes an `error` reply.

    `key` is the descriptor field to blame (``shm``, ``offset`` or ``nbytes``)."""

    def __init__(self, message: str, key: str = "shm", code: str = BAD_MESSAGE):
        super().__init__(message)
        self.key, self.code = key, code


class ShmAccess(Protocol):
    """What the decoder needs from one side's shared-memory state (engine/shm.py).

    `read` returns a buffer and the offset in it where the `nbytes` of an array start (the
    buffer object becomes the array's base, so it must keep the mapping alive); `region`
    returns an opaque handle for a writable region (`shm_out` of a submit). Both raise
    SegmentError."""

    def read(self, name: str, offset: int, nbytes: int) -> tuple[Any, int]: ...

    def region(self, name: str, offset: int, nbytes: int) -> Any: ...


# ---------------------------------------------------------------------------------------
# encoding


def array_dtype_name(arr: np.ndarray) -> str:
    """The wire name of an array's dtype, or TypeError for dtypes the protocol lacks."""
    name = DTYPE_NAMES.get(arr.dtype.name)
    if name is None:
        raise TypeError(f"arrays must be uint8, uint16 or float32, got {arr.dtype}")
    return name


def wire_array(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous little-endian [h, w, c] view (copying only if the layout demands it)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in CHANNELS:
        raise ValueError(f"arrays must be [h, w, c] with c in {CHANNELS}, got shape {arr.shape}")
    name = array_dtype_name(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(DTYPES[name])
    return np.ascontiguousarray(arr)


def encode(header: dict[str, Any]) -> list:
    """Header (arrays allowed anywhere as values) -> [msgpack bytes, buffer, buffer, ...].

    Each numpy array found in the header is replaced by its descriptor and appended as a
    frame; the frames are the arrays themselves, so sending them with copy=False is
    zero-copy.
    """
    buffers: list[np.ndarray] = []

    def walk(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arr = wire_array(value)
            buffers.append(arr)
            return {"buf": len(buffers), "shape": list(arr.shape), "dtype": array_dtype_name(arr)}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    out = {"v": PROTOCOL_VERSION}
    out.update(walk(header))
    return [msgpack.packb(out, use_bin_type=True), *buffers]


def plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples in metadata to msgpack-friendly values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------
# decoding


def _frame_buffer(frame: Any) -> memoryview:
    """A memoryview of a frame: bytes, bytearray, memoryview or a zmq.Frame (its .buffer)."""
    buf = getattr(frame, "buffer", frame)
    return buf if isinstance(buf, memoryview) else memoryview(buf)


def _header_id(header: Any) -> str | None:
    """The request id if it is usable for a reply (even when the rest of the header is bad)."""
    if isinstance(header, dict):
        rid = header.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_LENGTH:
            return rid
    return None


def _fail(code: str, message: str, field: str | None, rid: str | None) -> EngineError:
    err = EngineError(code, message, field)
    err.request_id = rid  # type: ignore[attr-defined]
    return err


def request_id_of(exc: BaseException) -> str | None:
    """The id of the request a decode error belongs to, when it could be read."""
    return getattr(exc, "request_id", None)


def decode_array(desc: Any, frames: Sequence[Any], where: str, limits: Limits,
                 used: set[int] | None = None, rid: str | None = None, shm: ShmAccess | None = None,
                 from_engine: bool = False) -> np.ndarray:
    """Validate one descriptor against its frame (or shared-memory segment) and return a
    zero-copy array view."""
    if not isinstance(desc, dict):
        raise _fail(BAD_MESSAGE, f"{where} must be an array descriptor map", where, rid)
    if "shm" in desc:
        return _decode_shm_array(desc, where, limits, rid, shm, from_engine)
    extra = set(desc) - {"buf", "shape", "dtype"}
    if extra:
        raise _fail(BAD_MESSAGE, f"{where} has unknown keys: {', '.join(sorted(map(str, extra)))}", where, rid)
    buf = desc.get("buf")
    if isinstance(buf, bool) or not isinstance(buf, int):
        raise _fail(BAD_MESSAGE, f"{where}.buf must be a frame index (integer)", f"{where}.buf", rid)
    n_buffers = len(frames) - 1
    if buf < 1 or buf > n_buffers:
        raise _fail(BAD_MESSAGE, f"{where}.buf refers to frame {buf} but the message has "
                    f"{n_buffers} array frame(s) (numbered from 1)", f"{where}.buf", rid)
    if used is not None:
        if buf in used:
            raise _fail(BAD_MESSAGE, f"{where}.buf: frame {buf} is used by two arrays", f"{where}.buf", rid)
        used.add(buf)
    (h, w, c), dt = _shape_dtype(desc, where, limits, rid)
    dtype = desc["dtype"]
    view = _frame_buffer(frames[buf])
    expected = h * w * c * dt.itemsize
    if view.nbytes != expected:
        raise _fail(BAD_MESSAGE, f"{where}: frame {buf} has {view.nbytes} bytes but shape {[h, w, c]} "
                    f"{dtype} needs {expected}", f"{where}.buf", rid)
    arr = np.frombuffer(view, dtype=dt).reshape(h, w, c)
    if dtype == "f32" and not np.isfinite(arr).all():
        raise _fail(BAD_PARAM, f"{where} contains NaN or infinite values", where, rid)
    return arr


def _shape_dtype(desc: dict, where: str, limits: Limits, rid: str | None) -> tuple[tuple[int, int, int], np.dtype]:
    """The checked shape and numpy dtype of a descriptor (frame or shared memory)."""
    shape, dtype = desc.get("shape"), desc.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _fail(BAD_MESSAGE, f"{where}.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}",
                    f"{where}.dtype", rid)
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or any(isinstance(s, bool) or not isinstance(s, int) for s in shape)):
        raise _fail(BAD_MESSAGE, f"{where}.shape must be [height, width, channels] integers, got {shape!r}",
                    f"{where}.shape", rid)
    h, w, c = shape
    if h < 1 or w < 1:
        raise _fail(BAD_MESSAGE, f"{where}.shape must have positive height and width, got {h}x{w}",
                    f"{where}.shape", rid)
    if c not in CHANNELS:
        raise _fail(BAD_MESSAGE, f"{where}.shape channels must be 1, 3 or 4, got {c}", f"{where}.shape", rid)
    if h > limits.max_side or w > limits.max_side:
        raise _fail(TOO_LARGE, f"{where} is {w}x{h}; the engine limit is {limits.max_side} pixels per side",
                    f"{where}.shape", rid)
    if h * w > limits.max_pixels:
        raise _fail(TOO_LARGE, f"{where} has {h * w} pixels; the engine limit is {limits.max_pixels}",
                    f"{where}.shape", rid)
    return (h, w, c), DTYPES[dtype]


def _shm_name(value: Any, field: str, rid: str | None) -> str:
    if not isinstance(value, str) or not SHM_NAME_RE.fullmatch(value):
        raise _fail(BAD_MESSAGE, f"{field} must be a segment name matching {SHM_NAME_RE.pattern} "
                    f"(a file directly in /dev/shm), got {value!r}", field, rid)
    return value


def _shm_int(value: Any, field: str, rid: str | None, align: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value % align:
        what = f"a multiple of {align}" if align > 1 else "an integer"
        raise _fail(BAD_MESSAGE, f"{field} must be {what} >= {minimum}, got {value!r}", field, rid)
    return value


def _shm_off(where: str, rid: str | None, from_engine: bool) -> EngineError:
    side = ("this client did not offer shared memory for results" if from_engine else
            "this engine does not offer shared memory (its welcome has no shm); send the array as a frame")
    return _fail(BAD_MESSAGE, f"{where}: {side}", f"{where}.shm", rid)


def _decode_shm_array(desc: dict, where: str, limits: Limits, rid: str | None, shm: ShmAccess | None,
                      from_engine: bool) -> np.ndarray:
    """An array that lives in a shared-memory segment (same-host extension)."""
    if "buf" in desc:
        raise _fail(BAD_MESSAGE, f"{where} has both buf and shm; an array is either a frame or a "
                    "shared-memory segment", f"{where}.shm", rid)
    extra = set(desc) - {"shm", "offset", "shape", "dtype"}
    if extra:
        raise _fail(BAD_MESSAGE, f"{where} has unknown keys: {', '.join(sorted(map(str, extra)))}", where, rid)
    if shm is None:
        raise _shm_off(where, rid, from_engine)
    name = _shm_name(desc["shm"], f"{where}.shm", rid)
    offset = _shm_int(desc.get("offset", 0), f"{where}.offset", rid, SHM_ALIGN, 0)
    (h, w, c), dt = _shape_dtype(desc, where, limits, rid)
    count = h * w * c
    try:
        buffer, start = shm.read(name, offset, count * dt.itemsize)
    except SegmentError as exc:
        raise _fail(exc.code, f"{where}: {exc}", f"{where}.{exc.key}", rid) from None
    arr = np.frombuffer(buffer, dtype=dt, count=count, offset=start).reshape(h, w, c)
    if desc["dtype"] == "f32" and not np.isfinite(arr).all():
        raise _fail(BAD_PARAM, f"{where} contains NaN or infinite values", where, rid)
    return arr


def _decode_shm_out(value: Any, shm: ShmAccess | None, rid: str | None) -> Any:
    """`shm_out` of a submit: a region of a segment the engine may write result arrays into."""
    if not isinstance(value, dict) or set(value) != {"shm", "offset", "nbytes"}:
        raise _fail(BAD_MESSAGE, "shm_out must be a map with exactly shm, offset and nbytes", "shm_out", rid)
    if shm is None:
        raise _fail(BAD_MESSAGE, "shm_out: this engine does not offer shared memory (its welcome has no shm)",
                    "shm_out.shm", rid)
    name = _shm_name(value["shm"], "shm_out.shm", rid)
    offset = _shm_int(value["offset"], "shm_out.offset", rid, SHM_ALIGN, 0)
    nbytes = _shm_int(value["nbytes"], "shm_out.nbytes", rid, 1, 1)
    try:
        return shm.region(name, offset, nbytes)
    except SegmentError as exc:
        raise _fail(exc.code, f"shm_out: {exc}", f"shm_out.{exc.key}", rid) from None


def _check_id(header: dict, kind: str, rid: str | None) -> None:
    if "id" not in header:
        if kind in _ID_REQUIRED:
            raise _fail(BAD_MESSAGE, f"{kind} needs an id (a string chosen by the client)", "id", None)
        return
    value = header["id"]
    if not isinstance(value, str):
        raise _fail(BAD_MESSAGE, f"id must be a string, got {type(value).__name__}", "id", None)
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise _fail(BAD_MESSAGE, f"id must be 1 to {MAX_ID_LENGTH} characters long", "id", None)


def _unpack_header(frames: Sequence[Any], limits: Limits) -> dict:
    if len(frames) == 0:
        raise _fail(BAD_MESSAGE, "empty message: frame 0 must be a msgpack header", None, None)
    raw = _frame_buffer(frames[0])
    if raw.nbytes > limits.max_header_bytes:
        raise _fail(TOO_LARGE, f"header is {raw.nbytes} bytes; the limit is {limits.max_header_bytes}", None, None)
    if len(frames) - 1 > limits.max_frames:
        raise _fail(TOO_LARGE, f"message has {len(frames) - 1} array frames; the limit is {limits.max_frames}",
                    None, _safe_id(raw))
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # any msgpack failure is the sender's fault
        raise _fail(BAD_MESSAGE, f"frame 0 is not a valid msgpack header: {type(exc).__name__}: {exc}",
                    None, None) from None
    if not isinstance(header, dict):
        raise _fail(BAD_MESSAGE, f"frame 0 must be a msgpack map, got {type(header).__name__}", None, None)
    if _depth_exceeds(header, MAX_HEADER_DEPTH):
        raise _fail(BAD_MESSAGE, f"header nests maps and lists deeper than {MAX_HEADER_DEPTH} levels", None,
                    _header_id(header))
    return header


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if maps and lists nest deeper than `limit`; iterative, so no depth can overflow it."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _safe_id(raw: memoryview) -> str | None:
    try:
        return _header_id(msgpack.unpackb(raw, raw=False))
    except Exception:
        return None


def decode(frames: Sequence[Any], limits: Limits | None = None, *, from_engine: bool = False,
           shm: ShmAccess | None = None) -> dict[str, Any]:
    """Decode and validate one message (without the ROUTER identity frame).

    Returns the header with array descriptors replaced by numpy views of the frames (or of
    shared memory, through `shm`; without it a shared-memory descriptor is refused).
    A submit's `shm_out` becomes the handle `shm.region` returned. Raises EngineError
    with a precise code, message and field; the request id, when readable, is available
    through `request_id_of(exc)`.
    Client messages (from_engine=False) are checked strictly: known type, known fields,
    required fields, every frame referenced exactly once.
    """
    limits = limits or Limits()
    header = _unpack_header(frames, limits)
    rid = _header_id(header)
    if "v" not in header:
        raise _fail(BAD_MESSAGE, "header lacks the protocol version field v", "v", rid)
    if type(header["v"]) is not int or header["v"] != PROTOCOL_VERSION:  # the integer 1: not 1.0, not true
        raise _fail(BAD_MESSAGE, f"unsupported protocol version {header['v']!r}; this side speaks v{PROTOCOL_VERSION}",
                    "v", rid)
    kind = header.get("type")
    allowed = ENGINE_TYPES if from_engine else CLIENT_TYPES
    if not isinstance(kind, str) or kind not in allowed:
        raise _fail(BAD_MESSAGE, f"unknown message type {kind!r}; expected one of {', '.join(allowed)}",
                    "type", rid)
    _check_id(header, kind, rid)
    if not from_engine:
        known, required = _CLIENT_FIELDS[kind]
        extra = set(header) - known - {"v", "type", "id"}
        if extra:
            name = sorted(map(str, extra))[0]
            raise _fail(BAD_MESSAGE, f"{kind} has unknown field(s): {', '.join(sorted(map(str, extra)))}", name, rid)
        missing = required - set(header)
        if missing:
            name = sorted(missing)[0]
            raise _fail(BAD_MESSAGE, f"{kind} lacks required field(s): {', '.join(sorted(missing))}", name, rid)
        _check_client_fields(header, kind, rid)
    used: set[int] = set()
    if kind in _ARRAY_MAPS and _ARRAY_MAPS[kind] in header:
        key = _ARRAY_MAPS[kind]
        descs = header[key]
        if not isinstance(descs, dict):
            raise _fail(BAD_MESSAGE, f"{key} must be a map of name -> array descriptor", key, rid)
        header[key] = {name: decode_array(d, frames, f"{key}.{name}", limits, used, rid, shm, from_engine)
                       for name, d in descs.items()}
    elif kind in _ARRAY_SINGLE and header.get(_ARRAY_SINGLE[kind]) is not None:
        key = _ARRAY_SINGLE[kind]
        header[key] = decode_array(header[key], frames, key, limits, used, rid, shm, from_engine)
    if kind == "submit" and not from_engine and "shm_out" in header:
        header["shm_out"] = _decode_shm_out(header["shm_out"], shm, rid)
    unused = sorted(set(range(1, len(frames))) - used)
    if unused:
        raise _fail(BAD_MESSAGE, f"frame(s) {', '.join(map(str, unused))} are not referenced by the header "
                    f"(extra frames)", None, rid)
    return header


def _check_client_fields(header: dict, kind: str, rid: str | None) -> None:
    if kind == "submit":
        if not isinstance(header["op"], str) or not header["op"]:
            raise _fail(BAD_MESSAGE, "op must be a non-empty string", "op", rid)
        if "params" in header and not isinstance(header["params"], dict):
            raise _fail(BAD_PARAM, "params must be a map of name -> value", "params", rid)
    elif kind == "hello":
        if "client" in header and not isinstance(header["client"], str):
            raise _fail(BAD_MESSAGE, "client must be a string", "client", rid)
        caps = header.get("capabilities", [])
        if (not isinstance(caps, list) or len(caps) > MAX_CAPABILITIES
                or not all(isinstance(c, str) and 0 < len(c) <= MAX_ID_LENGTH for c in caps)):
            raise _fail(BAD_MESSAGE, f"capabilities must be a list of at most {MAX_CAPABILITIES} names "
                        f"(strings of 1 to {MAX_ID_LENGTH} characters)", "capabilities", rid)
    elif kind == "models":
        if "refresh" in header and not isinstance(header["refresh"], bool):
            raise _fail(BAD_MESSAGE, "refresh must be true or false", "refresh", rid)
