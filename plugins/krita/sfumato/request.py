"""From "this layer, this selection, this button" to one engine request (host-independent).

The Krita side supplies two readers, for layer pixels and selection coverage in a canvas
box; this module decides which box to send (selection bounds plus context, clamped to the
canvas; the whole canvas without a selection), builds the arrays and checks that the
request makes sense before anything is sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .bootstrap import link
from .convert import layer_to_rgba

Box = link.Box
PixelReader = Callable[[Box], bytes]  # BGRA bytes of the layer inside a canvas box
MaskReader = Callable[[Box], bytes]  # 8-bit coverage of the selection inside a canvas box


@dataclass
class Plan:
    """Everything needed to submit one job and to place its result."""

    ui: link.Action
    params: dict[str, Any]
    box: Box  # canvas box the result covers (crop, or the generated area)
    dtype: str  # the document's wire dtype; results are converted back to it
    inputs: dict[str, Any] = field(default_factory=dict)  # name -> link.Array
    selection: Box | None = None  # the selection's bounds, if any
    extension: Any = None  # Extend canvas: the link.extend.Extension to apply before placing the result
    clip: bytes | None = None  # a u8 mask over `box`: result pixels where it is 0 are cleared
    wrap_tile: bool = False  # Pattern repeat: open the tile as a new image in wrap-around mode

    @property
    def engine_op(self) -> str:
        return self.ui.engine_op


def plan_job(ui: link.Action, params: dict[str, Any], canvas: Box, dtype: str, read_pixels: PixelReader,
             selection: Box | None = None, read_mask: MaskReader | None = None,
             style: Any = None, max_pixels: int | None = None, read_source: MaskReader | None = None) -> Plan:
    """Build the request for `ui` on a layer; raises LinkError with a sentence for the panel."""
    if selection is not None and selection.empty:
        selection = None
    if selection is not None and selection.intersect(canvas).empty:
        raise link.LinkError("bad_selection", "The selection lies outside the canvas: select an area on the image.")
    if ui.selection == "required" and selection is None:
        # no selection: fill the layer's transparent pixels (outpainting), if it has any
        selection, alpha_mask = link.transparent_area(read_pixels(canvas), canvas, dtype)
        if selection is None:
            raise link.needs_selection(ui)
        read_mask = _canvas_mask_reader(alpha_mask, canvas)
    if ui.selection == "size":
        return _plan_generate(ui, params, canvas, dtype, selection, max_pixels)
    ctx = link.context_pixels(ui, selection.intersect(canvas)) if selection is not None else 0
    box = link.crop_box(selection, canvas, ctx)
    source = read_source(canvas) if ui.source_input and read_source is not None else None
    box = link.source_crop(box, source, canvas)
    _check_size(box, max_pixels)
    image = link.Array((box.h, box.w, 4), dtype, layer_to_rgba(read_pixels(box), dtype))
    inputs: dict[str, Any] = {"image": image}
    if selection is not None and read_mask is not None:
        mask = _selection_mask(read_mask, box)
        if ui.selection == "required" or not link.mask_is_full(mask):
            inputs["mask"] = link.mask_array(mask, box.w, box.h)
    if source is not None:
        source_in = link.source_array(link.crop_bytes(source, canvas.w, box.relative_to(canvas), 1), box.w, box.h)
        if source_in is not None:
            inputs["source"] = source_in
            params = link.source_params(params, box)
    if ui.style_input:
        if style is not None:
            inputs["style"] = style
        elif not params.get("style_model"):
            raise link.LinkError("bad_param", "Stylize needs a style: choose a reference image file or a style "
                                 "model in the panel.", "params.style_model")
    return Plan(ui, dict(params), box, dtype, inputs, selection)


def plan_extend(ui: link.Action, params: dict[str, Any], own: dict[str, Any], canvas: Box, dtype: str,
                read_pixels: PixelReader, max_pixels: int | None = None) -> Plan:
    """Extend canvas: the layer over the old canvas, padded on the chosen sides, with a mask over
    the added strips. The canvas grows only when the result is placed."""
    try:
        ext = link.extend.plan_extension(canvas.w, canvas.h, own["sides"], own["amount"], own["unit"])
    except ValueError as exc:
        raise link.LinkError("bad_param", str(exc)) from None
    box = link.extend.request_box(ext, link.context_pixels(ui, ext.added_bbox))
    _check_size(box, max_pixels)
    rgba = layer_to_rgba(read_pixels(canvas), dtype)
    mask = link.extend.added_mask(ext, box)
    inputs = {"image": link.Array((box.h, box.w, 4), dtype, link.extend.padded_pixels(rgba, ext, box, dtype)),
              "mask": link.mask_array(mask, box.w, box.h)}
    return Plan(ui, dict(params), box, dtype, inputs, None, extension=ext, clip=mask)


def plan_crop(ui: link.Action, params: dict[str, Any], canvas: Box, dtype: str, read_pixels: PixelReader,
              selection: Box | None = None, read_mask: MaskReader | None = None, max_pixels: int | None = None,
              extra: dict[str, Any] | None = None) -> Plan:
    """Pattern repeat ("motif") and Recolor ("crop"): the selection's bounding box without context, or
    the whole layer. A motif loses its unselected pixels (made transparent: the engine takes the
    opaque ones); a recolour is cleared outside the selection when it comes back. `extra`: the
    action's inputs read from other layers (ground, reference)."""
    if selection is not None and selection.empty:
        selection = None
    box = selection.intersect(canvas) if selection is not None else canvas
    if box.empty:
        raise link.LinkError("bad_selection", "The selection lies outside the canvas: select an area on the image.")
    _check_size(box, max_pixels)
    rgba = layer_to_rgba(read_pixels(box), dtype)
    mask = None
    if selection is not None and read_mask is not None:
        mask = _selection_mask(read_mask, box)
        if link.mask_is_full(mask):
            mask = None
    clip = None
    if mask is not None and ui.selection == "motif":
        rgba = link.clear_outside_mask(rgba, mask, dtype, 4)
    elif mask is not None:
        clip = mask
    inputs: dict[str, Any] = {"image": link.Array((box.h, box.w, 4), dtype, rgba)}
    inputs.update({name: arr for name, arr in (extra or {}).items() if arr is not None and name in ui.extra_inputs})
    return Plan(ui, dict(params), box, dtype, inputs, selection, clip=clip)


