"""Krita pixel bytes <-> protocol arrays, and small 8-bit thumbnails for the panel (no numpy, no Qt).

Krita hands out integer RGBA layers in BGRA order (U8 and U16); the wire is RGBA. Results
may come back with 3 channels or another depth than the document's, so everything that goes
into a layer passes through `to_layer_bytes`.
"""
from __future__ import annotations

from array import array

from .bootstrap import link

# colorDepth() -> (wire dtype, Krita stores blue first)
KRITA_DEPTHS = {"U8": ("u8", True), "U16": ("u16", True)}


def layer_format(color_model: str, color_depth: str) -> str:
    """The wire dtype for a document, or LinkError(unsupported) saying how to convert it."""
    model, depth = (color_model or "").upper(), (color_depth or "").upper()
    if model != "RGBA":
        raise link.LinkError("unsupported", f"Sfumato works on RGB images; this document is {color_model or 'unknown'}/"
                             f"{color_depth or '?'}. Convert it with Image > Convert Image Color Space... to "
                             f"RGB/Alpha, 8-bit or 16-bit integer, then run again.")
    if depth not in KRITA_DEPTHS:
        raise link.LinkError("unsupported", f"Sfumato supports 8-bit and 16-bit integer RGB images; this one is "
                             f"{color_depth}. Convert it with Image > Convert Image Color Space... to 8-bit or "
                             f"16-bit integer/channel, then run again.")
    return KRITA_DEPTHS[depth][0]


def layer_to_rgba(data: bytes, dtype: str) -> bytes:
    """Krita's BGRA bytes -> protocol RGBA bytes (same depth)."""
    return link.bgra_to_rgba(data, dtype, 4)


def change_depth(data: bytes, src: str, dst: str) -> bytes:
    """Convert sample values between u8, u16 and f32 (0..1), keeping the layout."""
    if src == dst:
        return bytes(data)
    if src == "u8":
        floats = [v / 255.0 for v in bytes(data)]
    elif src == "u16":
        if dst == "u8":
            return bytes(data)[1::2]  # high byte: 65535 -> 255 exactly, and fast
        floats = [v / 65535.0 for v in link.typed_values(data, "u16")]
    else:
        floats = [0.0 if not v > 0.0 else 1.0 if v >= 1.0 else v for v in link.typed_values(data, "f32")]
    if dst == "u8":
        if src == "u8":
            return bytes(data)
        return bytes(int(v * 255.0 + 0.5) for v in floats)
    if dst == "u16":
        if src == "u8":
            return link.wire_bytes(array("H", (v * 257 for v in bytes(data))))
        return link.wire_bytes(array("H", (int(v * 65535.0 + 0.5) for v in floats)))
    return link.wire_bytes(array("f", floats))


def to_rgba(data: bytes, channels: int, dtype: str) -> bytes:
    """1, 3 or 4 channels -> 4 (opaque alpha added, grey spread to RGB)."""
    if channels == 4:
        return bytes(data)
    size = link.wire.ITEMSIZE[dtype]
    raw = bytes(data)
    n = len(raw) // (channels * size)
    out = bytearray(n * 4 * size)
    opaque = {"u8": b"\xff", "u16": b"\xff\xff", "f32": link.wire_bytes(array("f", [1.0]))}[dtype]
    for b in range(size):
        for c in range(3):
            src = c if channels == 3 else 0
            out[c * size + b::4 * size] = raw[src * size + b::channels * size]
        out[3 * size + b::4 * size] = opaque[b:b + 1] * n
    return bytes(out)


def to_layer_bytes(arr: "link.Array", dtype: str) -> bytes:
    """An engine output array -> bytes for `Node.setPixelData` in a document of `dtype` (BGRA)."""
    data = to_rgba(arr.tobytes(), arr.channels, arr.dtype)
    data = change_depth(data, arr.dtype, dtype)
    return link.rgba_to_bgra(data, dtype, 4)


def downsample(arr: "link.Array", max_side: int) -> "link.Array":
    """Nearest-neighbour shrink so that the longer side is at most `max_side` (for thumbnails)."""
    h, w, c = arr.shape
    step = max(1, -(-max(h, w) // max_side))
    if step == 1:
        return arr
    pixel = c * link.wire.ITEMSIZE[arr.dtype]
    raw = memoryview(arr.tobytes())
    rows = []
    for y in range(0, h, step):
        row = bytes(raw[y * w * pixel:(y + 1) * w * pixel])
        picked = bytearray()
        for x in range(0, w, step):
            picked += row[x * pixel:(x + 1) * pixel]
        rows.append(bytes(picked))
    nw = len(range(0, w, step))
    return link.Array((len(rows), nw, c), arr.dtype, b"".join(rows))


def to_rgba8(arr: "link.Array", bgra: bool = False) -> bytes:
    """Any wire array -> RGBA 8-bit bytes (what QImage.Format_RGBA8888 shows); `bgra` if it came from Krita."""
    data = to_rgba(arr.tobytes(), arr.channels, arr.dtype)
    data = change_depth(data, arr.dtype, "u8")
    return link.bgra_to_rgba(data, "u8", 4) if bgra else data


def thumbnail(arr: "link.Array", max_side: int = 160, bgra: bool = False) -> tuple[int, int, bytes]:
    """(width, height, RGBA8 bytes) of a small version of `arr`."""
    small = downsample(arr, max_side)
    return small.width, small.height, to_rgba8(small, bgra)
