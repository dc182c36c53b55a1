"""GIMP's pattern file format (.pat): write a repeat tile so that it appears among GIMP's patterns.

A .pat file is a big-endian header of five 32-bit words and a magic: header size (24 plus the
name's bytes plus a NUL), version 1, width, height, bytes per pixel (1 grey, 2 grey+alpha,
3 RGB, 4 RGBA), "GPAT"; then the name in UTF-8 ending in NUL; then the pixels, 8 bits per
sample, row by row. Pure Python so that both the plug-in and the tests use the same code;
`decode` reads a file back (the tests check what was written with it).
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

from .pixels import typed_values
from .wire import ITEMSIZE, Array

MAGIC = b"GPAT"
VERSION = 1
HEADER = struct.Struct(">5I4s")  # header size, version, width, height, bytes per pixel, magic
MAX_SIDE = 10000  # GIMP refuses patterns larger than this (a sanity check when reading)


@dataclass(frozen=True)
class Pattern:
    name: str
    width: int
    height: int
    bpp: int
    data: bytes  # width * height * bpp bytes, row-major


def encode(name: str, width: int, height: int, data: bytes, bpp: int) -> bytes:
    """The bytes of a .pat file for `data` (8-bit samples, `bpp` per pixel)."""
    if bpp not in (1, 2, 3, 4):
        raise ValueError(f"a GIMP pattern has 1 to 4 bytes per pixel, not {bpp}")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"a GIMP pattern is 1 to {MAX_SIDE} pixels a side, not {width}x{height}")
    if len(data) != width * height * bpp:
        raise ValueError(f"{len(data)} bytes do not make a {width}x{height} pattern of {bpp} bytes per pixel")
    label = name.encode("utf-8").replace(b"\0", b"") + b"\0"
    return HEADER.pack(HEADER.size + len(label), VERSION, width, height, bpp, MAGIC) + label + bytes(data)


def decode(blob: bytes) -> Pattern:
    """Read a .pat file's bytes (ValueError when they are not one)."""
    if len(blob) < HEADER.size:
        raise ValueError("too short for a GIMP pattern")
    size, version, width, height, bpp, magic = HEADER.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"not a GIMP pattern (magic {magic!r}, version {version})")
    if not (HEADER.size < size <= len(blob)) or bpp not in (1, 2, 3, 4):
        raise ValueError(f"a broken GIMP pattern header (size {size}, {bpp} bytes per pixel)")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"a GIMP pattern of {width}x{height} pixels")
    name = blob[HEADER.size:size].split(b"\0", 1)[0].decode("utf-8", "replace")
    data = blob[size:size + width * height * bpp]
    if len(data) != width * height * bpp:
        raise ValueError("the GIMP pattern's pixels are cut short")
    return Pattern(name, width, height, bpp, bytes(data))


def samples_u8(arr: Array) -> bytes:
    """An array's samples as 8-bit values (u16 and f32 rounded), same layout."""
    if arr.dtype == "u8":
        return arr.tobytes()
    values = typed_values(arr.tobytes(), arr.dtype)
    if arr.dtype == "u16":
        return bytes((v * 255 + 32767) // 65535 for v in values)
    return bytes(0 if not v > 0 else 255 if v >= 1 else int(v * 255 + 0.5) for v in values)


def from_array(name: str, arr: Array) -> bytes:
    """A .pat file for an engine output (any depth, 1-4 channels); an opaque RGBA tile is stored as RGB."""
    if arr.dtype not in ITEMSIZE:
        raise ValueError(f"unknown sample type {arr.dtype}")
    data, bpp = samples_u8(arr), arr.channels
    if bpp == 4 and all(a == 255 for a in data[3::4]):
        rgb = bytearray(len(data) // 4 * 3)
        for c in range(3):
            rgb[c::3] = data[c::4]
        data, bpp = bytes(rgb), 3
    return encode(name, arr.width, arr.height, data, bpp)


def file_name(name: str) -> str:
    """A safe file name for pattern `name`: 'sfumato-pattern-half-drop-seed-5.pat'."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "pattern"
    return f"{slug}.pat"


def save(folder: str, name: str, arr: Array) -> str:
    """Write `arr` as pattern `name` into `folder` (created if missing); returns the file's path.

    An existing file of the same name is replaced (the same tile made again)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, file_name(name))
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(from_array(name, arr))
    os.replace(tmp, path)
    return path
