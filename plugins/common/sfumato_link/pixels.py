"""Byte layouts editors hand out, turned into what the engine expects (pure Python, no numpy).

- precision: GIMP precisions and Krita channel depths -> wire dtypes u8 / u16 / f32;
- channel order: Krita's BGRA <-> the protocol's RGBA, at any depth;
- masks: a selection read as 8-bit (or 16-bit / float) bytes -> a soft u8 mask, its
  bounding box, and whether it selects anything at all.
Slicing of `bytearray`/`array` objects does the work in C, so a 4096x4096 layer takes
well under a second.
"""
from __future__ import annotations

import sys
from array import array

from .errors import UNSUPPORTED, LinkError
from .geometry import Box
from .wire import ITEMSIZE, Array

_ARRAY_CODE = {"u16": "H", "f32": "f"}


def typed_values(data: bytes | bytearray | memoryview, dtype: str) -> array:
    """u16 or f32 wire bytes (little-endian) as an array of numbers in this machine's order."""
    values = array(_ARRAY_CODE[dtype])
    values.frombytes(bytes(data))
    if sys.byteorder != "little":  # the wire is little-endian
        values.byteswap()
    return values


def wire_bytes(values: array) -> bytes:
    """An array of numbers as wire bytes (little-endian): the inverse of `typed_values`."""
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def swap_red_blue(data: bytes | bytearray | memoryview, dtype: str = "u8", channels: int = 4) -> bytes:
    """BGRA <-> RGBA (or BGR <-> RGB): swap channel 0 and 2 of every pixel, at any depth."""
    if channels not in (3, 4):
        raise ValueError("red/blue swap needs 3 or 4 channels")
    if dtype == "u8":
        out = bytearray(data)
        out[0::channels], out[2::channels] = out[2::channels], out[0::channels]
        return bytes(out)
    values = typed_values(data, dtype)
    values[0::channels], values[2::channels] = values[2::channels], values[0::channels]
    return wire_bytes(values)


bgra_to_rgba = swap_red_blue
rgba_to_bgra = swap_red_blue


def mask_to_u8(data: bytes | bytearray | memoryview, dtype: str = "u8") -> bytes:
    """A one-channel selection in u8, u16 or f32 (0..1) -> soft u8 mask, 255 = regenerate."""
    if dtype == "u8":
        return bytes(data)
    if dtype == "u16":
        raw = bytes(data)
        return raw[1::2]  # the high byte of each little-endian value: 65535 -> 255, 0 -> 0
    if dtype == "f32":
        values = typed_values(data, "f32")
        return bytes(0 if not v > 0.0 else 255 if v >= 1.0 else int(v * 255.0 + 0.5) for v in values)
    raise ValueError(f"unknown mask dtype {dtype!r}")


_INVERT = bytes(range(255, -1, -1))  # 255 - value, for bytes.translate


def transparency_mask(data: bytes | bytearray | memoryview, dtype: str = "u8", channels: int = 4) -> bytes:
    """255 - alpha as a u8 mask, from RGBA or BGRA pixels at any depth (alpha is the last channel)."""
    if channels != 4:
        raise ValueError("a transparency mask needs 4 channels")
    raw = bytes(data)
    if dtype == "u8":
        alpha = raw[3::4]
    elif dtype == "u16":
        alpha = raw[7::8]  # the high byte of each little-endian alpha: 65535 -> 255
    elif dtype == "f32":
        alpha = mask_to_u8(wire_bytes(typed_values(raw, "f32")[3::4]), "f32")
    else:
        raise ValueError(f"unknown dtype {dtype!r}")
    return alpha.translate(_INVERT)


def opacity_mask(data: bytes | bytearray | memoryview, dtype: str = "u8", channels: int = 4) -> bytes:
    """Alpha as a u8 mask (255 = opaque), from RGBA or BGRA pixels at any depth."""
    return transparency_mask(data, dtype, channels).translate(_INVERT)


def full_mask(width: int, height: int, value: int = 255) -> bytes:
    return bytes((value,)) * (width * height)


def mask_is_empty(mask: bytes | bytearray | memoryview) -> bool:
    return not bytes(mask).strip(b"\0")


def mask_is_full(mask: bytes | bytearray | memoryview) -> bool:
    raw = bytes(mask)
    return raw.count(255) == len(raw)


def mask_bbox(mask: bytes | bytearray | memoryview, width: int, height: int) -> Box | None:
    """Bounding box of the non-zero pixels of a w*h u8 mask (local coordinates), None if empty."""
    raw = bytes(mask)
    if len(raw) != width * height:
        raise ValueError(f"mask has {len(raw)} bytes, expected {width}x{height}")
    top = bottom = None
    left, right = width, 0
    for row in range(height):
        line = raw[row * width:(row + 1) * width]
        stripped = line.lstrip(b"\0")
        if not stripped:
            continue
        if top is None:
            top = row
        bottom = row
        left = min(left, width - len(stripped))
        right = max(right, len(line.rstrip(b"\0")))
    if top is None or bottom is None:
        return None
    return Box(left, top, right - left, bottom - top + 1)


