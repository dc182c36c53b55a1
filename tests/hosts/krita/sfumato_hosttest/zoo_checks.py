"""Krita-side checks of the model picker and of restore with a zoo model (issue 17).

The docker's form must offer the engine's Real-ESRGAN x4plus checkpoint for Restore with task
upscale and scale 4, not for scale 2 and not for Inpaint; Run with it on a small image opens a
new image 4x its size, which the engine's Python then compares with a bicubic upscale
(tests/hosts/zoo_compare.py). Skipped, with the reason in the report, when the checkpoint is
not available (../shared/models absent).
"""
from __future__ import annotations

from typing import Any, Iterator

from krita import Krita


def offered(docker: Any) -> list[Any]:
    return [value for value, _ in docker.form.model_items("model")]


def picker(test: Any, docker: Any, model: str) -> None:
    docker.select_op("restore")
    docker.form.set_value("task", "upscale")
    docker.form.set_value("scale", 4)
    x4 = docker.form.model_items("model")
    test.check(f"model picker: Restore upscale x4 offers {model}, labelled with what it does",
               any(value == model and "upscale x4" in text for value, text in x4), x4)
    docker.form.set_value("scale", 2)
    test.check(f"model picker: Restore upscale x2 does not offer the x4 model {model}", model not in offered(docker),
               offered(docker))
    docker.form.set_value("scale", 4)
    docker.select_op("inpaint")
    items = offered(docker)
    test.check(f"model picker: Inpaint does not offer {model}", bool(items) and model not in items, items)


def upscale(test: Any, window: Any, docker: Any, doc: Any, source: Any) -> Iterator[Any]:
    cfg = test.cfg
    model = cfg.get("zoo_model")
    if not model:
        test.info["zoo_skip"] = cfg.get("zoo_skip", "no zoo model configured")
        print(f"[krita-host-test] SKIP zoo upscale: {test.info['zoo_skip']}", flush=True)
        return
    app = Krita.instance()
    picker(test, docker, model)
    side = int(cfg.get("zoo_size", 24))
    x, y = cfg.get("zoo_origin", (30, 48))
    small = app.createDocument(side, side, "zoo-small", "RGBA", "U8", "", 72.0)
    window.addView(small)
    yield (lambda: app.activeDocument() == small, 10.0, "the small image for the zoo upscale")
    small.setBatchmode(True)
    layer = small.topLevelNodes()[0]
    layer.setPixelData(source.pixelData(x, y, side, side), 0, 0, side, side)
    small.setActiveNode(layer)
    small.refreshProjection()
    yield 0.3
    test.export(small, "zoo-small.png")
    count = len(app.documents())
    test.last_run = None
    yield from test.run_button_job(docker, "restore", {"task": "upscale", "scale": 4, "model": model}, "zoo upscale")
    run = getattr(test, "last_run", None)
    if run is not None and run.job.state == "done":
        test.check(f"zoo upscale: the engine ran {model}", (run.job.meta or {}).get("model") == model
                   and run.plan.params.get("model") == model, [run.plan.params, run.job.meta])
        yield (lambda: len(app.documents()) == count + 1, 10.0, "the zoo-upscaled image to open")
        big = app.documents()[-1] if len(app.documents()) == count + 1 else None
        test.check("zoo upscale: opens a new image 4x the small image's size",
                   big is not None and (big.width(), big.height()) == (4 * side, 4 * side),
                   big and (big.width(), big.height()))
        if big is not None:
            test.export(big, "zoo-big.png")
            # judged from outside Krita by report.py (numpy and Pillow; the chroot hosts lack this Python)
            big.setModified(False)
            big.close()
            yield 1.0
    small.setModified(False)
    small.close()
    yield 1.0
    app.setActiveDocument(doc)
    yield (lambda: app.activeDocument() == doc, 10.0, "the test image to be active again")
