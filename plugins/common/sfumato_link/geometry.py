"""Where a selection becomes a crop: bounds, context padding, clamping, layer offsets.

All boxes are in image (canvas) coordinates unless a name says `local`; x2/y2 are
exclusive, as GIMP's `Gimp.Selection.bounds` and Krita's selection give them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import BAD_SELECTION, LinkError


@dataclass(frozen=True)
class Box:
    """A pixel rectangle: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_corners(cls, x1: int, y1: int, x2: int, y2: int) -> "Box":
        return cls(int(x1), int(y1), max(0, int(x2) - int(x1)), max(0, int(y2) - int(y1)))

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    def intersect(self, other: "Box") -> "Box":
        return Box.from_corners(max(self.x, other.x), max(self.y, other.y),
                                min(self.x2, other.x2), min(self.y2, other.y2))

    def union(self, other: "Box") -> "Box":
        """The smallest box holding both."""
        return Box.from_corners(min(self.x, other.x), min(self.y, other.y), max(self.x2, other.x2),
                                max(self.y2, other.y2))

    def pad(self, n: int) -> "Box":
        return Box(self.x - n, self.y - n, self.w + 2 * n, self.h + 2 * n)

    def translate(self, dx: int, dy: int) -> "Box":
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def relative_to(self, origin: "Box") -> "Box":
        """This box in the coordinates of `origin` (e.g. layer-local from image coordinates)."""
        return self.translate(-origin.x, -origin.y)

    def contains(self, other: "Box") -> bool:
        return self.x <= other.x and self.y <= other.y and other.x2 <= self.x2 and other.y2 <= self.y2


def default_context(selection: Box, fraction: float = 0.25, minimum: int = 16, maximum: int = 256) -> int:
    """Context pixels around a selection: a quarter of its larger side, within [minimum, maximum].

    Enough surroundings for the model to match texture and light, without sending the canvas.
    """
    return int(max(minimum, min(maximum, round(fraction * max(selection.w, selection.h)))))


def crop_box(selection: Box | None, layer: Box, context: int | None = None) -> Box:
    """The box to send: selection ∩ layer, padded by `context`, clamped to the layer.

    `selection` None (or empty) means the whole layer. Raises LinkError(bad_selection)
    when the selection lies entirely off the layer.
    """
    if layer.empty:
        raise LinkError(BAD_SELECTION, "The active layer is empty (zero size).")
    if selection is None or selection.empty:
        return layer
    inside = selection.intersect(layer)
    if inside.empty:
        raise LinkError(BAD_SELECTION, "The selection does not overlap the active layer: "
                        "select an area on the layer, or select the layer that lies under the selection.")
    n = default_context(inside) if context is None else max(0, int(context))
    return inside.pad(n).intersect(layer)


def layer_box(offset_x: int, offset_y: int, width: int, height: int) -> Box:
    """A layer's box in the image from its offsets and size."""
    return Box(int(offset_x), int(offset_y), int(width), int(height))


def fit_within(w: int, h: int, max_pixels: int) -> float:
    """Scale factor (<= 1) that brings w*h under max_pixels (for checking a `welcome` limit)."""
    if w * h <= max_pixels:
        return 1.0
    return (max_pixels / float(w * h)) ** 0.5
