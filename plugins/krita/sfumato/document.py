"""Krita's side of a job: read the active layer and selection, put results back as new layers.

Only this module (with the docker and the extension) touches the Krita API. Results always
go into *new* layers (Krita does not record `setPixelData` on an existing layer for undo),
filled before they join the layer stack, so one Undo removes a result; variants share a group.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .bootstrap import link
from .convert import layer_format
from .history import Entry, ResultLayer
from .qt import QtGui
from .request import Plan, plan_crop, plan_extend, plan_job

Box = link.Box


def krita() -> Any:
    from krita import Krita  # imported late so that this module can be loaded by tests without Krita

    return Krita.instance()


@dataclass
class Target:
    """Where a job's result goes: the document and the layer the pixels came from."""

    doc: Any
    node: Any
    extension: Any = None  # Extend canvas: grow the canvas (link.extend.Extension) before adding the result


def _first_paint_layer(node: Any) -> Any:
    for child in reversed(node.childNodes()):
        if child.type() == "paintlayer":
            return child
        found = _first_paint_layer(child) if child.type() == "grouplayer" else None
        if found is not None:
            return found
    return None


def active_source() -> Target:
    """The active document and paint layer, or LinkError saying what to open or select."""
    app = krita()
    doc = app.activeDocument()
    if doc is None:
        raise link.LinkError("bad_selection", "Open or create an image first.")
    node = doc.activeNode()
    if node is None:  # Krita 5.2 right after opening a file
        node = _first_paint_layer(doc.rootNode())
    if node is None or node.type() != "paintlayer":
        kind = node.type() if node is not None else "nothing"
        raise link.LinkError("bad_selection", f"Select a paint layer in the Layers docker (the active layer is "
                             f"{kind}). Sfumato reads pixels from a paint layer and adds its result above it.")
    return Target(doc, node)


def canvas_box(doc: Any) -> Box:
    return Box(0, 0, int(doc.width()), int(doc.height()))


def selection_box(doc: Any) -> Box | None:
    sel = doc.selection()
    if sel is None:
        return None
    box = Box(int(sel.x()), int(sel.y()), int(sel.width()), int(sel.height()))
    return None if box.empty else box


def plan_for(ui: link.Action, params: dict[str, Any], style: Any = None, max_pixels: int | None = None,
             target: Target | None = None, own: dict[str, Any] | None = None,
             source: Any = None, inputs: dict[str, Any] | None = None) -> tuple[Plan, Target]:
    """Read the active layer (BGRA) and selection (soft 8-bit mask) into a request for `ui`;
    `source` is the layer or selection mask picked as Remove's source, `own` the plug-in's fields."""
    target = target or active_source()
    doc, node = target.doc, target.node
    dtype = layer_format(doc.colorModel(), doc.colorDepth())
    sel = doc.selection()

    def read_pixels(box: Box) -> bytes:
        return bytes(node.pixelData(box.x, box.y, box.w, box.h))

    def read_mask(box: Box) -> bytes:
        return bytes(sel.pixelData(box.x, box.y, box.w, box.h))

    if ui.selection in ("motif", "crop"):  # Pattern repeat, Recolor; `inputs`: {input name: node or None}
        extra = {name: node_image(node, name) for name, node in (inputs or {}).items() if node is not None}
        plan = plan_crop(ui, params, canvas_box(doc), dtype, read_pixels, selection_box(doc),
                         read_mask if sel is not None else None, max_pixels, extra)
        plan.wrap_tile = ui.selection == "motif" and bool((own or {}).get("wrap_around"))
        return plan, target
    if ui.selection == "extend":
        plan = plan_extend(ui, params, own or link.own_values(ui, {}), canvas_box(doc), dtype, read_pixels,
                           max_pixels)
        return plan, Target(doc, node, plan.extension)
    plan = plan_job(ui, params, canvas_box(doc), dtype, read_pixels, selection_box(doc),
                    read_mask if sel is not None else None, style, max_pixels,
                    source_reader(source) if source is not None else None)
    return plan, target


