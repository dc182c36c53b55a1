"""What an action works on when nothing is selected: for inpaint and remove, the transparent pixels.

Enlarging the canvas (or erasing) and running Inpaint without a selection outpaints: the
mask is the layer's transparency (255 where fully transparent, soft where partly), and the
crop is its bounding box plus context, exactly as if that area had been selected.
"""
from __future__ import annotations

from .actions import Action
from .errors import BAD_SELECTION, LinkError
from .geometry import Box
from .pixels import mask_array, mask_bbox, mask_is_empty, mask_is_full, transparency_mask
from .wire import Array


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


SOURCE_CONTEXT_MAX = 4096  # the engine's largest `context`


def source_crop(crop: Box, source: bytes | bytearray | memoryview | None, area: Box) -> Box:
    """The crop grown to hold Remove's source region (`source` read over `area`, image
    coordinates): texture can only be copied from what is sent. Unchanged without a usable source."""
    if source is None or mask_is_empty(source) or mask_is_full(source):
        return crop
    bbox = mask_bbox(source, area.w, area.h)
    return crop if bbox is None else crop.union(bbox.translate(area.x, area.y)).intersect(area)


def source_params(params: dict, box: Box) -> dict:
    """With a source mask the engine must keep the whole crop as context (its own context
    would cut the source region away)."""
    return dict(params, context=min(SOURCE_CONTEXT_MAX, max(box.w, box.h)))


def source_array(mask: bytes | bytearray | memoryview | None, width: int, height: int) -> Array | None:
    """Remove's optional source mask (255 = texture may be copied from here) as an input.

    None when there is none, or when it is empty or full: both mean "the whole image", which
    is what the engine does without one (an empty channel is more likely unset than meant).
    """
    if mask is None or mask_is_empty(mask) or mask_is_full(mask):
        return None
    return mask_array(mask, width, height)