def _canvas_mask_reader(mask: bytes, canvas: Box) -> MaskReader:
    """A mask over the whole canvas, read box by box like a selection."""
    def read(box: Box) -> bytes:
        return link.crop_bytes(mask, canvas.w, box.relative_to(canvas), 1)

    return read


def _plan_generate(ui: link.Action, params: dict[str, Any], canvas: Box, dtype: str, selection: Box | None,
                   max_pixels: int | None) -> Plan:
    box = selection.intersect(canvas) if selection is not None else canvas
    _check_size(box, max_pixels)
    params = dict(params, width=box.w, height=box.h)
    return Plan(ui, params, box, dtype, {}, selection)


def _selection_mask(read_mask: MaskReader, box: Box) -> bytes:
    """The selection over `box`, one byte a pixel; an unreadable or empty one is a bad_selection."""
    mask = bytes(read_mask(box))
    if len(mask) != box.w * box.h:
        raise link.LinkError("bad_selection", "Could not read the selection (unexpected size).")
    if link.mask_is_empty(mask):
        raise link.LinkError("bad_selection", "The selection is empty where it meets the canvas: select an "
                             "area, then run again.")
    return mask


def _check_size(box: Box, max_pixels: int | None) -> None:
    if max_pixels and box.w * box.h > max_pixels:
        raise link.LinkError("too_large", f"{box.w}x{box.h} pixels is more than the engine accepts "
                             f"({max_pixels} pixels): select a smaller area.")


def max_pixels_from(welcome: dict[str, Any] | None) -> int | None:
    limits = (welcome or {}).get("limits") or {}
    value = limits.get("max_pixels")
    return int(value) if isinstance(value, (int, float)) and value > 0 else None
