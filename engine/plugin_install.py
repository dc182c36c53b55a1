"""`sfumato plugins install HOST`: copy an editor plug-in and the shared thin client into place.

Each host has one installer function in INSTALLERS (host -> fn(dest) -> installed paths).
The installers also write `sfumato_install.json` next to the thin client, recording this
Python and (for a source checkout) the folder holding engine/, so that the plug-in can start
the engine (`python -m engine.cli serve`, when none answers at a local address) and its relay
fallback (`python -m engine.relay`) without any setting.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Callable

ENGINE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = ENGINE_DIR.parent
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")
START_HINT = ("The plug-in starts the engine with this Python when none answers at its local address "
              "(or start it yourself: `sfumato serve`).")


def plugins_dir() -> Path:
    """Where the plug-in sources live: plugins/ beside engine/ (a source checkout or an sdist)."""
    path = SOURCE_ROOT / "plugins"
    if not (path / "common" / "sfumato_link").is_dir():
        raise FileNotFoundError(f"plug-in files not found under {path}; install from a Sfumato source checkout")
    return path


def gimp_plugins_folder(home: Path | None = None, platform: str | None = None) -> Path:
    """GIMP 3's per-user plug-in folder on this OS: that of the newest GIMP 3.x that has run here
    (GIMP 3.2 keeps its profile in GIMP/3.2, 3.0 in GIMP/3.0), else GIMP/3.0."""
    platform = platform or sys.platform
    home = home or Path.home()
    if platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"
    elif platform == "darwin":
        base = home / "Library" / "Application Support" / "GIMP"
    else:
        config = Path(os.environ["XDG_CONFIG_HOME"]) if os.environ.get("XDG_CONFIG_HOME") else home / ".config"
        base = config / "GIMP"
    return base / _newest_gimp3(base) / "plug-ins"


def _newest_gimp3(base: Path) -> str:
    """'3.N' of the newest GIMP 3 profile folder under `base`; '3.0' when there is none."""
    found = [p.name for p in base.glob("3.*") if p.is_dir() and p.name[2:].isdigit()]
    return max(found, key=lambda name: int(name[2:]), default="3.0")


def engine_python_record() -> dict[str, str]:
    """What auto-start and the relay need: this Python, and the source root unless engine is pip-installed."""
    record = {"python": sys.executable}
    in_site = any(part in ("site-packages", "dist-packages") for part in ENGINE_DIR.parts)
    if not in_site:
        record["engine_root"] = str(SOURCE_ROOT)
    return record


def _replace_tree(src: Path, dst: Path, marker: str) -> None:
    """Copy src over dst; an existing dst is removed only if it holds `marker` (it is ours)."""
    if dst.exists():
        if not (dst / marker).exists():
            raise FileExistsError(f"{dst} exists and does not look like a Sfumato install; not touching it")
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=IGNORE)


def install_thin_client(target: Path) -> list[Path]:
    """Copy sfumato_link into `target` and record the engine's Python beside it."""
    src = plugins_dir() / "common" / "sfumato_link"
    dst = target / "sfumato_link"
    _replace_tree(src, dst, "__init__.py")
    info = target / "sfumato_install.json"
    info.write_text(json.dumps(engine_python_record(), indent=2) + "\n", encoding="utf-8")
    return [dst, info]


def install_gimp(dest: str | os.PathLike | None = None) -> list[Path]:
    """plug-ins/sfumato/{sfumato.py, sfumato_link/, _vendor/ if built, sfumato_install.json}."""
    src = plugins_dir() / "gimp" / "sfumato"
    folder = Path(dest).expanduser() if dest else gimp_plugins_folder()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "sfumato"
    _replace_tree(src, target, "sfumato.py")
    main = target / "sfumato.py"
    main.chmod(main.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    paths = [target, main, *install_thin_client(target)]
    vendor = target / "_vendor"
    if vendor.is_dir():
        paths.append(vendor)
    return paths


def install_krita(dest: str | os.PathLike | None = None) -> list[Path]:
    """pykrita/{sfumato.desktop, sfumato/}: see engine/plugin_krita.py."""
    from .plugin_krita import install_krita as run

    return run(dest)


def _krita_next_steps() -> str:
    from .plugin_krita import ENABLE_HINT

    return ENABLE_HINT


INSTALLERS: dict[str, Callable[[str | os.PathLike | None], list[Path]]] = {
    "gimp": install_gimp,
    "krita": install_krita,
}

NEXT_STEPS = {
    "gimp": "Restart GIMP 3; the operations are under Filters > Sfumato.",
    "krita": _krita_next_steps(),
}


def install(host: str, dest: str | None = None, out: Callable[[str], None] = print) -> list[str]:
    """Install the plug-in for `host` into `dest` (or the editor's user folder); return the paths written."""
    if host not in INSTALLERS:
        raise ValueError(f"unknown host {host!r}; choose one of: {', '.join(sorted(INSTALLERS))}")
    paths = INSTALLERS[host](dest)
    out(f"Installed the Sfumato {host} plug-in:")
    for path in paths:
        out(f"  {path}")
    record = engine_python_record()
    out(f"Auto-start and the relay fallback (for an editor Python without pyzmq) will use {record['python']}.")
    out(NEXT_STEPS.get(host, ""))
    out(START_HINT)
    return [str(p) for p in paths]
