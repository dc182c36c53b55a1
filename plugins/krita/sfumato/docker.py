"""The "Sfumato" docker: connection line, operation picker, parameters, Run/Cancel, progress, history.

It only draws and forwards: Run calls `runtime.run_op` (the same function the shortcut
actions call), and the panel redraws from the controller's `state` / `progress` /
`finished` notifications.
"""
from __future__ import annotations

import logging
from typing import Any

from krita import DockWidget

from . import runtime
from .bootstrap import link
from .controller import CONNECTING, ONLINE, STARTING, Controller, Running
from .ops import BY_KEY, OPS, engine_schema
from .qt import QtCore, QtGui, QtWidgets, Qt, enum
from .widgets import NodePicker, ParamForm, StatusLight, wrap_label

log = logging.getLogger("sfumato.krita")

DOCKER_ID = "sfumato_docker"
PREVIEW_SIDE = 192
DOCKERS: list["SfumatoDocker"] = []  # every panel made, so scripts and tests can reach them


def _qimage(w: int, h: int, rgba: bytes) -> QtGui.QImage:
    fmt = getattr(getattr(QtGui.QImage, "Format", QtGui.QImage), "Format_RGBA8888")
    return QtGui.QImage(rgba, w, h, w * 4, fmt).copy()  # copy: the QImage must own its bytes


