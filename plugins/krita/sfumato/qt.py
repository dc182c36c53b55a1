"""The Qt binding Krita itself uses: PyQt5 for Krita 5, PyQt6 for Krita 6.

Importing the other binding into Krita's process would load a second Qt and crash, so the
choice follows what `krita` already pulled in, then Krita's version, then what imports.
Enums are read through `enum()`, which accepts both the scoped (PyQt6) and flat (PyQt5) names.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from .bootstrap import choose_binding


def _krita_version() -> str | None:
    try:
        from krita import Krita

        return str(Krita.instance().version())
    except Exception:
        return None


def _load(binding: str) -> tuple[ModuleType, ModuleType, ModuleType]:
    core = importlib.import_module(f"{binding}.QtCore")
    gui = importlib.import_module(f"{binding}.QtGui")
    widgets = importlib.import_module(f"{binding}.QtWidgets")
    return core, gui, widgets


BINDING = choose_binding(krita_version=_krita_version())
try:
    QtCore, QtGui, QtWidgets = _load(BINDING)
except ImportError:  # outside Krita with only the other binding installed
    BINDING = "PyQt6" if BINDING == "PyQt5" else "PyQt5"
    QtCore, QtGui, QtWidgets = _load(BINDING)

QT6 = BINDING == "PyQt6"
Qt = QtCore.Qt
QTimer = QtCore.QTimer
Signal = QtCore.pyqtSignal


def enum(owner: Any, scope: str, name: str) -> Any:
    """`enum(Qt, "AlignmentFlag", "AlignCenter")` on either binding."""
    scoped = getattr(owner, scope, None)
    if scoped is not None and hasattr(scoped, name):
        return getattr(scoped, name)
    return getattr(owner, name)


def exec_(obj: Any, *args: Any) -> Any:
    """QDialog/QMenu exec on both bindings (`exec_` is gone in PyQt6)."""
    return getattr(obj, "exec", None)(*args) if hasattr(obj, "exec") else obj.exec_(*args)
