"""Small Qt widgets for the docker: a parameter form built from the engine's schema, a status light.

Model parameters are pickers filled from the engine's `welcome` (sfumato_link.model_choices):
restore's list follows its task and scale, so an x4 upscaler shows up for upscale x4 only.

The form remembers values per operation while the panel lives, so switching from Inpaint
to Restore and back keeps what the artist typed.
"""
from __future__ import annotations

from typing import Any, Callable

from .bootstrap import link
from .qt import QtWidgets, enum, Qt

NULL_TEXT = {"seed": "random"}  # what the lowest value of a nullable number shows; "auto" otherwise


class ParamForm(QtWidgets.QWidget):
    """A QFormLayout of widgets for [(name, spec)]; `values()` reads them back."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._layout = QtWidgets.QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._widgets: dict[str, tuple[QtWidgets.QWidget, dict[str, Any]]] = {}
        self._memory: dict[str, dict[str, Any]] = {}
        self._key = ""
        # (parameter, the form's values so far) -> [(value, label)] for a model picker; set by the
        # docker from the engine's welcome (sfumato_link.model_choices)
        self.model_options: Callable[[str, dict[str, Any]], list[tuple[Any, str]]] | None = None

    def build(self, key: str, fields: list[tuple[str, dict[str, Any]]]) -> None:
        """Replace the form with widgets for `fields`, restoring what was set for `key` before."""
        if self._key:
            self._memory[self._key] = self.values()
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._widgets.clear()
        self._key = key
        remembered = self._memory.get(key, {})
        for name, spec in fields:
            widget = self._make(name, spec)
            self._set(widget, spec, remembered.get(name, spec.get("default")))
            tip = spec.get("doc") or ""
            if tip:
                widget.setToolTip(tip)
            self._layout.addRow(link.label(name), widget)
            self._widgets[name] = (widget, spec)
        for name, (widget, spec) in self._widgets.items():  # restore's task and scale narrow its model list
            if spec.get("type") != "model" and isinstance(widget, QtWidgets.QComboBox):
                widget.currentIndexChanged.connect(self.refresh_models)
                if widget.isEditable():
                    widget.editTextChanged.connect(self.refresh_models)

    def _make(self, name: str, spec: dict[str, Any]) -> QtWidgets.QWidget:
        kind = spec.get("type")
        nullable = bool(spec.get("nullable"))
        if kind == "bool":
            return QtWidgets.QCheckBox()
        if kind == "int":
            box = QtWidgets.QSpinBox()
            lo = int(spec.get("min") if spec.get("min") is not None else 0)
            hi = int(min(spec.get("max") if spec.get("max") is not None else 10**6, 2**31 - 1))
            box.setRange(lo - 1 if nullable else lo, hi)  # one below the range means null
            if nullable:
                box.setSpecialValueText(NULL_TEXT.get(name, "auto"))
            return box
        if kind == "float":
            box = QtWidgets.QDoubleSpinBox()
            lo = float(spec.get("min") if spec.get("min") is not None else 0.0)
            hi = float(spec.get("max") if spec.get("max") is not None else 1000.0)
            box.setDecimals(2)
            step = 0.05 if hi - lo <= 2 else 0.5
            box.setSingleStep(step)
            box.setRange(lo - step if nullable else lo, hi)
            if nullable:
                box.setSpecialValueText(NULL_TEXT.get(name, "auto"))
            return box
        combo = QtWidgets.QComboBox()
        if link.schema.choices(spec):
            for value, text in link.options(name, spec):
                combo.addItem(text, value)
        else:  # free text with suggestions
            combo.setEditable(True)
            if kind == "model":
                options = self._model_options(name, spec)
            else:  # typed over, so the values themselves
                options = [(value, str(value)) for value, _ in link.options(name, spec)]
            for value, text in options:
                combo.addItem(text, value)
        return combo

    def _model_options(self, name: str, spec: dict[str, Any]) -> list[tuple[Any, str]]:
        values = {n: self._value(w, s) for n, (w, s) in self._widgets.items()}
        options = self.model_options(name, values) if self.model_options else []
        return options or [(str(spec.get("default") or ""), str(spec.get("default") or ""))]

    def refresh_models(self, *_: Any) -> None:
        """Refill the model pickers for the form's current values (e.g. restore's task and scale),
        keeping each one's model while it is still offered."""
        for name, (widget, spec) in self._widgets.items():
            if spec.get("type") != "model" or not isinstance(widget, QtWidgets.QComboBox):
                continue
            current = self._value(widget, spec)
            options = self._model_options(name, spec)
            if [(widget.itemData(i), widget.itemText(i)) for i in range(widget.count())] == options:
                continue
            widget.blockSignals(True)
            widget.clear()
            for value, text in options:
                widget.addItem(text, value)
            widget.blockSignals(False)
            self._set(widget, spec, link.models.pick(options, current, spec.get("default")))

    def model_items(self, name: str = "model") -> list[tuple[Any, str]]:
        """(value, label) of the picker for `name` as shown now (scripts and tests)."""
        widget = self._widgets.get(name, (None, None))[0]
        if not isinstance(widget, QtWidgets.QComboBox):
            return []
        return [(widget.itemData(i), widget.itemText(i)) for i in range(widget.count())]

    @staticmethod
    def _set(widget: QtWidgets.QWidget, spec: dict[str, Any], value: Any) -> None:
        if isinstance(widget, QtWidgets.QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QtWidgets.QSpinBox):
            widget.setValue(widget.minimum() if value is None else int(value))
        elif isinstance(widget, QtWidgets.QDoubleSpinBox):
            widget.setValue(widget.minimum() if value is None else float(value))
        elif isinstance(widget, QtWidgets.QComboBox):
            index = widget.findData(value)
            if index < 0 and value is not None:
                index = widget.findText(str(value))
            if index >= 0:
                widget.setCurrentIndex(index)
            elif widget.isEditable():
                widget.setEditText("" if value is None else str(value))

    def values(self) -> dict[str, Any]:
        return {name: self._value(widget, spec) for name, (widget, spec) in self._widgets.items()}

    @staticmethod
    def _value(widget: QtWidgets.QWidget, spec: dict[str, Any]) -> Any:
        if isinstance(widget, QtWidgets.QCheckBox):
            return widget.isChecked()
        if isinstance(widget, (QtWidgets.QSpinBox, QtWidgets.QDoubleSpinBox)):
            at_null = spec.get("nullable") and widget.value() == widget.minimum()
            return None if at_null else widget.value()
        if isinstance(widget, QtWidgets.QComboBox):
            if widget.isEditable():
                text = widget.currentText()
                data = widget.itemData(widget.currentIndex())
                return data if data is not None and widget.itemText(widget.currentIndex()) == text else text
            return widget.currentData()
        return None

    def set_value(self, name: str, value: Any) -> None:
        if name in self._widgets:
            widget, spec = self._widgets[name]
            self._set(widget, spec, value)