class SfumatoDocker(DockWidget):
    """One panel per Krita window; all share `runtime.controller()`."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Sfumato")
        self.setObjectName(DOCKER_ID)
        self.ctrl: Controller = runtime.controller()
        self._form_welcome: Any = object()
        self._shown_run = ""
        self._build()
        self.ctrl.subscribe(self._on_controller)
        runtime.value_source = self.values_for
        self._refresh_connection()
        self._rebuild_form()
        self._refresh_history()
        DOCKERS.append(self)

    # --- layout ---------------------------------------------------------------------

    def _build(self) -> None:
        root = QtWidgets.QWidget(self)
        col = QtWidgets.QVBoxLayout(root)
        col.setContentsMargins(6, 6, 6, 6)

        line = QtWidgets.QHBoxLayout()
        self.light = StatusLight()
        self.address = QtWidgets.QLineEdit(self.ctrl.address)
        self.address.setToolTip("Engine address (start the engine with `sfumato serve`)")
        self.address.returnPressed.connect(self._reconnect)
        self.reconnect_button = QtWidgets.QPushButton("Reconnect")
        self.reconnect_button.clicked.connect(self._reconnect)
        line.addWidget(self.light)
        line.addWidget(self.address, 1)
        line.addWidget(self.reconnect_button)
        col.addLayout(line)
        keys = QtWidgets.QHBoxLayout()  # an engine served with keys (sfumato serve --keys)
        self.server_key = QtWidgets.QLineEdit(self.ctrl.settings.server_key)
        self.server_key.setPlaceholderText("engine key file (server.key)")
        self.client_key = QtWidgets.QLineEdit(self.ctrl.settings.client_key)
        self.client_key.setPlaceholderText("client key file (.key_secret)")
        for edit in (self.server_key, self.client_key):
            edit.setToolTip("Only for an engine served with keys: files from `sfumato keys`; empty = no keys")
            edit.returnPressed.connect(self._reconnect)
            keys.addWidget(edit, 1)
        col.addLayout(keys)
        self.engine_info = wrap_label()
        col.addWidget(self.engine_info)

        picker = QtWidgets.QHBoxLayout()
        picker.addWidget(QtWidgets.QLabel("Operation"))
        self.op_combo = QtWidgets.QComboBox()
        for op in OPS:
            self.op_combo.addItem(op.label, op.key)
        self.op_combo.currentIndexChanged.connect(self._rebuild_form)
        picker.addWidget(self.op_combo, 1)
        col.addLayout(picker)
        self.op_tip = wrap_label()
        col.addWidget(self.op_tip)

        self.form = ParamForm()
        col.addWidget(self.form)
        self.style_row = QtWidgets.QWidget()
        style_line = QtWidgets.QHBoxLayout(self.style_row)
        style_line.setContentsMargins(0, 0, 0, 0)
        self.style_path = QtWidgets.QLineEdit()
        self.style_path.setPlaceholderText("Style reference image file")
        browse = QtWidgets.QPushButton("...")
        browse.setToolTip("Choose a reference image")
        browse.clicked.connect(self._browse_style)
        style_line.addWidget(self.style_path, 1)
        style_line.addWidget(browse)
        col.addWidget(self.style_row)
        self.source_row = QtWidgets.QWidget()
        source_line = QtWidgets.QHBoxLayout(self.source_row)
        source_line.setContentsMargins(0, 0, 0, 0)
        source_line.addWidget(QtWidgets.QLabel("Copy from"))
        self.source_picker = NodePicker(runtime.source_candidates)
        self.source_picker.setToolTip("Where the fill may copy texture from: a layer (its opaque pixels) or a "
                                      "selection mask; Whole image = anywhere but the object")
        source_line.addWidget(self.source_picker, 1)
        col.addWidget(self.source_row)
        self.input_rows: dict[str, QtWidgets.QWidget] = {}  # an action's extra inputs (ground, reference)
        self.input_pickers: dict[str, NodePicker] = {}
        for name in dict.fromkeys(n for op in OPS for n in op.extra_inputs):
            row, picker = self._input_row(name)
            col.addWidget(row)
            self.input_rows[name], self.input_pickers[name] = row, picker

        buttons = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setMinimumHeight(36)
        font = self.run_button.font()
        font.setBold(True)
        if font.pointSizeF() > 0:  # -1 when the style sets a pixel size
            font.setPointSizeF(font.pointSizeF() * 1.2)
        self.run_button.setFont(font)
        self.run_button.clicked.connect(self.run_clicked)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setMinimumHeight(36)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        buttons.addWidget(self.run_button, 3)
        buttons.addWidget(self.cancel_button, 1)
        col.addLayout(buttons)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        col.addWidget(self.progress)
        self.stage = wrap_label()
        col.addWidget(self.stage)
        self.preview = QtWidgets.QLabel()
        self.preview.setAlignment(enum(Qt, "AlignmentFlag", "AlignCenter"))
        self.preview.setMinimumHeight(64)
        self.preview.setToolTip("Live preview from the engine")
        col.addWidget(self.preview)
        self.message = wrap_label()
        col.addWidget(self.message)

        col.addWidget(QtWidgets.QLabel("History (click to add as a layer)"))
        self.history = QtWidgets.QListWidget()
        self.history.setIconSize(QtCore.QSize(48, 48))
        self.history.setMaximumHeight(170)
        self.history.itemClicked.connect(self._history_clicked)
        col.addWidget(self.history)
        col.addStretch(1)

        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(root)
        self.setWidget(scroll)
        self._set_running(None)

    def _input_row(self, name: str) -> tuple[QtWidgets.QWidget, NodePicker]:
        """A row picking the layer for the engine input `name` (none = not sent)."""
        row = QtWidgets.QWidget()
        line = QtWidgets.QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(QtWidgets.QLabel(link.label(name)))
        picker = NodePicker(runtime.layer_candidates, none_label="None")
        line.addWidget(picker, 1)
        return row, picker

    # --- Krita hooks ----------------------------------------------------------------

    def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 (Krita's name)
        pass  # the panel reads the active document when Run is pressed

    # --- actions --------------------------------------------------------------------

    @property
    def op_key(self) -> str:
        return str(self.op_combo.currentData() or OPS[0].key)

    def select_op(self, key: str) -> None:
        index = self.op_combo.findData(key)
        if index >= 0:
            self.op_combo.setCurrentIndex(index)

    def values_for(self, key: str) -> tuple[dict[str, Any], str]:
        """Parameter values for `key` (the form's when it shows `key`, else defaults)."""
        if key == self.op_key:
            return self.current_values(), self.style_path.text().strip()
        return runtime.default_values(key), self.style_path.text().strip()

    def current_values(self) -> dict[str, Any]:
        """The form's values, with the node picked as the source (Remove)."""
        values = self.form.values()
        if BY_KEY[self.op_key].source_input:
            values["source"] = self.source_picker.node()
        if BY_KEY[self.op_key].extra_inputs:
            values["inputs"] = {name: self.input_pickers[name].node() for name in BY_KEY[self.op_key].extra_inputs}
        return values

    def run_clicked(self) -> Running | None:
        """Run the picked operation on the active layer/selection (the Run button)."""
        self.show_message("")
        try:
            run = runtime.run_op(self.op_key, self.current_values(), self.style_path.text().strip())
        except link.LinkError as exc:
            self.show_message(str(exc), error=True)
            return None
        except Exception as exc:  # a bug: say so in the panel, keep Krita running
            log.exception("sfumato run failed")
            self.show_message(f"Unexpected error: {exc}", error=True)
            return None
        self._set_running(run)
        return run

    def cancel_clicked(self) -> None:
        self.ctrl.cancel()

    def _reconnect(self) -> None:
        runtime.reconnect(self.address.text().strip() or None, self.server_key.text(), self.client_key.text())

    def _browse_style(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Style reference image", "",
                                                        "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)")
        if path:
            self.style_path.setText(path)

    def _history_clicked(self, item: QtWidgets.QListWidgetItem) -> None:
        entry = self.ctrl.history.get(int(item.data(enum(Qt, "ItemDataRole", "UserRole"))))
        if entry is None:
            return
        try:
            runtime.controller().host.reinsert(entry)
            self.show_message(f"Added {entry.group or entry.layers[0].name}.")
        except link.LinkError as exc:
            self.show_message(str(exc), error=True)
        except Exception as exc:
            log.exception("re-inserting a result failed")
            self.show_message(f"Could not add the result: {exc}", error=True)

    # --- redraw ---------------------------------------------------------------------

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #d9534f;" if error else "")

    def _on_controller(self, kind: str, data: Any) -> None:
        try:
            self._redraw(kind, data)
        except RuntimeError:  # Qt already deleted this panel's widgets (window closed)
            self.ctrl.unsubscribe(self._on_controller)

    def _redraw(self, kind: str, data: Any) -> None:
        if kind == "state":
            self._refresh_connection()
            if self.ctrl.welcome is not self._form_welcome:  # new schemas: redraw the form
                self._rebuild_form()
        elif kind == "progress":
            self._set_running(self.ctrl.current)
        elif kind == "message":
            self.show_message(str(data), error=True)
        elif kind == "finished":
            run: Running = data
            failed = run.job.state in ("error",) or (run.job.state == "done" and run.entry is None)
            self.show_message(run.message, error=failed)
            self._set_running(self.ctrl.current)
            if run.job.state == "done":
                self._refresh_history()

    def _refresh_connection(self) -> None:
        ctrl = self.ctrl
        self.light.set_state(ctrl.state)
        if self.address.text().strip() != ctrl.address and not self.address.hasFocus():
            self.address.setText(ctrl.address)
        if ctrl.state == ONLINE:
            models = ", ".join(m.get("name", "?") for m in ctrl.models) or "no models"
            via = f" via {ctrl.transport_kind}" if ctrl.transport_kind == "relay" else ""
            self.engine_info.setText(f"Engine {ctrl.welcome.get('engine', '?')} on {ctrl.device or '?'}{via} | "
                                     f"models: {models}")
            self.engine_info.setStyleSheet("")
        else:
            self.engine_info.setText(ctrl.message)
            self.engine_info.setStyleSheet("" if ctrl.state in (STARTING, CONNECTING) else "color: #d9534f;")
        self.run_button.setEnabled(ctrl.state == ONLINE)

    def _rebuild_form(self, *_: Any) -> None:
        ui = BY_KEY[self.op_key]
        self._form_welcome = self.ctrl.welcome
        schema = engine_schema(ui, self.ctrl.welcome)
        welcome = self.ctrl.welcome
        self.form.model_options = lambda name, values: link.model_choices(
            welcome, ui.engine_op, values.get("task"), values.get("scale"), param=name)
        if schema is None:
            self.form.build(ui.key, [])
            self.op_tip.setText(f"The connected engine does not offer {ui.engine_op}; update the engine.")
        else:
            self.form.build(ui.key, link.own_fields(ui, runtime.HOST) + link.shown_fields(ui, schema))
            self.op_tip.setText(ui.tip)
        self.style_row.setVisible(ui.style_input)
        self.source_row.setVisible(ui.source_input)
        if ui.source_input:
            self.source_picker.refresh()
        inputs = link.schema.op_inputs(ui.engine_op, self.ctrl.welcome) or {}
        for name, row in self.input_rows.items():
            row.setVisible(name in ui.extra_inputs and name in inputs)
            row.setToolTip(str(inputs.get(name, {}).get("doc") or ""))
            if name in ui.extra_inputs:
                self.input_pickers[name].refresh()

    def _set_running(self, run: Running | None) -> None:
        self.cancel_button.setEnabled(run is not None)
        if run is None:
            self.progress.setValue(0)
            self.progress.setFormat("idle")
            self.stage.setText("")
            return
        job = run.job
        if run.id != self._shown_run:  # a new job: forget the previous job's preview
            self._shown_run = run.id
            self.preview.clear()
        self.progress.setValue(int(job.fraction * 1000))
        if job.state in ("sent", "queued"):
            where = f" (position {job.position})" if job.position else ""
            self.progress.setFormat(f"queued{where}")
        else:
            self.progress.setFormat(f"{job.step}/{job.total}  %p%")
        label = BY_KEY[run.plan.ui.key].label
        self.stage.setText(run.message or f"{label}: {job.stage or job.state}")
        if run.preview_thumb is not None:
            w, h, rgba = run.preview_thumb
            pixmap = QtGui.QPixmap.fromImage(_qimage(w, h, rgba))
            self.preview.setPixmap(pixmap.scaled(PREVIEW_SIDE, PREVIEW_SIDE,
                                                 enum(Qt, "AspectRatioMode", "KeepAspectRatio"),
                                                 enum(Qt, "TransformationMode", "SmoothTransformation")))

    def _refresh_history(self) -> None:
        self.history.clear()
        for entry in self.ctrl.history:
            item = QtWidgets.QListWidgetItem(entry.group or entry.label)
            item.setData(enum(Qt, "ItemDataRole", "UserRole"), entry.id)
            if entry.thumb is not None:
                w, h, rgba = entry.thumb
                item.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(_qimage(w, h, rgba))))
            self.history.addItem(item)

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self.ctrl.unsubscribe(self._on_controller)
        if runtime.value_source == self.values_for:
            runtime.value_source = None
        super().closeEvent(event)