MASK_NODES = ("selectionmask", "transparencymask")  # one byte per pixel; layers give their alpha


def source_reader(node: Any) -> Any:
    """Remove's source mask from a node: a selection or transparency mask as it is, a layer by its
    opacity (opaque = may copy)."""
    def read(box: Box) -> bytes:
        data = bytes(node.pixelData(box.x, box.y, box.w, box.h))
        if node.type() in MASK_NODES:
            return data
        return link.opacity_mask(data, layer_format(node.colorModel(), node.colorDepth()))

    return read


def source_candidates(doc: Any) -> list[Any]:
    """Layers and selection masks that can serve as Remove's source, top first."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        for child in reversed(node.childNodes()):
            if child.type() in ("paintlayer",) + MASK_NODES:
                found.append(child)
            walk(child)

    walk(doc.rootNode())
    return found


def node_image(node: Any, what: str = "input") -> "link.Array":
    """A layer's pixels over its own bounds as an RGBA array (Pattern repeat's ground, Recolor's reference)."""
    b = node.bounds()
    if b.width() <= 0 or b.height() <= 0:
        raise link.LinkError("bad_param", f"The layer {node.name()!r} picked as {link.label(what).lower()} is empty: "
                             "paint on it or pick another layer.", f"inputs.{what}")
    dtype = layer_format(node.colorModel(), node.colorDepth())
    data = link.bgra_to_rgba(bytes(node.pixelData(b.x(), b.y(), b.width(), b.height())), dtype, 4)
    return link.Array((b.height(), b.width(), 4), dtype, data)


def layer_candidates(doc: Any) -> list[Any]:
    """Paint layers of the image, top first (the pickers for a ground or a palette reference)."""
    return [node for node in source_candidates(doc) if node.type() == "paintlayer"]


def set_wrap_around(doc: Any, on: bool = True) -> bool:
    """Switch wrap-around mode on in the view showing `doc` (Canvas.setWrapAroundMode, Krita 4 to 6);
    False when no view shows it."""
    window = krita().activeWindow()
    views = [v for v in (window.views() if window is not None else []) if v.document() == doc]
    canvas = views[-1].canvas() if views else None
    if canvas is None:
        return False
    canvas.setWrapAroundMode(on)
    return bool(canvas.wrapAroundMode()) == on


def is_open(doc: Any) -> bool:
    try:
        return any(d == doc for d in krita().documents())
    except Exception:
        return False