class NodePicker(QtWidgets.QComboBox):
    """Picks a layer or selection mask of the active image (Remove's source); the list is read
    again each time it opens, so it follows the Layers docker. Item 0 = none (the whole image)."""

    NONE = "Whole image"

    def __init__(self, list_nodes: Any, parent: Any = None, none_label: str = NONE):
        super().__init__(parent)
        self.none_label = none_label  # item 0: no node
        self._list_nodes = list_nodes  # () -> the candidate nodes
        self._nodes: list[Any] = []
        self.refresh()

    def refresh(self) -> None:
        current = self.node()
        try:
            self._nodes = list(self._list_nodes())
        except Exception:  # no image open, or it was just closed
            self._nodes = []
        self.clear()
        self.addItem(self.none_label)
        for node in self._nodes:
            self.addItem(f"{node.name()} ({'selection' if 'mask' in node.type() else 'layer'})")
        if current is not None and current in self._nodes:
            self.setCurrentIndex(self._nodes.index(current) + 1)

    def showPopup(self) -> None:  # noqa: N802 (Qt's name)
        self.refresh()
        super().showPopup()

    def node(self) -> Any:
        i = self.currentIndex()
        return self._nodes[i - 1] if 0 < i <= len(self._nodes) else None

    def pick(self, name: str) -> bool:
        """Select the first node called `name` (scripts and tests)."""
        self.refresh()
        for i, node in enumerate(self._nodes):
            if node.name() == name:
                self.setCurrentIndex(i + 1)
                return True
        return False


class StatusLight(QtWidgets.QLabel):
    """A coloured dot: green online, amber starting or connecting, red down, grey offline."""

    COLOURS = {"online": "#3bb143", "starting": "#e0a800", "connecting": "#e0a800", "down": "#d9534f",
               "offline": "#8a8a8a"}

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.setFixedSize(12, 12)
        self.set_state("offline")

    def set_state(self, state: str) -> None:
        colour = self.COLOURS.get(state, "#8a8a8a")
        self.setStyleSheet(f"background-color: {colour}; border-radius: 6px;")
        self.setToolTip(state)


def wrap_label(text: str = "") -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(enum(Qt, "TextInteractionFlag", "TextSelectableByMouse"))
    return label
