"""Where GIMP's pixels meet the engine: the layer and selection in, result layers out.

A job reads the selection's bounding box plus context (or, for inpainting without a
selection, the layer's transparent area plus context) and gets back new layers at the
crop's offset, all in one undo step, variant #1 on top.
"""
from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

import sfumato_link as link  # noqa: E402

PRECISIONS = {"u8": Gimp.Precision.U8_NON_LINEAR, "u16": Gimp.Precision.U16_NON_LINEAR,
              "f32": Gimp.Precision.FLOAT_NON_LINEAR}


class Source:
    """What a job reads: the layer, the crop box (image coordinates), pixels, mask, dtype."""

    def __init__(self, image: Gimp.Image, drawable: Gimp.Drawable, action: link.Action, margin: int | None,
                 source_channel: Gimp.Channel | None = None):
        self.image, self.drawable = image, drawable
        offsets = drawable.get_offsets()
        ox, oy = (offsets[1], offsets[2]) if len(offsets) == 3 else offsets
        self.layer_box = link.layer_box(ox, oy, drawable.get_width(), drawable.get_height())
        ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
        self.selection = link.Box.from_corners(x1, y1, x2, y2) if non_empty else None
        need_mask = action.selection == "required"
        area, alpha = self.selection, None
        if area is None and need_mask:  # no selection: fill what is transparent (outpainting)
            area, alpha = link.transparent_area(self._read(self.layer_box, "R'G'B'A u8"), self.layer_box, "u8")
            if area is None:
                raise link.needs_selection(action)
        if margin is None and area is not None:
            margin = link.context_pixels(action, area.intersect(self.layer_box))
        self.crop = link.crop_box(area, self.layer_box, margin)
        # Remove's source (white = may copy): the crop grows to hold it; none or empty = the whole image
        whole = read_channel(source_channel, self.layer_box) if source_channel is not None else None
        self.crop = link.source_crop(self.crop, whole, self.layer_box)
        self.source = None if whole is None else link.source_array(
            link.crop_bytes(whole, self.layer_box.w, self.crop.relative_to(self.layer_box), 1), self.crop.w, self.crop.h)
        self.dtype = link.dtype_for_gimp_precision(image.get_precision().value_nick)
        self.pixels = self._read(self.crop, link.gimp_babl_format(self.dtype, 4))
        self.mask: bytes | None = None
        if self.selection is not None:
            rect = Gegl.Rectangle.new(self.crop.x, self.crop.y, self.crop.w, self.crop.h)
            mask = bytes(image.get_selection().get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))
            self.mask = None if link.mask_is_full(mask) and not need_mask else mask
        elif alpha is not None:
            self.mask = link.crop_bytes(alpha, self.layer_box.w, self.crop.relative_to(self.layer_box), 1)

    def _read(self, box: link.Box, fmt: str) -> bytes:
        """The layer's pixels over `box` (image coordinates) in babl format `fmt`."""
        local = box.relative_to(self.layer_box)
        rect = Gegl.Rectangle.new(local.x, local.y, local.w, local.h)
        return bytes(self.drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP))

    def inputs(self) -> dict:
        result = {"image": link.image_array(self.pixels, self.crop.w, self.crop.h, self.dtype, 4)}
        if self.mask is not None:
            result["mask"] = link.mask_array(self.mask, self.crop.w, self.crop.h)
        if self.source is not None:
            result["source"] = self.source
        return result


def read_channel(channel: Gimp.Channel, box: link.Box) -> bytes:
    """A channel over `box` (image coordinates) as a u8 mask."""
    rect = Gegl.Rectangle.new(box.x, box.y, box.w, box.h)
    return bytes(channel.get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))


def read_canvas(drawable: Gimp.Drawable, width: int, height: int, fmt: str) -> bytes:
    """The layer's pixels over the whole canvas (0, 0, width, height); transparent where it has none."""
    offsets = drawable.get_offsets()
    ox, oy = (offsets[1], offsets[2]) if len(offsets) == 3 else offsets
    rect = Gegl.Rectangle.new(-ox, -oy, width, height)
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def place_extension(image: Gimp.Image, layer: Gimp.Layer, ext: "link.extend.Extension", box: link.Box,
                    action: link.Action, params: dict, job: link.Job) -> list[Gimp.Layer]:
    """Enlarge the canvas, grow the source layer with it (transparent), and add the fill of the
    new strips as layers above it: one undo step. The old pixels stay as they were."""
    if (image.get_width(), image.get_height()) != (ext.width, ext.height):
        raise link.LinkError("bad_selection", "The canvas changed size while the engine worked; run Extend Canvas "
                             "again.")
    mask = link.extend.added_mask(ext, box)
    outputs = [link.Array(out.shape, out.dtype, link.clear_outside_mask(out.data, mask, out.dtype, out.channels))
               for out in outputs_of(job)]
    image.undo_group_start()
    try:
        image.resize(ext.new_width, ext.new_height, ext.left, ext.top)
        if not layer.has_alpha():
            layer.add_alpha()
        layer.resize_to_image_size()
        layers = add_layers(image, action, params, job, outputs, box.x, box.y, layer)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layers