class KritaHost:
    """Places results: new paint layers above the source layer, one undo step each."""

    def insert(self, target: Target, entry: Entry) -> list[Any]:
        doc = target.doc
        if not is_open(doc):
            raise link.LinkError("bad_selection", "The image was closed before the result arrived; click the result "
                                 "in the history list to add it to another image.")
        if entry.new_image:
            return [self.new_document(entry)]
        if entry.wrap_tile:  # the tile as an image of its own, repeating in the view; the rest (preview) here
            tile = self.new_document(replace(entry, layers=entry.layers[:1], group=None))
            set_wrap_around(tile)
            rest = replace(entry, layers=entry.layers[1:], group=None)
            return [tile] + (self._add(doc, target.node, rest) if rest.layers else [])
        if target.extension is not None:
            self._extend(doc, target.extension)
        return self._add(doc, target.node, entry)

    @staticmethod
    def _extend(doc: Any, ext: Any) -> None:
        """Grow the canvas by `ext` (one undo step of its own: Krita records a canvas resize apart)."""
        if (doc.width(), doc.height()) != (ext.width, ext.height):
            raise link.LinkError("bad_selection", "The canvas changed size while the engine worked; run Extend "
                                 "canvas again.")
        doc.resizeImage(-ext.left, -ext.top, ext.new_width, ext.new_height)
        doc.waitForDone()

    def reinsert(self, entry: Entry) -> list[Any]:
        """Put a history entry back into the active image, above the active layer."""
        app = krita()
        doc = app.activeDocument()
        if doc is None or entry.new_image:
            return [self.new_document(entry)]
        if layer_format(doc.colorModel(), doc.colorDepth()) != entry.dtype:
            raise link.LinkError("unsupported", f"This result is {entry.dtype}; the active image has another depth. "
                                 "Convert the image (Image > Convert Image Color Space...) or open a new one.")
        node = doc.activeNode() or _first_paint_layer(doc.rootNode())
        return self._add(doc, node, entry)

    def _add(self, doc: Any, node: Any, entry: Entry) -> list[Any]:
        parent = node.parentNode() if node is not None else None
        if parent is None:
            parent, node = doc.rootNode(), None
        if entry.group and len(entry.layers) > 1:
            # fill the group while it is detached, then add it: one undo step for all variants
            group = doc.createGroupLayer(entry.group)
            group.setChildNodes([self._filled(doc, layer) for layer in reversed(entry.layers)])  # bottom first
            parent.addChildNode(group, node)
            added = [group]
        else:
            added = [self._filled(doc, layer) for layer in entry.layers]
            for child in added:
                parent.addChildNode(child, node)
        # no setActiveNode here: Krita activates an added layer itself, and activating it before
        # its shape exists trips an assertion in Krita 5.1 (and later a crash in the layer model)
        doc.refreshProjection()
        return added

    @staticmethod
    def _filled(doc: Any, layer: ResultLayer) -> Any:
        node = doc.createNode(layer.name, "paintlayer")
        node.setPixelData(layer.data, layer.x, layer.y, layer.width, layer.height)
        return node

    def new_document(self, entry: Entry) -> Any:
        """Open a result (an upscale) as a new image, one layer per output."""
        app = krita()
        first = entry.layers[0]
        depth = {"u8": "U8", "u16": "U16"}[entry.dtype]
        doc = app.createDocument(first.width, first.height, entry.label, "RGBA", depth, "", 300.0)
        root = doc.rootNode()
        for old in root.childNodes():  # the blank background layer
            old.remove()
        previous = None
        for layer in entry.layers:
            node = doc.createNode(layer.name, "paintlayer")
            node.setPixelData(layer.data, 0, 0, layer.width, layer.height)
            root.addChildNode(node, previous)
            previous = node
        doc.refreshProjection()
        window = app.activeWindow()
        if window is not None:
            window.addView(doc)
        return doc


def load_style_image(path: str, max_side: int = 1024) -> "link.Array":
    """A reference image file -> RGBA u8 array (scaled down to `max_side`), for stylize."""
    image = QtGui.QImage(path)
    if image.isNull():
        raise link.LinkError("bad_param", f"Could not read the style image {path!r}: choose a PNG or JPEG file.",
                             "inputs.style")
    if max(image.width(), image.height()) > max_side:
        image = image.scaled(max_side, max_side, aspectRatioMode=_keep_aspect(), transformMode=_smooth())
    image = image.convertToFormat(_rgba8888())
    w, h = image.width(), image.height()
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes() if hasattr(image, "sizeInBytes") else image.byteCount())
    raw = bytes(ptr)
    stride = image.bytesPerLine()
    data = b"".join(raw[y * stride:y * stride + w * 4] for y in range(h))
    return link.Array((h, w, 4), "u8", data)


def _rgba8888() -> Any:
    fmt = getattr(QtGui.QImage, "Format", QtGui.QImage)
    return getattr(fmt, "Format_RGBA8888")


def _keep_aspect() -> Any:
    from .qt import Qt

    return getattr(getattr(Qt, "AspectRatioMode", Qt), "KeepAspectRatio")


def _smooth() -> Any:
    from .qt import Qt

    return getattr(getattr(Qt, "TransformationMode", Qt), "SmoothTransformation")
