"""A small pure-Python msgpack encoder/decoder, used only when the `msgpack` package is missing.

Editors ship their own Python (GIMP on Windows is an MSYS2 build, Krita bundles one), where
installing `msgpack` is not always possible. The protocol header is a small map, so speed
does not matter here; array data never goes through this module (it travels in raw frames).
Covers the types the protocol uses: nil, bool, int (64-bit), float, str, bin, array, map.
"""
from __future__ import annotations

import struct
from typing import Any

__all__ = ["packb", "unpackb", "PackError"]


class PackError(ValueError):
    """The data is not msgpack this module understands."""


def packb(obj: Any) -> bytes:
    """Encode `obj` (None, bool, int, float, str, bytes, list/tuple, dict) to msgpack bytes."""
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack(obj: Any, out: bytearray) -> None:
    if obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif isinstance(obj, int):
        _pack_int(obj, out)
    elif isinstance(obj, float):
        out.append(0xCB)
        out += struct.pack(">d", obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        n = len(data)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 0x100:
            out += bytes((0xD9, n))
        elif n < 0x10000:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += data
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        n = len(data)
        if n < 0x100:
            out += bytes((0xC4, n))
        elif n < 0x10000:
            out += b"\xc5" + struct.pack(">H", n)
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += data
    elif isinstance(obj, (list, tuple)):
        n = len(obj)
        if n < 16:
            out.append(0x90 | n)
        elif n < 0x10000:
            out += b"\xdc" + struct.pack(">H", n)
        else:
            out += b"\xdd" + struct.pack(">I", n)
        for item in obj:
            _pack(item, out)
    elif isinstance(obj, dict):
        n = len(obj)
        if n < 16:
            out.append(0x80 | n)
        elif n < 0x10000:
            out += b"\xde" + struct.pack(">H", n)
        else:
            out += b"\xdf" + struct.pack(">I", n)
        for key, value in obj.items():
            _pack(key, out)
            _pack(value, out)
    else:
        raise PackError(f"cannot encode {type(obj).__name__} as msgpack")


def _pack_int(n: int, out: bytearray) -> None:
    if 0 <= n < 0x80:
        out.append(n)
    elif -32 <= n < 0:
        out.append(n & 0xFF)
    elif 0 <= n < 0x100:
        out += bytes((0xCC, n))
    elif 0 <= n < 0x10000:
        out += b"\xcd" + struct.pack(">H", n)
    elif 0 <= n < 0x100000000:
        out += b"\xce" + struct.pack(">I", n)
    elif 0 <= n < 0x10000000000000000:
        out += b"\xcf" + struct.pack(">Q", n)
    elif -0x80 <= n < 0:
        out += b"\xd0" + struct.pack(">b", n)
    elif -0x8000 <= n < 0:
        out += b"\xd1" + struct.pack(">h", n)
    elif -0x80000000 <= n < 0:
        out += b"\xd2" + struct.pack(">i", n)
    elif -0x8000000000000000 <= n < 0:
        out += b"\xd3" + struct.pack(">q", n)
    else:
        raise PackError(f"integer {n} does not fit in 64 bits")


# fixed-size formats: first byte -> (struct format, size)
_FIXED = {
    0xCA: (">f", 4), 0xCB: (">d", 8),
    0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
    0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
}
_LEN = {1: ">B", 2: ">H", 4: ">I"}


def unpackb(data: bytes | bytearray | memoryview) -> Any:
    """Decode one msgpack object that spans all of `data` (strings as str, bin as bytes)."""
    buf = bytes(data)
    try:
        obj, pos = _unpack(buf, 0)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise PackError(f"truncated or invalid msgpack data: {exc}") from None
    if pos != len(buf):
        raise PackError(f"{len(buf) - pos} extra bytes after the msgpack object")
    return obj


def _length(buf: bytes, pos: int, size: int) -> tuple[int, int]:
    (n,) = struct.unpack_from(_LEN[size], buf, pos)
    return n, pos + size


def _take(buf: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(buf):
        raise IndexError("data ends early")
    return buf[pos:pos + n], pos + n


def _unpack(buf: bytes, pos: int) -> tuple[Any, int]:
    b = buf[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0x80 <= b <= 0x8F:
        return _unpack_map(buf, pos, b & 0x0F)
    if 0x90 <= b <= 0x9F:
        return _unpack_array(buf, pos, b & 0x0F)
    if 0xA0 <= b <= 0xBF:
        raw, pos = _take(buf, pos, b & 0x1F)
        return raw.decode("utf-8"), pos
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in _FIXED:
        fmt, size = _FIXED[b]
        (value,) = struct.unpack_from(fmt, buf, pos)
        return value, pos + size
    if b in (0xC4, 0xC5, 0xC6):  # bin 8/16/32
        n, pos = _length(buf, pos, {0xC4: 1, 0xC5: 2, 0xC6: 4}[b])
        return _take(buf, pos, n)
    if b in (0xD9, 0xDA, 0xDB):  # str 8/16/32
        n, pos = _length(buf, pos, {0xD9: 1, 0xDA: 2, 0xDB: 4}[b])
        raw, pos = _take(buf, pos, n)
        return raw.decode("utf-8"), pos
    if b in (0xDC, 0xDD):
        n, pos = _length(buf, pos, 2 if b == 0xDC else 4)
        return _unpack_array(buf, pos, n)
    if b in (0xDE, 0xDF):
        n, pos = _length(buf, pos, 2 if b == 0xDE else 4)
        return _unpack_map(buf, pos, n)
    raise PackError(f"unsupported msgpack type byte 0x{b:02x}")


def _unpack_array(buf: bytes, pos: int, n: int) -> tuple[list, int]:
    items = []
    for _ in range(n):
        item, pos = _unpack(buf, pos)
        items.append(item)
    return items, pos


def _unpack_map(buf: bytes, pos: int, n: int) -> tuple[dict, int]:
    result = {}
    for _ in range(n):
        key, pos = _unpack(buf, pos)
        value, pos = _unpack(buf, pos)
        if isinstance(key, list):
            raise PackError("map keys must not be arrays")
        result[key] = value
    return result, pos
