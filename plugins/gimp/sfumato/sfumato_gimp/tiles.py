"""Pattern Repeat and Recolor in GIMP: the selection's box (or the layer) in, new layers out.

Pattern Repeat sends the motif (the selection's bounding box, unselected pixels made
transparent, or the whole layer with its alpha) and gets back one repeat tile, plus an N x N
preview when asked, as new layers at the box's corner; optionally the tile is also saved as
a GIMP pattern (.pat) in the user's patterns folder. Recolor sends the box and gets back one
layer per colourway, cleared outside the selection. The extra inputs the action declares
(the ground texture, the palette reference) come from a drawable or an image file.
"""
from __future__ import annotations

import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GObject  # noqa: E402

import sfumato_link as link  # noqa: E402

from . import canvas, connection  # noqa: E402

RW = GObject.ParamFlags.READWRITE


def add_input_arguments(proc: Gimp.Procedure, action: link.Action) -> None:
    """For each extra input of `action`: a drawable argument and a file argument (either may be empty)."""
    inputs = link.schema.op_inputs(action.engine_op) or {}
    for name in action.extra_inputs:
        doc = str(inputs.get(name, {}).get("doc") or name)
        title = link.label(name)
        proc.add_drawable_argument(f"{name}-layer", f"{title} (_layer)", f"Optional: a layer or drawable: {doc}",
                                   True, RW)
        proc.add_file_argument(f"{name}-file", f"{title} (_file)", f"Optional: an image file: {doc} (a layer wins)",
                               Gimp.FileChooserAction.OPEN, True, None, RW)


def read_drawable(drawable: Gimp.Drawable) -> link.Array:
    """A whole drawable as RGBA u8 (a reference or ground texture: 8 bits are plenty)."""
    w, h = drawable.get_width(), drawable.get_height()
    data = bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP))
    return link.Array((h, w, 4), "u8", data)


def extra_inputs(action: link.Action, config) -> dict:
    """{input name: Array} for the extra inputs given as a drawable or a file."""
    out = {}
    for name in action.extra_inputs:
        drawable = config.get_property(f"{name}-layer")
        picked = config.get_property(f"{name}-file")
        if drawable is not None:
            out[name] = read_drawable(drawable)
        elif picked is not None and picked.get_path():
            out[name] = canvas.read_file_as_u8(picked)
    return out


def crop_of(image: Gimp.Image, layer: Gimp.Layer) -> tuple[link.Box, bytes | None]:
    """The selection's bounding box within the layer (or the layer's box) and the selection over it
    (None when there is none or it covers the whole box)."""
    offsets = layer.get_offsets()
    ox, oy = (offsets[1], offsets[2]) if len(offsets) == 3 else offsets
    layer_box = link.layer_box(ox, oy, layer.get_width(), layer.get_height())
    ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    if not non_empty:
        return layer_box, None
    box = link.Box.from_corners(x1, y1, x2, y2).intersect(layer_box)
    if box.empty:
        raise link.LinkError("bad_selection", "The selection does not overlap the layer: select part of the layer.")
    rect = Gegl.Rectangle.new(box.x, box.y, box.w, box.h)
    mask = bytes(image.get_selection().get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))
    if link.mask_is_empty(mask):
        raise link.LinkError("bad_selection", "The selection is empty where it meets the layer.")
    return box, None if link.mask_is_full(mask) else mask


def patterns_folder() -> str:
    """The user's patterns folder, where GIMP looks for .pat files."""
    return os.path.join(Gimp.directory(), "patterns")


def refresh_patterns() -> None:
    """Make GIMP read its patterns folders again (so a saved tile shows up at once)."""
    refresh = getattr(Gimp, "patterns_refresh", None)
    if refresh is not None:
        refresh()
        return
    proc = Gimp.get_pdb().lookup_procedure("gimp-patterns-refresh")
    if proc is not None:
        proc.run(proc.create_config())


def save_pattern(name: str, tile: link.Array) -> str:
    """Write the tile as GIMP pattern `name` into the user's patterns folder and refresh the patterns."""
    try:
        path = link.gpat.save(patterns_folder(), name, tile)
    except (OSError, ValueError) as exc:
        raise link.LinkError("internal", f"could not save the tile as a GIMP pattern: {exc}") from None
    refresh_patterns()
    return path


def run(action: link.Action, params: dict, own: dict, image: Gimp.Image, layer: Gimp.Layer, config) -> list:
    """Pattern Repeat or Recolor on the selection's box (or the layer); the results as new layers."""
    box, mask = crop_of(image, layer)
    dtype = link.dtype_for_gimp_precision(image.get_precision().value_nick)
    offsets = layer.get_offsets()
    ox, oy = (offsets[1], offsets[2]) if len(offsets) == 3 else offsets
    rect = Gegl.Rectangle.new(box.x - ox, box.y - oy, box.w, box.h)
    pixels = bytes(layer.get_buffer().get(rect, 1.0, link.gimp_babl_format(dtype, 4), Gegl.AbyssPolicy.CLAMP))
    if mask is not None and action.selection == "motif":  # the motif is what is selected
        pixels = link.clear_outside_mask(pixels, mask, dtype, 4)
    inputs = {"image": link.image_array(pixels, box.w, box.h, dtype, 4), **extra_inputs(action, config)}
    job = connection.run_job(action.engine_op, action.label, inputs, params)
    outputs = canvas.outputs_of(job)
    if mask is not None and action.selection == "crop":  # a recolour covers the selection only
        outputs = [link.Array(out.shape, out.dtype, link.clear_outside_mask(out.data, mask, out.dtype, out.channels))
                   for out in outputs]
    layers = canvas.add_layers(image, action, params, job, outputs, box.x, box.y, layer)
    if own.get("save_pattern"):
        # named like the tile's layer (add_layers): "Sfumato Pattern repeat tile (layout half-drop, seed 3)"
        name = link.layer_name(action, params, job.meta, 0 if len(outputs) > 1 else None)
        path = save_pattern(name, outputs[0])
        Gimp.message(f"Sfumato {action.label}: the tile is saved as the pattern {name!r} ({path}).")
    Gimp.displays_flush()
    return layers
