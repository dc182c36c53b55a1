"""Find the plug-in's dependencies before anything imports them.

Installed, the thin client lives inside this package (`sfumato/sfumato_link`) and optional
pyzmq/msgpack builds live in `sfumato/_vendor/<tag>`, one folder per Python ABI. In a source
checkout the thin client is `plugins/common/sfumato_link`. Only the vendored folder that
matches the running Python goes on `sys.path`: a build for another ABI would break imports.
The Qt binding is chosen here too (see qt.py), as a pure function tests can call.
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def vendor_tags(version: tuple[int, int] | None = None) -> list[str]:
    """Folder names under _vendor/ usable by this Python, most specific first."""
    major, minor = version or sys.version_info[:2]
    tags = [f"cp{major}{minor}"]
    if (major, minor) >= (3, 12):
        tags.append("abi3")  # pyzmq's abi3 wheel covers CPython 3.12 and later
    tags.append(f"py{major}")  # pure-Python packages (msgpack built with MSGPACK_PUREPYTHON=1)
    return tags  # the same folder names as the GIMP plug-in, so one vendoring recipe serves both


def add_vendor_paths(package_dir: str = HERE) -> list[str]:
    """Put the matching _vendor/<tag> folders on sys.path; return what was added."""
    added = []
    for tag in vendor_tags():
        folder = os.path.join(package_dir, "_vendor", tag)
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.append(folder)  # after system packages: a working system pyzmq wins
            added.append(folder)
    return added


def load_link() -> ModuleType:
    """The thin client: the copy inside this package, else the source checkout's."""
    add_vendor_paths()
    try:
        return importlib.import_module(f"{__package__ or 'sfumato'}.sfumato_link")
    except ImportError:
        pass
    common = os.path.join(os.path.dirname(os.path.dirname(HERE)), "common")
    if os.path.isdir(os.path.join(common, "sfumato_link")) and common not in sys.path:
        sys.path.insert(0, common)
    return importlib.import_module("sfumato_link")


def choose_binding(modules: dict[str, Any] | None = None, krita_version: str | None = None) -> str:
    """'PyQt6' or 'PyQt5': the one already loaded, else by Krita's major version, else PyQt5."""
    modules = sys.modules if modules is None else modules
    if "PyQt6.QtCore" in modules:
        return "PyQt6"
    if "PyQt5.QtCore" in modules:
        return "PyQt5"
    if krita_version and krita_version.split(".", 1)[0].isdigit() and int(krita_version.split(".", 1)[0]) >= 6:
        return "PyQt6"
    return "PyQt5"


link = load_link()
