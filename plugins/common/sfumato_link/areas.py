"""What an action works on when nothing is selected: for inpaint and remove, the transparent pixels.

Enlarging the canvas (or erasing) and running Inpaint without a selection outpaints: the
mask is the layer's transparency (255 where fully transparent, soft where partly), and the
crop is its bounding box plus context, exactly as if that area had been selected.
"""
from __future__ import annotations

from .actions import Action
from .errors import BAD_SELECTION, LinkError
from .geometry import Box
from .pixels import mask_bbox, transparency_mask


def transparent_area(data: bytes | bytearray | memoryview, layer: Box, dtype: str = "u8",
                     channels: int = 4) -> tuple[Box | None, bytes]:
    """(bounds of the not-opaque pixels in image coordinates or None, the mask over `layer`)."""
    mask = transparency_mask(data, dtype, channels)
    bbox = mask_bbox(mask, layer.w, layer.h)
    return (bbox.translate(layer.x, layer.y) if bbox is not None else None), mask


def needs_selection(action: Action) -> LinkError:
    """The error for an action that needs a selection and found neither one nor transparent pixels."""
    verb = "remove" if action.key == "remove" else "fill"
    return LinkError(BAD_SELECTION, f"{action.label} needs a selection: select the area to {verb} (for example "
                     f"with the free or rectangle selection tool), or make the pixels to {verb} transparent, "
                     f"then run again.")
