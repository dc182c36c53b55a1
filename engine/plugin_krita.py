"""Install the Krita plug-in (its zip for "Import Python Plugin from File..." is engine/plugin_pack.py).

Krita loads `pykrita/NAME.desktop` next to the package `pykrita/NAME/`. The shared thin
client (plugins/common/sfumato_link) is copied *inside* the package, so the installed
plug-in needs nothing from this checkout; when the editor's Python lacks pyzmq/msgpack the
plug-in falls back to a relay run by the engine's Python, which `install` records in
`sfumato_install.json` next to the thin client.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

NAME = "sfumato"
ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "krita"
COMMON_DIR = ROOT / "plugins" / "common" / "sfumato_link"

ENABLE_HINT = (
    "Enable it: start Krita, tick \"Sfumato\" in Settings > Configure Krita > Python Plugin Manager, restart "
    "Krita, then show the panel with Settings > Dockers > Sfumato (or, with Krita closed, add "
    "`enable_sfumato=true` under [python] in kritarc).")


def default_dest() -> Path:
    """The user's pykrita folder on this platform."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "krita" / "pykrita"


def sources() -> tuple[Path, Path, Path]:
    package, desktop = PLUGIN_DIR / NAME, PLUGIN_DIR / f"{NAME}.desktop"
    for path in (package, desktop, COMMON_DIR):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: install the Krita plug-in from a Sfumato source checkout")
    return package, desktop, COMMON_DIR


def install_krita(dest: str | os.PathLike | None = None) -> list[Path]:
    """pykrita/{sfumato.desktop, sfumato/ (+ sfumato_link/, sfumato_install.json, _vendor/ if built)}.

    The installer behind `sfumato plugins install krita` (see engine/plugin_install.py).
    """
    from .plugin_install import _replace_tree, install_thin_client

    package, desktop, _ = sources()
    folder = Path(dest).expanduser() if dest else default_dest()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / NAME
    _replace_tree(package, target, "docker.py")
    shutil.copy2(desktop, folder / desktop.name)
    paths = [folder / desktop.name, target, *install_thin_client(target)]
    if (target / "_vendor").is_dir():
        paths.append(target / "_vendor")
    return paths
