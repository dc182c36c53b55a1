"""Extend canvas: how much canvas each side gets, the padded pixels and the mask over the new strip.

Both editors enlarge the canvas only once the engine's fill has arrived (nothing changes when
a job fails or is cancelled): the request is built here from the layer's pixels over the old
canvas, padded with transparent pixels, with a mask that is 255 exactly on the added area.
The engine outpaints what the mask covers; the result layer covers only the new strip.
"""
from __future__ import annotations

from dataclasses import dataclass

from .geometry import Box
from .pixels import bytes_per_pixel

# side choices offered to the artist -> the sides that grow
SIDES: dict[str, tuple[str, ...]] = {
    "right": ("right",), "left": ("left",), "top": ("top",), "bottom": ("bottom",),
    "left-right": ("left", "right"), "top-bottom": ("top", "bottom"),
    "all": ("left", "right", "top", "bottom"),
}
SIDE_LABELS = {"right": "Right", "left": "Left", "top": "Top", "bottom": "Bottom",
               "left-right": "Left and right", "top-bottom": "Top and bottom", "all": "All sides"}
UNITS = {"percent": "% of the width or height", "px": "pixels"}
MAX_FACTOR = 4  # a side grows by at most this many times the image's width (or height)


@dataclass(frozen=True)
class Extension:
    """Pixels added on each side of a `width` x `height` canvas."""

    width: int
    height: int
    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    @property
    def new_width(self) -> int:
        return self.width + self.left + self.right

    @property
    def new_height(self) -> int:
        return self.height + self.top + self.bottom

    @property
    def old_box(self) -> Box:
        """Where the old canvas lies in the new one."""
        return Box(self.left, self.top, self.width, self.height)

    @property
    def canvas(self) -> Box:
        return Box(0, 0, self.new_width, self.new_height)

    @property
    def added_bbox(self) -> Box:
        """The bounding box of the added strips in the new canvas."""
        w, h = self.new_width, self.new_height
        across, down = self.left or self.right, self.top or self.bottom
        x1 = 0 if self.left or down else w - self.right
        x2 = w if self.right or down else self.left
        y1 = 0 if self.top or across else h - self.bottom
        y2 = h if self.bottom or across else self.top
        return Box.from_corners(x1, y1, x2, y2)


def plan_extension(width: int, height: int, sides: str, amount: float, unit: str = "percent") -> Extension:
    """The extension for `sides` by `amount` (pixels, or percent of the width for left/right
    and of the height for top/bottom). Raises ValueError with the sentence to show."""
    if sides not in SIDES:
        raise ValueError(f"Sides: must be one of {', '.join(SIDES)}")
    if unit not in UNITS:
        raise ValueError(f"Unit: must be one of {', '.join(UNITS)}")
    if width <= 0 or height <= 0:
        raise ValueError("The image is empty (zero size).")

    def grow(base: int) -> int:
        n = round(base * float(amount) / 100.0) if unit == "percent" else round(float(amount))
        if n < 1:
            raise ValueError("Amount: must add at least one pixel")
        if n > MAX_FACTOR * base:
            raise ValueError(f"Amount: at most {MAX_FACTOR} times the image's size on a side")
        return int(n)

    grown = SIDES[sides]
    across, down = (grow(width) if {"left", "right"} & set(grown) else 0), \
        (grow(height) if {"top", "bottom"} & set(grown) else 0)
    return Extension(width, height, left=across if "left" in grown else 0, right=across if "right" in grown else 0,
                     top=down if "top" in grown else 0, bottom=down if "bottom" in grown else 0)


def request_box(ext: Extension, context: int) -> Box:
    """What to send: the added strips plus `context` pixels of the old canvas, in new-canvas coordinates."""
    return ext.added_bbox.pad(max(0, int(context))).intersect(ext.canvas)


def padded_pixels(data: bytes | bytearray | memoryview, ext: Extension, box: Box, dtype: str,
                  channels: int = 4) -> bytes:
    """The old canvas's pixels (`width` x `height`, row-major) placed in the new canvas and cut to
    `box`; the added area is transparent (all channels 0)."""
    bpp = bytes_per_pixel(dtype, channels)
    raw = memoryview(data).cast("B")
    if len(raw) != ext.width * ext.height * bpp:
        raise ValueError(f"{len(raw)} bytes do not hold a {ext.width}x{ext.height} image")
    old = ext.old_box
    inside = old.intersect(box)
    out = bytearray(box.w * box.h * bpp)
    if inside.empty:
        return bytes(out)
    n = inside.w * bpp
    for y in range(inside.y, inside.y2):
        src = ((y - old.y) * ext.width + (inside.x - old.x)) * bpp
        dst = ((y - box.y) * box.w + (inside.x - box.x)) * bpp
        out[dst:dst + n] = raw[src:src + n]
    return bytes(out)


def added_mask(ext: Extension, box: Box) -> bytes:
    """A u8 mask over `box`: 255 on the added canvas, 0 on the old one."""
    old = ext.old_box.intersect(box)
    row_full = b"\xff" * box.w
    if old.empty:
        return row_full * box.h
    row_old = b"\xff" * (old.x - box.x) + b"\0" * old.w + b"\xff" * (box.x2 - old.x2)
    return b"".join(row_old if old.y <= y < old.y2 else row_full for y in range(box.y, box.y2))