_KEEP = bytes([0] + [255] * 255)  # mask byte -> 0 where unselected, 255 where (partly) selected


def clear_outside_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview,
                       dtype: str = "u8", channels: int = 4) -> bytes:
    """Make every pixel whose mask is 0 fully transparent (all channels 0), at any depth.

    A result layer then covers only what the engine was allowed to change, so the image
    outside the selection stays exactly as it was even over semi-transparent layers.
    """
    keep = bytes(mask).translate(_KEEP)
    width = ITEMSIZE[dtype] * channels  # bytes per pixel
    raw = bytes(data)
    if len(raw) != len(keep) * width:
        raise ValueError(f"{len(raw)} bytes of pixels do not match a {len(keep)}-pixel mask")
    spread = bytearray(len(raw))
    for i in range(width):
        spread[i::width] = keep
    kept = int.from_bytes(raw, "little") & int.from_bytes(spread, "little")
    return kept.to_bytes(len(raw), "little")


def clear_unchanged_outside(data: bytes | bytearray | memoryview, source: bytes | bytearray | memoryview,
                            mask: bytes | bytearray | memoryview, dtype: str = "u8", channels: int = 4) -> bytes:
    """Like clear_outside_mask, but keep unselected pixels the engine changed (Remove grows the
    selection by a few pixels to take the object's fringe): a pixel is cleared when it is
    outside the mask and identical to `source`."""
    width = ITEMSIZE[dtype] * channels
    raw, src, m = bytes(data), bytes(source), bytes(mask)
    if len(raw) != len(src) or len(raw) != len(m) * width:
        raise ValueError(f"{len(raw)} bytes of pixels do not match {len(src)} source bytes and a {len(m)}-pixel mask")
    out = bytearray(raw)
    zero = bytes(width)
    for i, value in enumerate(m):
        if value == 0:
            a = i * width
            if raw[a:a + width] == src[a:a + width]:
                out[a:a + width] = zero
    return bytes(out)


def crop_bytes(data: bytes | bytearray | memoryview, width: int, box: Box, bytes_per_pixel: int) -> bytes:
    """Cut `box` (local coordinates) out of a row-major buffer `width` pixels wide."""
    raw = memoryview(data).cast("B")
    stride = width * bytes_per_pixel
    start, n = box.x * bytes_per_pixel, box.w * bytes_per_pixel
    return b"".join(raw[(box.y + r) * stride + start:(box.y + r) * stride + start + n] for r in range(box.h))


# --- precision ----------------------------------------------------------------------------

def dtype_for_gimp_precision(nick: str) -> str:
    """A `Gimp.Precision` value nick (e.g. 'u8-non-linear', 'u16-perceptual', 'half-linear') -> wire dtype.

    u8 and u16 travel as such; u32, half, float and double travel as f32 (no precision lost
    for half/float; u32 is rare and f32 keeps 24 bits of it).
    """
    base = nick.lower().replace("gimp_precision_", "").split("-", 1)[0].split("_", 1)[0]
    if base == "u8":
        return "u8"
    if base == "u16":
        return "u16"
    if base in ("u32", "half", "float", "double"):
        return "f32"
    raise LinkError(UNSUPPORTED, f"Unsupported image precision {nick!r}.")


def gimp_babl_format(dtype: str, channels: int = 4) -> str:
    """The babl format to read/write perceptual (gamma) pixels as the model sees them."""
    kind = {"u8": "u8", "u16": "u16", "f32": "float"}[dtype]
    if channels == 4:
        return f"R'G'B'A {kind}"
    if channels == 3:
        return f"R'G'B' {kind}"
    if channels == 1:
        return f"Y {kind}"  # selections and masks: linear coverage, not a grey level
    raise ValueError("channels must be 1, 3 or 4")


def dtype_for_krita_depth(depth: str) -> str:
    """Krita's `colorDepth()` ('U8', 'U16', 'F16', 'F32') -> wire dtype; F16 is not supported yet."""
    table = {"U8": "u8", "U16": "u16", "F32": "f32"}
    if depth.upper() not in table:
        raise LinkError(UNSUPPORTED, f"Colour depth {depth} is not supported: convert the image to 8-bit, "
                        f"16-bit integer or 32-bit float (Image > Convert Image Color Space).")
    return table[depth.upper()]


def image_array(data: bytes | bytearray | memoryview, width: int, height: int, dtype: str,
                channels: int = 4) -> Array:
    return Array((height, width, channels), dtype, data)


def mask_array(mask: bytes | bytearray | memoryview, width: int, height: int) -> Array:
    return Array((height, width, 1), "u8", mask)


def output_scale(crop: Box, out: Array) -> float:
    """How much bigger the engine's output is than what was sent (1 for most ops, 2/4 for upscale)."""
    sx, sy = out.width / float(crop.w), out.height / float(crop.h)
    if abs(sx - sy) > 0.01:
        raise LinkError(UNSUPPORTED, f"The engine returned {out.width}x{out.height} for a {crop.w}x{crop.h} "
                        f"crop; the aspect ratio changed.")
    return sx


def bytes_per_pixel(dtype: str, channels: int = 4) -> int:
    return ITEMSIZE[dtype] * channels