def read_file_as_u8(path_file) -> link.Array:
    """A style reference picked in the dialog, loaded through GIMP, flattened to RGB u8."""
    ref = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, path_file)
    try:
        layer = ref.flatten()
        w, h = layer.get_width(), layer.get_height()
        data = bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B' u8",
                                            Gegl.AbyssPolicy.CLAMP))
        return link.Array((h, w, 3), "u8", data)
    finally:
        ref.delete()


def new_layer(image: Gimp.Image, name: str, out: link.Array, x: int, y: int,
              above: Gimp.Drawable | None) -> Gimp.Layer:
    """A filled layer directly above `above` (or at the top), at (x, y)."""
    layer = Gimp.Layer.new(image, name, out.width, out.height, Gimp.ImageType.RGBA_IMAGE, 100.0,
                           Gimp.LayerMode.NORMAL)
    if above is not None and isinstance(above, Gimp.Layer):
        image.insert_layer(layer, above.get_parent(), image.get_item_position(above))
    else:
        image.insert_layer(layer, None, 0)
    layer.set_offsets(x, y)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, out.width, out.height), link.gimp_babl_format(out.dtype, out.channels),
            out.tobytes())
    buf.flush()
    layer.update(0, 0, out.width, out.height)
    return layer


def outputs_of(job: link.Job) -> list[link.Array]:
    """The job's images in variant order; LinkError when there are none."""
    outputs = [arr for _, arr in link.ordered_outputs(job.outputs)]
    if not outputs:
        raise link.LinkError("internal", "the engine returned no image")
    return outputs


def add_layers(image: Gimp.Image, action: link.Action, params: dict, job: link.Job, outputs: list[link.Array],
               x: int, y: int, above: Gimp.Drawable | None) -> list[Gimp.Layer]:
    """One layer per variant, #1 on top, named after the action, in one undo step."""
    multi = len(outputs) > 1
    layers = []
    image.undo_group_start()
    try:
        for i, out in enumerate(outputs):
            name = link.layer_name(action, params, job.meta, i if multi else None)
            layers.append(new_layer(image, name, out, x, y, above))  # each goes below the previous one
    finally:
        image.undo_group_end()
    return layers


def show(image: Gimp.Image) -> None:
    """Open a display for a new image (batch mode has none; the image is still there for scripts)."""
    try:
        Gimp.Display.new(image)
    except Exception:
        pass
    Gimp.displays_flush()


def paste_results(src: Source, action: link.Action, params: dict, job: link.Job,
                  upscale_target: str = "new-image") -> list[Gimp.Layer]:
    """The results above the source at the crop's offset; an upscale into a new or resized image.

    Pixels outside the selection are cleared in the result layers (they cover only what the
    engine may change), so the image outside the selection stays exactly as it was; Remove keeps
    the few pixels around the selection that the engine changed (it grows the selection).
    """
    outputs = outputs_of(job)
    scale = link.output_scale(src.crop, outputs[0])
    image, x, y, above = src.image, src.crop.x, src.crop.y, src.drawable
    if scale != 1.0 and upscale_target == "new-image":
        image = Gimp.Image.new_with_precision(outputs[0].width, outputs[0].height, Gimp.ImageBaseType.RGB,
                                              src.image.get_precision())
        x = y = 0
        above = None
    if src.mask is not None and scale == 1.0 and params.get("remove"):  # the engine grew the selection: keep that
        outputs = [link.Array(out.shape, out.dtype,
                              link.clear_unchanged_outside(out.data, src.pixels, src.mask, out.dtype, out.channels))
                   for out in outputs]
    elif src.mask is not None and scale == 1.0:
        outputs = [link.Array(out.shape, out.dtype, link.clear_outside_mask(out.data, src.mask, out.dtype, out.channels))
                   for out in outputs]
    image.undo_group_start()  # a resize and the layers: one undo step
    try:
        if scale != 1.0 and image is src.image:
            image.scale(round(image.get_width() * scale), round(image.get_height() * scale))
            x, y = round(x * scale), round(y * scale)
        layers = add_layers(image, action, params, job, outputs, x, y, above)
    finally:
        image.undo_group_end()
    if image is not src.image:
        show(image)
    Gimp.displays_flush()
    return layers


def place_generated(image: Gimp.Image | None, above: Gimp.Drawable | None, action: link.Action, params: dict,
                    job: link.Job, x: int, y: int) -> Gimp.Image:
    """Generated images as layers of `image` at (x, y), or of a new image when `image` is None."""
    outputs = outputs_of(job)
    fresh = image is None
    if fresh:
        image = Gimp.Image.new_with_precision(outputs[0].width, outputs[0].height, Gimp.ImageBaseType.RGB,
                                              PRECISIONS[outputs[0].dtype])
        x = y = 0
    add_layers(image, action, params, job, outputs, x, y, None if fresh else above)
    if fresh:
        show(image)
    Gimp.displays_flush()
    return image
