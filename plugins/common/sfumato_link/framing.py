"""Multipart messages over a byte stream (the relay's stdin/stdout).

One message = u32 frame count, then for each frame a u64 length and the bytes; all
little-endian. engine/relay.py implements the same few lines on its side (the engine does
not import plug-in code), and tests/test_thin_client.py checks the two agree.
"""
from __future__ import annotations

import struct
from typing import Any, BinaryIO, Sequence

MAX_FRAMES = 64


def write_message(stream: BinaryIO, frames: Sequence[Any]) -> None:
    """Write one message and flush."""
    stream.write(struct.pack("<I", len(frames)))
    for frame in frames:
        view = frame if isinstance(frame, memoryview) else memoryview(frame)
        stream.write(struct.pack("<Q", view.nbytes))
        stream.write(view.cast("B") if view.ndim != 1 or view.format != "B" else view)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_message(stream: BinaryIO) -> list[bytes] | None:
    """Read one message; None at end of stream (also when it ends mid-message)."""
    head = _read_exact(stream, 4)
    if head is None:
        return None
    (count,) = struct.unpack("<I", head)
    if count > MAX_FRAMES:
        raise ValueError(f"relay stream out of sync: {count} frames announced")
    frames = []
    for _ in range(count):
        size = _read_exact(stream, 8)
        if size is None:
            return None
        (n,) = struct.unpack("<Q", size)
        data = _read_exact(stream, n) if n else b""
        if data is None:
            return None
        frames.append(data)
    return frames
