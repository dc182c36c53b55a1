"""Protocol v1 framing without numpy: msgpack header frame + raw array frames.

An array travels as a descriptor ``{"buf": i, "shape": [h, w, c], "dtype": "u8"|"u16"|"f32"}``
in the header and its bytes in frame i (little-endian, C order). Here an array is an
`Array`: shape, dtype and a bytes-like `data`, which is what editors hand out anyway
(GEGL buffers and Krita's pixelData are bytes). docs/protocol.md is normative.
"""
from __future__ import annotations

from typing import Any, Sequence

try:  # the C extension when the host Python has it; the pure-Python fallback otherwise
    import msgpack as _msgpack

    def packb(obj: Any) -> bytes:
        return _msgpack.packb(obj, use_bin_type=True)

    def unpackb(data: Any) -> Any:
        return _msgpack.unpackb(data, raw=False)

    MSGPACK = "msgpack"
except ImportError:  # pragma: no cover - exercised by the relay test with msgpack hidden
    from .minipack import packb, unpackb  # noqa: F401

    MSGPACK = "minipack"

VERSION = 1
ITEMSIZE = {"u8": 1, "u16": 2, "f32": 4}
CHANNELS = (1, 3, 4)


class Array:
    """An image array on the wire: `shape` (h, w, c), `dtype` ('u8'|'u16'|'f32'), `data` bytes-like.

    `data` is kept as given (bytes, bytearray or memoryview): no copy on either side.
    """

    __slots__ = ("shape", "dtype", "data")

    def __init__(self, shape: Sequence[int], dtype: str, data: Any):
        if dtype not in ITEMSIZE:
            raise ValueError(f"dtype must be one of {', '.join(ITEMSIZE)}, got {dtype!r}")
        shape = tuple(int(s) for s in shape)
        if len(shape) == 2:
            shape = (shape[0], shape[1], 1)
        if len(shape) != 3 or shape[2] not in CHANNELS or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"shape must be (height, width, channels) with channels 1, 3 or 4, got {shape}")
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.nbytes != shape[0] * shape[1] * shape[2] * ITEMSIZE[dtype]:
            raise ValueError(f"{view.nbytes} bytes do not match shape {list(shape)} {dtype} "
                             f"({shape[0] * shape[1] * shape[2] * ITEMSIZE[dtype]} bytes)")
        self.shape, self.dtype, self.data = shape, dtype, data

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def channels(self) -> int:
        return self.shape[2]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2] * ITEMSIZE[self.dtype]

    def tobytes(self) -> bytes:
        return self.data if isinstance(self.data, bytes) else bytes(self.data)

    def __repr__(self) -> str:
        return f"Array(shape={list(self.shape)}, dtype={self.dtype!r})"


def encode(header: dict[str, Any]) -> list[Any]:
    """Header with `Array` values anywhere -> [msgpack header, data, data, ...]; adds v=1."""
    frames: list[Any] = []

    def walk(value: Any) -> Any:
        if isinstance(value, Array):
            frames.append(value.data)
            return {"buf": len(frames), "shape": list(value.shape), "dtype": value.dtype}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    out = {"v": VERSION}
    out.update(walk(header))
    return [packb(out), *frames]


def _is_descriptor(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"buf", "shape", "dtype"}


def decode(frames: Sequence[Any]) -> dict[str, Any]:
    """[header, data, ...] -> header dict whose array descriptors are replaced by `Array`s.

    Raises ValueError for anything malformed (the engine never sends that; a wrong
    address pointing at some other service might).
    """
    if not frames:
        raise ValueError("empty message")
    header = unpackb(_view(frames[0]))
    if not isinstance(header, dict):
        raise ValueError("header is not a map")

    def walk(value: Any) -> Any:
        if _is_descriptor(value):
            i = value["buf"]
            if not isinstance(i, int) or not 1 <= i < len(frames):
                raise ValueError(f"array refers to missing frame {i!r}")
            return Array(value["shape"], value["dtype"], _view(frames[i]))
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(header)


def _view(frame: Any) -> Any:
    """bytes/memoryview as is; a zmq.Frame as its zero-copy buffer."""
    return getattr(frame, "buffer", frame)
