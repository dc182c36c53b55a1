"""Krita-side checks of Remove with a source layer and of Extend canvas (issue 16).

Generators driven by the host test's event-loop scheduler (see __init__.py): they click the
docker's own controls and judge the layers Krita ends up with.
"""
from __future__ import annotations

import statistics
from typing import Any, Callable, Iterator

from krita import Krita

SOURCE_WIDTH = 80  # the source layer is opaque over the leftmost columns


def remove_with_source(test: Any, doc: Any, source: Any, docker: Any, mask_reader: Callable[[Any], bytes]
                       ) -> Iterator[Any]:
    """Remove the selected object, copying only from a hidden layer's opaque pixels."""
    w, h = doc.width(), doc.height()
    copy_from = doc.createNode("copy from", "paintlayer")
    row = bytes([40, 160, 60, 255]) * SOURCE_WIDTH + bytes(4 * (w - SOURCE_WIDTH))
    copy_from.setPixelData(row * h, 0, 0, w, h)
    copy_from.setVisible(False)
    source.parentNode().addChildNode(copy_from, source)
    yield 0.5
    doc.setActiveNode(source)  # Krita makes an added layer active: the run must read the source
    yield (lambda: doc.activeNode() is not None and doc.activeNode().name() == source.name(), 10.0,
           "the source layer to be active again")
    names = test.top_names(doc)
    docker.select_op("remove")
    test.check("remove: the docker offers a source picker", docker.source_row.isVisibleTo(docker)
               and docker.source_picker.pick("copy from"), docker.source_picker.currentText())
    test.last_run = None
    yield from test.run_button_job(docker, "remove", {"steps": 3, "seed": 9, "variants": 1}, "remove with source")
    run = getattr(test, "last_run", None)
    if run is None or run.job.state != "done":
        return
    src = run.plan.inputs.get("source")
    test.check("remove with source: the source mask travelled, with remove set and the crop holding it",
               src is not None and run.plan.params.get("remove") is True and run.plan.box.x == 0,
               [sorted(run.plan.inputs), run.plan.params, str(run.plan.box)])
    yield from test.settle_above(doc, source)
    test.check_result_layer(doc, source, "remove with source", mask_reader, 4)
    yield from test.undo_removes(doc, names, "remove with source")
    copy_from.remove()
    docker.source_picker.refresh()
    doc.setActiveNode(source)
    yield 0.5


def _alpha_and_spread(data: bytes) -> tuple[int, float]:
    """(lowest alpha, standard deviation of the colour samples) of BGRA u8 pixels."""
    return min(data[3::4]), statistics.pstdev(b for i, b in enumerate(data) if i % 4 != 3)


def extend_canvas(test: Any, window: Any, docker: Any) -> Iterator[Any]:
    """Extend canvas on a fresh copy of the test image: right by 25 %, then left by 16 px."""
    app = Krita.instance()
    doc = app.openDocument(test.cfg["image"])
    window.addView(doc)
    yield (lambda: app.activeDocument() == doc, 20.0, "the image for Extend canvas")
    doc.setBatchmode(True)
    source = doc.activeNode() or doc.topLevelNodes()[0]
    doc.setActiveNode(source)
    yield 0.3
    for sides, amount, unit in (("right", 25, "percent"), ("left", 16, "px")):
        label = f"extend {sides}"
        w, h = doc.width(), doc.height()
        original = bytes(source.pixelData(0, 0, w, h))
        names = test.top_names(doc)
        add = round(w * amount / 100) if unit == "percent" else amount
        test.last_run = None
        yield from test.run_button_job(docker, "extend", {"sides": sides, "amount": amount, "unit": unit,
                                                           "steps": 3, "seed": 5, "variants": 1}, label)
        run = getattr(test, "last_run", None)
        if run is None or run.job.state != "done":
            return
        yield from test.settle_above(doc, source)
        new_w = doc.width()
        test.check(f"{label}: the canvas grew by {add} px", (new_w, doc.height()) == (w + add, h),
                   (w, h, new_w, doc.height()))
        x_old = add if sides == "left" else 0
        x_strip = 0 if sides == "left" else w
        test.check(f"{label}: the source layer's pixels moved with the canvas, unchanged",
                   bytes(source.pixelData(x_old, 0, w, h)) == original)
        layer = test.above(doc, source)
        test.check(f"{label}: the fill is a new layer above the source", layer is not None
                   and layer.name().startswith("Sfumato Extend canvas"), test.top_names(doc))
        if layer is not None:
            strip = bytes(layer.pixelData(x_strip, 0, add, h))
            lowest, spread = _alpha_and_spread(strip)
            test.info[f"{label}_strip"] = {"lowest_alpha": lowest, "colour_std": round(spread, 1)}
            test.check(f"{label}: the new strip is filled and opaque", lowest == 255 and spread > 5,
                       test.info[f"{label}_strip"])
            test.check(f"{label}: the fill layer leaves the old canvas alone (transparent there)",
                       not any(bytes(layer.pixelData(x_old, 0, w, h))[3::4]))
        yield from test.undo(doc, lambda: test.top_names(doc) == names, f"{label} undo of the layer")
        yield from test.undo(doc, lambda: doc.width() == w, f"{label} undo of the canvas")
        test.check(f"{label}: two undos (layer, canvas) restore the image", test.top_names(doc) == names
                   and doc.width() == w and bytes(source.pixelData(0, 0, w, h)) == original,
                   (test.top_names(doc), doc.width()))
        if doc.width() != w:
            return
    doc.setModified(False)
    doc.close()
    yield 1.0
