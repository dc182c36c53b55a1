"""One controller per Krita process, the QTimer that polls it, and `run_op`: what Run and the actions call.

The pump polls fast (40 ms) while something is in flight and slowly (500 ms) when idle;
each poll reads only what has already arrived, so Krita's event loop never waits on the
engine. Dockers in several windows share the same controller, jobs and history.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from .bootstrap import link
from .controller import ONLINE, Controller, Running
from .document import KritaHost, krita, load_style_image, plan_for
from .document import layer_candidates as layer_candidates_of
from .document import source_candidates as source_candidates_of
from .ops import BY_KEY, engine_schema
from .qt import QtCore, QTimer
from .request import max_pixels_from

log = logging.getLogger("sfumato.krita")

FAST_MS, IDLE_MS = 40, 500
SETTINGS_GROUP, SETTINGS_KEY = "sfumato", "settings"
HOST = "krita"  # which of the actions' own fields this editor shows (sfumato_link.own_fields)

_controller: Controller | None = None
_pump: "Pump | None" = None
# the docker that last had focus supplies the parameter values for shortcut actions
value_source: Callable[[str], tuple[dict[str, Any], str]] | None = None


class Pump(QtCore.QObject):
    """Polls the controller from Krita's event loop."""

    def __init__(self, controller: Controller):
        super().__init__()
        self.controller = controller
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.timer.start(IDLE_MS)

    def tick(self) -> None:
        try:
            busy = self.controller.poll()
        except Exception:  # never let an exception escape into Krita's event loop
            log.exception("sfumato poll failed")
            busy = False
        interval = FAST_MS if busy else IDLE_MS
        if self.timer.interval() != interval:
            self.timer.setInterval(interval)

    def hurry(self) -> None:
        self.timer.setInterval(FAST_MS)


def _load_store() -> str:
    return str(krita().readSetting(SETTINGS_GROUP, SETTINGS_KEY, "") or "")


def _save_store(text: str) -> None:
    krita().writeSetting(SETTINGS_GROUP, SETTINGS_KEY, text)


def controller() -> Controller:
    """The shared controller; created, connected and pumped on first use."""
    global _controller, _pump
    if _controller is None:
        _controller = Controller(KritaHost(), _load_store, _save_store, client="krita")
        _pump = Pump(_controller)
        _controller.connect()
        _pump.hurry()
    return _controller


def shutdown() -> None:
    """Krita is closing: stop polling, cancel this process's jobs on the engine, close the socket."""
    global _controller, _pump
    if _pump is not None:
        _pump.timer.stop()
    if _controller is not None:
        _controller.clear_listeners()  # the panels' widgets may already be gone
        try:
            _controller.close(cancel_jobs=True)
        except Exception:
            log.exception("closing the Sfumato connection failed")
    _controller, _pump = None, None


def reconnect(address: str | None = None, server_key: str | None = None, client_key: str | None = None) -> None:
    controller().connect(address, server_key, client_key)
    if _pump is not None:
        _pump.hurry()


def default_values(key: str) -> dict[str, Any]:
    ui = BY_KEY[key]
    schema = engine_schema(ui, controller().welcome) or {}
    fields = link.own_fields(ui, HOST) + link.shown_fields(ui, schema)
    return {name: spec.get("default") for name, spec in fields}


def run_op(key: str, values: dict[str, Any] | None = None, style_path: str = "") -> Running:
    """Read the active layer and selection, submit `key`'s job; raises LinkError with the sentence to show.

    `values` may hold, besides the form's fields, "source": the node picked as Remove's source, and
    "inputs": {input name: node or None}, the layers picked for the action's extra inputs."""
    ctrl = controller()
    ui = BY_KEY[key]
    if ctrl.state != ONLINE:
        raise link.LinkError(link.ENGINE_UNREACHABLE, ctrl.message, address=ctrl.address)
    schema = engine_schema(ui, ctrl.welcome)
    if schema is None:
        raise link.LinkError("unknown_op", "", op=ui.engine_op)
    if values is None:
        values, style_path = value_source(key) if value_source is not None else (default_values(key), "")
    try:
        params = link.build_params(ui, values, schema)
        own = link.own_values(ui, values, HOST)
    except ValueError as exc:
        raise link.LinkError("bad_param", str(exc)) from None
    style = None
    if ui.style_input and not params.get("style_model") and style_path:
        style = load_style_image(style_path)
    plan, target = plan_for(ui, params, style, max_pixels_from(ctrl.welcome), own=own,
                            source=values.get("source") if ui.source_input else None, inputs=values.get("inputs"))
    run = ctrl.submit(plan, target)
    if _pump is not None:
        _pump.hurry()
    return run


def source_candidates() -> list[Any]:
    """The active image's layers and selection masks (Remove's source picker); [] without an image."""
    doc = krita().activeDocument()
    return source_candidates_of(doc) if doc is not None else []


def layer_candidates() -> list[Any]:
    """The active image's paint layers (the pickers for a ground or a palette reference); [] without an image."""
    doc = krita().activeDocument()
    return layer_candidates_of(doc) if doc is not None else []


def notify(message: str) -> None:
    """Show a short message on the canvas (for shortcut actions when no docker is open)."""
    try:
        window = krita().activeWindow()
        view = window.activeView() if window is not None else None
        if view is not None:
            from .qt import QtGui

            view.showFloatingMessage(message, QtGui.QIcon(), 6000, 1)
    except Exception:
        log.exception("could not show a message")
