"""The Krita plug-in's Qt6 code path (Krita 6 uses PyQt6), outside Krita: the binding shim
picks PyQt6, the docker's widgets build and read back every operation's form, and every Qt
enum the plug-in names through `enum()` exists in PyQt6. Krita 6 itself is tested by
tests/hosts/krita_host_test.sh --krita6 where a Debian suite packages it."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

QtWidgets = pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is not installed (pip install PyQt6)")
from PyQt6 import QtCore, QtGui  # noqa: E402

PKG_DIR = Path(__file__).resolve().parents[1] / "plugins" / "krita" / "sfumato"
NAME = "sfumato_krita_qt6"


@pytest.fixture(scope="module")
def plugin():
    """The plug-in package under its own name, imported after PyQt6 (as inside Krita 6)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    spec = importlib.util.spec_from_file_location(NAME, PKG_DIR / "__init__.py",
                                                  submodule_search_locations=[str(PKG_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    spec.loader.exec_module(module)
    yield module, app
    for key in [k for k in sys.modules if k == NAME or k.startswith(NAME + ".")]:
        del sys.modules[key]


def test_the_shim_follows_pyqt6(plugin):
    qt = importlib.import_module(f"{NAME}.qt")
    assert qt.BINDING == "PyQt6" and qt.QT6 and qt.QtWidgets is QtWidgets
    assert qt.enum(qt.Qt, "AlignmentFlag", "AlignCenter") == QtCore.Qt.AlignmentFlag.AlignCenter
    box = QtWidgets.QMessageBox()
    QtCore.QTimer.singleShot(0, box.accept)
    qt.exec_(box)  # `exec_` is gone in PyQt6; the shim calls `exec`


def test_every_operation_form_builds_and_reads_back(plugin):
    widgets = importlib.import_module(f"{NAME}.widgets")
    ops = importlib.import_module(f"{NAME}.ops")
    link = importlib.import_module(f"{NAME}.bootstrap").link
    form = widgets.ParamForm()
    for ui in ops.OPS:
        schema = ops.engine_schema(ui, None) or {}
        fields = link.own_fields(ui) + link.shown_fields(ui, schema)
        form.build(ui.key, fields)
        values = form.values()
        assert set(values) == {name for name, _ in fields}, ui.key
        for name, spec in fields:
            default = spec.get("default")
            if spec.get("type") in ("int", "float") and default is not None:
                assert values[name] == pytest.approx(default), (ui.key, name)
    light = widgets.StatusLight()
    for state in widgets.StatusLight.COLOURS:
        light.set_state(state)
        assert light.toolTip() == state
    label = widgets.wrap_label("text")
    assert label.textInteractionFlags() & QtCore.Qt.TextInteractionFlag.TextSelectableByMouse


def _enum_calls(path: Path) -> list[tuple[str, str, str]]:
    """(owner, scope, name) of each `enum(OWNER, "Scope", "Name")` call with literal names."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "enum" and len(node.args) == 3:
            owner, scope, name = node.args
            if isinstance(scope, ast.Constant) and isinstance(name, ast.Constant):
                calls.append((ast.unparse(owner), scope.value, name.value))
    return calls


def test_every_enum_the_plugin_names_exists_in_pyqt6():
    """The docker and its dialogs cannot run outside Krita; their Qt enums are checked here."""
    scope = {"Qt": QtCore.Qt, "QtCore": QtCore, "QtGui": QtGui, "QtWidgets": QtWidgets}
    calls = [(path.name, *call) for path in sorted(PKG_DIR.glob("*.py")) for call in _enum_calls(path)
             if call[0].split(".")[0] in scope]  # Krita's own enums: the Krita 6 host test
    assert len(calls) > 5
    missing = [c for c in calls if not hasattr(getattr(eval(c[1], {}, scope), c[2], None), c[3])]  # noqa: S307
    assert not missing, missing
