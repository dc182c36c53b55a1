"""Krita-side half of tests/hosts/krita_host_test.sh: drives the real Sfumato docker inside Krita.

Loaded by Krita as a second Python plug-in when SFUMATO_KRITA_TEST names a JSON config. It
clicks the docker's own buttons (Run, Cancel, Reconnect), waits on Krita's event loop (a
QTimer, never a blocking wait), checks the layers Krita ends up with, writes a JSON report
and quits Krita. The shell script decides pass/fail from that report.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import time
import traceback
from typing import Any, Callable, Iterator

from krita import Extension, InfoObject, Krita, Selection

from . import extend_checks, pattern_checks, zoo_checks

CONFIG_PATH = os.environ.get("SFUMATO_KRITA_TEST", "")


def _ellipse_mask(w: int, h: int, soft: float = 3.0) -> bytes:
    """A soft-edged ellipse filling a w x h box (255 inside, ramp over `soft` pixels)."""
    out = bytearray(w * h)
    cx, cy, rx, ry = (w - 1) / 2.0, (h - 1) / 2.0, w / 2.0, h / 2.0
    for y in range(h):
        for x in range(w):
            d = math.hypot((x - cx) / rx, (y - cy) / ry)  # 1 at the rim
            edge = (1.0 - d) * min(rx, ry)  # pixels inside the rim
            out[y * w + x] = 255 if edge >= soft else 0 if edge <= 0 else int(255 * edge / soft)
    return bytes(out)


FEATHER = 12  # the engine blends results in through a feather that grows outwards by at most this


def grow(mask: bytes, w: int, h: int, r: int) -> bytes:
    """Binary dilation of a w x h mask by a (2r+1) square (separable max, pure Python)."""
    on = [1 if v else 0 for v in mask]
    rows = [0] * (w * h)
    for y in range(h):
        line = on[y * w:(y + 1) * w]
        for x in range(w):
            rows[y * w + x] = max(line[max(0, x - r):x + r + 1])
    out = bytearray(w * h)
    for x in range(w):
        col = rows[x::w]
        for y in range(h):
            out[y * w + x] = 255 if max(col[max(0, y - r):y + r + 1]) else 0
    return bytes(out)


def compare(new: bytes, src: bytes, mask: bytes, bpp: int, w: int, h: int) -> dict[str, Any]:
    """A result layer against the source, by the selection mask of the same box.

    "Outside" is farther than the engine's feather from the selection: those pixels must be
    the source's bit for bit. Pixels in the feather band are counted separately.
    """
    near = grow(mask, w, h, FEATHER + 1)
    outside_diff = inside_changed = inside = outside = band_changed = 0
    for i in range(len(mask)):
        same = new[i * bpp:(i + 1) * bpp] == src[i * bpp:(i + 1) * bpp]
        if mask[i] == 0 and near[i]:
            band_changed += not same
        elif mask[i] == 0:
            outside += 1
            outside_diff += not same
        elif mask[i] == 255:
            inside += 1
            inside_changed += not same
    return {"outside": outside, "outside_changed": outside_diff, "inside": inside, "inside_changed": inside_changed,
            "feather_band_changed": band_changed}


class HostTest(Extension):
    def __init__(self, parent: Any):
        super().__init__(parent)
        self.cfg: dict[str, Any] = {}
        self.checks: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.gen: Iterator[Any] | None = None
        self.wait: tuple[Callable[[], bool], float, str] | None = None
        self.sleep_until = 0.0
        self.last_tick = 0.0
        self.gaps: list[float] = []
        self.job_gaps: list[float] = []  # gaps while the watched job is still on the engine
        self.watch: Any = None
        self.ticks = 0

    # --- plumbing -------------------------------------------------------------------

    def setup(self) -> None:
        if not CONFIG_PATH:
            return
        with open(CONFIG_PATH, encoding="utf-8") as f:
            self.cfg = json.load(f)
        from sfumato.qt import QTimer

        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(20)
        self.started = time.monotonic()
        # the docker's controller, made now rather than with the first docker, so that its
        # "starting the engine" states are seen even when the engine is up before the window
        from sfumato import runtime

        ctrl = runtime.controller()
        self.states: list[tuple[str, str]] = [(ctrl.state, ctrl.message)]
        ctrl.subscribe(lambda kind, c: kind == "state" and self.states.append((c.state, c.message)))

    def createActions(self, window: Any) -> None:  # noqa: N802
        pass

    def check(self, name: str, ok: bool, detail: Any = "") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        line = f"[krita-host-test] {'ok  ' if ok else 'FAIL'} {name} {detail}"
        print(line.encode("ascii", "replace").decode("ascii"), flush=True)  # Krita's stdout may be ASCII
        return bool(ok)

    def tick(self) -> None:
        now = time.monotonic()
        if self.last_tick:
            self.gaps.append(now - self.last_tick)
            if self.watch is not None and not self.watch.job.finished:  # excludes placing the result
                self.job_gaps.append(now - self.last_tick)
        self.last_tick = now
        self.ticks += 1
        if now - self.started > float(self.cfg.get("deadline", 300)):
            self.check("finished before the deadline", False, f"{self.cfg.get('deadline', 300)} s")
            return self.finish()
        if self.gen is None:
            if Krita.instance().activeWindow() is None:
                return
            self.gen = self.scenario()
        if now < self.sleep_until:
            return
        if self.wait is not None:
            cond, deadline, what = self.wait
            try:
                done = cond()
            except Exception:
                done = False
            if not done:
                if now > deadline:
                    self.wait = None
                    self.check(f"waited for {what}", False, "timed out")
                    return self.finish()
                return
            self.wait = None
        try:
            step = next(self.gen)
        except StopIteration:
            return self.finish()
        except Exception:
            self.check("scenario ran without exceptions", False, traceback.format_exc())
            return self.finish()
        if isinstance(step, (int, float)):
            self.sleep_until = now + float(step)
        elif isinstance(step, tuple):
            cond, timeout, what = step
            self.wait = (cond, now + timeout, what)

    def finish(self) -> None:
        self.timer.stop()
        ok = bool(self.checks) and all(c["ok"] for c in self.checks)
        report = {"checks": self.checks, "info": self.info, "ok": ok,
                  "seconds": time.monotonic() - self.started}
        with open(self.cfg["report"], "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        app = Krita.instance()
        for doc in app.documents():
            doc.setModified(False)  # file_quit then closes them without asking
        from sfumato.qt import QTimer

        # let Krita's layer model settle first: closing images within milliseconds of layer
        # changes crashes Krita 5.1 in KisNodeModel::processUpdateQueue
        QTimer.singleShot(1500, lambda: app.action("file_quit").trigger())

    # --- helpers --------------------------------------------------------------------

    def docker(self) -> Any:
        from sfumato.docker import DOCKERS

        return DOCKERS[-1] if DOCKERS else None

    def above(self, doc: Any, source: Any) -> Any:
        """The layer right above `source` (where results must land); Krita's activeNode() lags behind."""
        nodes = source.parentNode().childNodes()
        names = [n.name() for n in nodes]
        i = names.index(source.name())
        return nodes[i + 1] if i + 1 < len(nodes) else None

    def settle_above(self, doc: Any, source: Any, prefix: str = "Sfumato", seconds: float = 10.0) -> Iterator[Any]:
        """Give Krita a moment to show an added layer: its layer stack can lag a busy image by a few ticks."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            layer = self.above(doc, source)
            if layer is not None and layer.name().startswith(prefix):
                return
            yield 0.05

    def top_names(self, doc: Any) -> list[str]:
        return [n.name() for n in doc.topLevelNodes()]

    def run_button_job(self, docker: Any, key: str, values: dict[str, Any], label: str) -> Iterator[Any]:
        """Pick `key` in the docker, set values, click Run, wait for the job to end."""
        ctrl = docker.ctrl
        docker.select_op(key)
        for name, value in values.items():
            docker.form.set_value(name, value)
        docker.run_button.click()
        self.check(f"{label}: Run started a job", bool(ctrl.running), docker.message.text())
        if not ctrl.running:
            return
        run = ctrl.current
        self.watch, self.job_gaps = run, []
        t0 = time.monotonic()
        yield (lambda: not ctrl.running, float(self.cfg.get("job_timeout", 180)), f"{label} to finish")
        seconds = time.monotonic() - t0
        gaps, self.watch = self.job_gaps, None
        self.info[f"{label}_seconds"] = round(seconds, 2)
        # the history keeps the last 8 results: the newest entry must be this job's
        self.check(f"{label}: job finished with a result", run.job.state == "done" and run.entry is not None
                   and ctrl.history.entries[:1] == [run.entry],
                   f"{run.job.state}: {run.message}")
        on_engine = sum(gaps)  # until the result arrived; placing it in Krita is not counted
        self.check(f"{label}: event loop kept ticking during the job",
                   len(gaps) >= max(1, int(on_engine / 0.25)) and max(gaps or [0]) < 1.0,
                   f"{len(gaps)} ticks (every 20 ms) in {on_engine:.2f} s on the engine, "
                   f"longest gap {max(gaps or [0]):.3f} s; {seconds:.2f} s with placing the result")
        self.last_run = run

    def check_result_layer(self, doc: Any, source: Any, label: str, mask_of_box: Callable[[Any], bytes],
                           bpp: int, expect_change: bool = True) -> Any:
        run = self.last_run
        box = run.plan.box
        new = self.above(doc, source)
        self.check(f"{label}: result is a new paint layer right above the source",
                   new is not None and new.type() == "paintlayer" and new.name().startswith("Sfumato"),
                   f"{self.top_names(doc)}")
        if new is None:
            return None
        got = bytes(new.pixelData(box.x, box.y, box.w, box.h))
        src = bytes(source.pixelData(box.x, box.y, box.w, box.h))
        stats = compare(got, src, mask_of_box(box), bpp, box.w, box.h)
        self.info[f"{label}_pixels"] = stats
        self.check(f"{label}: pixels outside the selection (and its feather) unchanged, bit for bit",
                   stats["outside_changed"] == 0 and stats["outside"] > 0, stats)
        if expect_change:
            self.check(f"{label}: pixels inside the selection changed", stats["inside_changed"] > 0, stats)
        # nothing outside the crop box: a layer the size of the box, at the right offset
        b = new.bounds()
        from sfumato.bootstrap import link

        self.check(f"{label}: layer sits at the selection's box",
                   box.contains(link.Box(b.x(), b.y(), b.width(), b.height())),
                   f"layer bounds {b.x()},{b.y()} {b.width()}x{b.height()} within {box}")
        return new

    def arrange_for_screenshot(self, qwin: Any, dock: Any) -> None:
        """Only Layers and Sfumato on the right, Sfumato tall enough to show the preview."""
        from sfumato.qt import Qt, QtWidgets, enum

        keep = {"sfumato_docker", "KisLayerBox"}
        docks = qwin.findChildren(QtWidgets.QDockWidget)
        for d in docks:
            if d.objectName() not in keep and not d.isFloating() and d.isVisible():
                d.hide()
        layers = [d for d in docks if d.objectName() == "KisLayerBox"]
        try:
            if layers:
                qwin.resizeDocks([layers[0], dock], [170, 700], enum(Qt, "Orientation", "Vertical"))
            qwin.resizeDocks([dock], [400], enum(Qt, "Orientation", "Horizontal"))
        except Exception as exc:  # cosmetic only
            self.info["arrange_error"] = str(exc)

    def undo(self, doc: Any, done: Callable[[], bool], label: str) -> Iterator[Any]:
        """One undo, then wait until `done()`. Krita 6 now and then drops an undo triggered while
        it still ends the previous stroke (1 run in 3 here): one not taken within 6 s is triggered
        once more."""
        for _ in range(2):
            doc.waitForDone()
            Krita.instance().action("edit_undo").trigger()
            for _ in range(24):
                if done():
                    return
                yield 0.25
        yield (done, 10.0, label)

    def undo_removes(self, doc: Any, names_before: list[str], label: str) -> Iterator[Any]:
        yield from self.undo(doc, lambda: self.top_names(doc) == names_before, f"{label} undo")
        self.check(f"{label}: one undo removes the result", self.top_names(doc) == names_before, self.top_names(doc))

    def export(self, doc: Any, name: str) -> None:
        path = os.path.join(self.cfg["out"], name)
        doc.setBatchmode(True)
        ok = doc.exportImage(path, InfoObject())
        self.check(f"export {name}", ok and os.path.isfile(path), path)

    # --- the scenario ----------------------------------------------------------------

    def scenario(self) -> Iterator[Any]:
        app = Krita.instance()
        app.setBatchmode(True)
        window = app.activeWindow()
        qwin = window.qwindow()
        qwin.resize(*self.cfg.get("window", (1440, 900)))
        qwin.move(0, 0)
        self.info["krita"] = app.version()
        import sys

        self.info["python"] = sys.version.split()[0]
        from sfumato.controller import DOWN, ONLINE, STARTING
        from sfumato.ops import OPS, action_id
        from sfumato.qt import BINDING, QtWidgets

        self.info["qt_binding"] = BINDING
        dock = next((d for d in qwin.findChildren(QtWidgets.QDockWidget) if d.objectName() == "sfumato_docker"), None)
        self.check("docker 'Sfumato' is registered", dock is not None)
        if dock is None:
            return
        dock.show()
        dock.raise_()
        yield 0.5
        docker = self.docker()
        self.check("docker is the plug-in's panel", docker is not None and docker is dock, type(dock).__name__)
        docker = docker or dock
        ctrl = docker.ctrl
        self.info["transport"] = ctrl.transport_kind

        # actions under Tools > Scripts
        missing = [action_id(op) for op in OPS if app.action(action_id(op)) is None]
        self.check("an action per operation", not missing, missing or [action_id(op) for op in OPS])
        tools = [a for a in qwin.menuBar().actions() if a.text().replace("&", "") == "Tools"]
        scripts = [a for a in (tools[0].menu().actions() if tools else []) if a.menu() is not None
                   and a.text().replace("&", "") == "Scripts"]
        in_menu = {a.objectName() for a in scripts[0].menu().actions()} if scripts else set()
        self.check("actions are in Tools > Scripts", all(action_id(op) in in_menu for op in OPS), sorted(in_menu))

        real = self.cfg["address"]
        # no engine was running: the docker starts one with the installer's Python and connects
        yield (lambda: ctrl.state in (ONLINE, DOWN), 240.0, "the docker to start the engine and connect")
        start = ctrl.engine_start
        self.check("docker started the engine (none was running)", start is not None and start.state == "ready",
                   ctrl.message if start is None else f"{start.state}: {start.tail()[-300:]}")
        said = [m for s, m in self.states if s == STARTING]  # Krita 6 may still be loading until the engine is up
        self.check("while it started, the docker said so", any(m.startswith("Starting the engine") for m in said),
                   self.states[:4])
        self.check("the started engine stops with Krita", start is not None
                   and start.command[-2:] == ["--stop-with", str(os.getpid())], start and start.command)
        self.check("docker connects to the engine", ctrl.state == ONLINE, ctrl.message)
        ops = sorted((ctrl.welcome or {}).get("ops") or {})
        self.info["engine_ops"] = ops
        self.check("status line shows device and models", ctrl.device in docker.engine_info.text()
                   and "models" in docker.engine_info.text(), docker.engine_info.text())

        # a remote engine not running: never started, a readable message, Krita stays responsive
        docker.address.setText(self.cfg["dead_address"])
        docker.reconnect_button.click()
        gaps_from = len(self.gaps)
        yield (lambda: ctrl.state == DOWN, 20.0, "the dead address to be reported")
        gaps = self.gaps[gaps_from:]
        self.check("engine down: status says how to start it", "sfumato serve" in docker.engine_info.text(),
                   docker.engine_info.text())
        self.check("engine down: a remote address is never started", ctrl.engine_start is start)
        self.check("engine down: the event loop kept ticking while connecting",
                   gaps and max(gaps) < 1.0, f"{len(gaps)} ticks, longest gap {max(gaps or [0]):.3f} s")
        docker.run_clicked()
        self.check("engine down: Run explains what to do", "not answering" in docker.message.text(),
                   docker.message.text())
        docker.address.setText(real)
        docker.reconnect_button.click()
        yield (lambda: ctrl.state == ONLINE, 30.0, "reconnecting to the real engine")
        self.check("reconnect to the real engine", ctrl.state == ONLINE, ctrl.message)

        # the test image, a soft elliptical selection
        doc = app.openDocument(self.cfg["image"])
        window.addView(doc)
        yield (lambda: app.activeDocument() is not None, 20.0, "the image to open")
        doc = app.activeDocument()
        doc.setBatchmode(True)
        view = window.activeView()
        if view is not None and view.canvas() is not None:  # the whole image in view (screenshot)
            view.canvas().setZoomLevel(min(940.0 / doc.width(), 700.0 / doc.height()))
        source = doc.activeNode() or doc.topLevelNodes()[0]
        doc.setActiveNode(source)
        self.check("test image is 8-bit RGBA", (doc.colorModel(), doc.colorDepth()) == ("RGBA", "U8"),
                   (doc.colorModel(), doc.colorDepth()))
        sx, sy, sw, sh = self.cfg.get("selection", (96, 64, 64, 56))
        ellipse = _ellipse_mask(sw, sh)
        sel = Selection()
        sel.setPixelData(ellipse, sx, sy, sw, sh)
        doc.setSelection(sel)
        yield 0.3

        def mask_reader(box: Any) -> bytes:
            return bytes(doc.selection().pixelData(box.x, box.y, box.w, box.h))

        names = self.top_names(doc)
        steps = int(self.cfg.get("steps", 6))
        if "inpaint" in ops:
            yield from self.run_button_job(docker, "inpaint", {"steps": steps, "seed": 7, "variants": 1,
                                                               "strength": 1.0}, "inpaint")
            if getattr(self, "last_run", None) is not None and self.last_run.job.state == "done":
                yield from self.settle_above(doc, source)
                self.check_result_layer(doc, source, "inpaint", mask_reader, 4)
                layer = self.above(doc, source)
                self.check("inpaint: layer named after the op", layer is not None
                           and layer.name().startswith("Sfumato Inpaint (strength 1, seed 7)"), layer and layer.name())
                self.check("inpaint: history lists the result", docker.history.count() >= 1, docker.history.count())
                self.export(doc, "inpaint.png")
                yield from self.undo_removes(doc, names, "inpaint")
                # history click re-inserts
                item = docker.history.item(0)
                docker.history.itemClicked.emit(item)
                yield 0.3
                self.check("history click re-inserts the result as a layer",
                           len(self.top_names(doc)) == len(names) + 1, self.top_names(doc))
                yield from self.undo_removes(doc, names, "re-inserted")
                doc.setActiveNode(source)
                self.last_run = None
                # the Remove action (what a shortcut triggers), with the engine's defaults
                before = len(ctrl.history)
                app.action("sfumato_remove").trigger()
                self.check("Remove action started a job", bool(ctrl.running), docker.message.text())
                yield (lambda: not ctrl.running, float(self.cfg.get("job_timeout", 180)), "the Remove action's job")
                yield from self.settle_above(doc, source)
                layer = self.above(doc, source)
                self.check("Remove action: a new layer above the source", len(ctrl.history) == before + 1
                           and layer is not None and layer.name().startswith("Sfumato Remove"),
                           [layer and layer.name(), docker.message.text()])
                yield from self.undo_removes(doc, names, "Remove action")
                doc.setActiveNode(source)
                # variants -> a group
                yield from self.run_button_job(docker, "inpaint", {"steps": 3, "seed": 3, "variants": 2},
                                               "variants")
                if getattr(self, "last_run", None) is not None:
                    yield from self.settle_above(doc, source)
                    group = self.above(doc, source)
                    kids = group.childNodes() if group is not None else []
                    self.check("variants: a group with one layer per variant",
                               group is not None and group.type() == "grouplayer" and len(kids) == 2
                               and kids[-1].name().startswith("Sfumato Inpaint #1"),
                               [group and group.name(), [k.name() for k in kids]])
                    yield from self.undo_removes(doc, names, "variants")
                doc.setActiveNode(source)
                yield from extend_checks.remove_with_source(self, doc, source, docker, mask_reader)
        else:
            docker.select_op("inpaint")
            docker.run_clicked()
            self.check("engine without inpaint: readable message", "does not offer" in docker.message.text(),
                       docker.message.text())
            self.check("engine offers inpaint", bool(self.cfg.get("allow_missing_ops")),
                       "missing (allowed while the op is being written)" if self.cfg.get("allow_missing_ops")
                       else "missing")

        # restore, hard rectangular selection
        rx, ry, rw, rh = self.cfg.get("restore_selection", (24, 24, 80, 60))
        sel = Selection()
        sel.select(rx, ry, rw, rh, 255)
        doc.setSelection(sel)
        doc.setActiveNode(source)
        yield 0.3
        if "restore" in ops:
            self.last_run = None
            yield from self.run_button_job(docker, "restore", {"task": "denoise", "steps": steps, "seed": 1}, "restore")
            if getattr(self, "last_run", None) is not None and self.last_run.job.state == "done":
                yield from self.settle_above(doc, source)
                self.check_result_layer(doc, source, "restore", mask_reader, 4, expect_change=False)
                self.export(doc, "restore.png")
                yield from self.undo_removes(doc, names, "restore")
            # upscale: the result is bigger than the crop, so it opens as a new image
            count = len(app.documents())
            self.last_run = None
            yield from self.run_button_job(docker, "restore", {"task": "upscale", "scale": 2, "steps": 2, "seed": 1},
                                           "upscale")
            if getattr(self, "last_run", None) is not None and self.last_run.job.state == "done":
                box = self.last_run.plan.box
                yield (lambda: len(app.documents()) == count + 1, 10.0, "the upscaled image to open")
                new_doc = app.documents()[-1] if len(app.documents()) == count + 1 else None
                self.check("upscale: opens a new image twice the crop's size", new_doc is not None
                           and (new_doc.width(), new_doc.height()) == (2 * box.w, 2 * box.h),
                           new_doc and (new_doc.width(), new_doc.height()))
                self.check("upscale: the source image is untouched", self.top_names(doc) == names, self.top_names(doc))
                if new_doc is not None:
                    new_doc.setModified(False)
                    new_doc.close()
                    yield 1.0
                app.setActiveDocument(doc)
                yield (lambda: app.activeDocument() == doc, 10.0, "the test image to be active again")
            yield from zoo_checks.upscale(self, window, docker, doc, source)
            doc.setSelection(sel)
            doc.setActiveNode(source)
        else:
            self.check("engine offers restore", bool(self.cfg.get("allow_missing_ops")), "missing")

        # stylize with a reference image file
        if "stylize" in ops:
            doc.setSelection(sel)
            doc.setActiveNode(source)
            docker.select_op("stylize")
            docker.style_path.setText(self.cfg["style"])
            self.last_run = None
            yield from self.run_button_job(docker, "stylize", {"steps": steps, "seed": 2}, "stylize")
            if getattr(self, "last_run", None) is not None and self.last_run.job.state == "done":
                self.check("stylize: the reference image travelled", "style" in self.last_run.plan.inputs,
                           sorted(self.last_run.plan.inputs))
                yield from self.settle_above(doc, source)
                self.check_result_layer(doc, source, "stylize", mask_reader, 4)
                yield from self.undo_removes(doc, names, "stylize")
        else:
            self.check("engine offers stylize", bool(self.cfg.get("allow_missing_ops")), "missing")

        # generate pattern: a new layer exactly the size of the selection
        if "generate" in ops:
            doc.setSelection(sel)
            doc.setActiveNode(source)
            yield 0.3
            self.last_run = None
            yield from self.run_button_job(docker, "pattern", {"steps": 3, "seed": 11, "tileable": True,
                                                               "variants": 1}, "pattern")
            if getattr(self, "last_run", None) is not None and self.last_run.job.state == "done":
                yield from self.settle_above(doc, source, "Sfumato Generate pattern")
                layer = self.above(doc, source)
                b = layer.bounds() if layer is not None else None
                self.check("pattern: a new layer covering the selection",
                           layer is not None and layer.name().startswith("Sfumato Generate pattern")
                           and (b.x(), b.y(), b.width(), b.height()) == (rx, ry, rw, rh),
                           [layer and layer.name(), b and (b.x(), b.y(), b.width(), b.height())])
                yield from self.undo_removes(doc, names, "pattern")

        # pattern repeat (tile in wrap-around, preview) and recolor (palette, reference layer)
        if "pattern" in ops and "recolor" in ops:
            yield from pattern_checks.repeat_and_recolor(self, window, docker, doc)
            doc.setActiveNode(source)
            yield 0.3
        else:
            self.check("engine offers pattern and recolor", bool(self.cfg.get("allow_missing_ops")), ops)

        # a slow job: progress with previews (the screenshot), responsiveness, then Cancel
        sel_e = Selection()
        sel_e.setPixelData(ellipse, sx, sy, sw, sh)
        doc.setSelection(sel_e)
        doc.setActiveNode(source)
        self.arrange_for_screenshot(qwin, dock)
        slow_key = "inpaint" if "inpaint" in ops else None
        ctrl_ops = {}
        if slow_key is None and "echo" in ops:  # before the real ops exist: the engine's echo op
            from sfumato.ops import UiOp

            ctrl_ops["echo"] = UiOp("echo", "Echo", "echo", ("steps", "delay", "preview"))
        if slow_key or ctrl_ops:
            if slow_key:
                docker.select_op(slow_key)
                docker.form.set_value("steps", int(self.cfg.get("slow_steps", 60)))
                docker.form.set_value("variants", 1)
                docker.form.set_value("strength", 0.95)  # a refine runs the whole sampler; a thin fill is one step
                docker.run_button.click()
            else:
                from sfumato.document import plan_for

                ui = ctrl_ops["echo"]
                plan, target = plan_for(ui, {"steps": 40, "delay": 6.0, "preview": True})
                ctrl.submit(plan, target)
            run = ctrl.current
            yield (lambda: run.preview_thumb is not None and docker.preview.pixmap() is not None
                   and not docker.preview.pixmap().isNull(), 60.0, "a preview frame in the docker")
            self.check("progress: preview thumbnail shown", run.preview_thumb is not None, run.job.stage)
            self.check("progress: bar and stage text move", docker.progress.value() > 0 and docker.stage.text() != "",
                       [docker.progress.value(), docker.stage.text()])
            shot = self.cfg.get("screenshot")
            if shot:  # a preview with some structure in it, then the picture
                yield (lambda: run.job.finished or run.job.fraction >= 0.7, 120.0, "the job to be well under way")
                proc = subprocess.Popen(["import", "-window", "root", shot])
                yield (lambda: proc.poll() is not None, 20.0, "the screenshot")
                self.check("screenshot taken mid-job", proc.returncode == 0 and os.path.isfile(shot), shot)
            if not run.job.finished:
                docker.cancel_button.click()
                yield (lambda: not ctrl.running, 20.0, "the job to be cancelled")
                self.check("Cancel stops the job", run.job.state in ("cancelled", "done"), run.job.state)
                self.check("Cancel: the panel says so",
                           run.job.state != "cancelled" or "Cancelled" in docker.message.text(),
                           docker.message.text())
            self.check("cancelled job added no layer", run.job.state != "cancelled" or self.top_names(doc) == names,
                       self.top_names(doc))
            if slow_key:
                docker.form.set_value("strength", 1.0)

        # a 16-bit document
        doc16 = app.createDocument(128, 96, "sixteen", "RGBA", "U16", "", 72.0)
        window.addView(doc16)
        yield (lambda: app.activeDocument() == doc16, 10.0, "the 16-bit image")
        doc16.setBatchmode(True)
        layer16 = doc16.topLevelNodes()[0]
        import struct

        px = bytearray()
        for y in range(96):
            for x in range(128):
                px += struct.pack("<4H", x * 500, y * 600, (x * y * 7) % 65536, 65535)  # B, G, R, A
        layer16.setPixelData(bytes(px), 0, 0, 128, 96)
        doc16.setActiveNode(layer16)
        sel16 = Selection()
        sel16.select(40, 30, 32, 24, 255)
        doc16.setSelection(sel16)
        doc16.refreshProjection()
        yield 0.3
        names16 = self.top_names(doc16)
        key16 = "inpaint" if "inpaint" in ops else None
        if key16:
            self.last_run = None
            yield from self.run_button_job(docker, key16, {"steps": 3, "seed": 5, "variants": 1}, "16-bit")
            if getattr(self, "last_run", None) is not None and self.last_run.job.state == "done":
                self.check("16-bit: request travelled as u16", self.last_run.plan.dtype == "u16",
                           self.last_run.plan.dtype)
                yield from self.settle_above(doc16, layer16)
                self.check_result_layer(doc16, layer16, "16-bit", lambda b: bytes(doc16.selection().pixelData(
                    b.x, b.y, b.w, b.h)), 8)
                yield from self.undo_removes(doc16, names16, "16-bit")

        if "inpaint" in ops:
            yield from extend_checks.extend_canvas(self, window, docker)

        # another colour model: a clear message
        grey = app.createDocument(64, 64, "grey", "GRAYA", "U8", "", 72.0)
        window.addView(grey)
        yield (lambda: app.activeDocument() == grey, 10.0, "the greyscale image")
        grey.setBatchmode(True)
        grey.setActiveNode(grey.topLevelNodes()[0])
        sel_grey = Selection()
        sel_grey.select(8, 8, 16, 16, 255)
        grey.setSelection(sel_grey)
        docker.select_op("inpaint" if "inpaint" in ops else "restore")
        docker.run_clicked()
        self.check("greyscale image: clear message",
                   "RGB" in docker.message.text() and "Convert" in docker.message.text(),
                   docker.message.text())
        self.info["ticks"] = self.ticks
        self.info["controller_polls"] = ctrl.ticks
        self.info["longest_tick_gap"] = round(max(self.gaps or [0]), 3)


Krita.instance().addExtension(HostTest(Krita.instance()))
