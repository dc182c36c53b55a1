"""`sfumato plugins pack krita|gimp`: a zip in the layout each editor installs from.

- krita: `sfumato.desktop` and the package `sfumato/` at the top, what Krita's
  *Tools > Scripts > Import Python Plugin from File...* looks for; the thin client sits
  inside the package (`sfumato/sfumato_link/`).
- gimp: one folder `sfumato/` holding `sfumato.py` (executable), `sfumato_gimp/` and
  `sfumato_link/`, to unpack into GIMP 3's plug-ins folder (folder name = file stem).

Both carry `sfumato_install.json` beside the thin client, recording the Python that ran
`pack` (and the source root), so that on this machine the plug-in's first run finds the
engine's interpreter for auto-start and the relay; elsewhere it falls back to `python3`
on PATH, and the Engine Python setting or SFUMATO_PYTHON names another one.
"""
from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Callable

from .plugin_install import engine_python_record, plugins_dir
from .plugin_krita import NAME, sources as krita_sources

INSTALL_FILE = "sfumato_install.json"  # the name sfumato_link.settings reads
EXECUTABLE = (stat.S_IFREG | 0o755) << 16  # zip external attributes of an executable file
SKIP_SUFFIXES = (".pyc", ".pyo")

HOW_TO = {
    "krita": "in Krita use Tools > Scripts > Import Python Plugin from File..., restart Krita, then "
             "Settings > Dockers > Sfumato",
    "gimp": "unpack it into GIMP 3's plug-ins folder (Edit > Preferences > Folders > Plug-ins lists them), "
            "so that plug-ins/sfumato/sfumato.py exists, and restart GIMP",
}


def _zip_tree(zf: zipfile.ZipFile, src: Path, arc: str, executable: tuple[str, ...] = ()) -> None:
    """Add `src` as `arc/` with an entry per folder (Krita's importer looks for the folder entry)."""
    zf.writestr(zipfile.ZipInfo(arc + "/"), b"")
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.suffix in SKIP_SUFFIXES:
            continue
        name = f"{arc}/{rel.as_posix()}"
        if path.is_dir():
            zf.writestr(zipfile.ZipInfo(name + "/"), b"")
        elif rel.as_posix() in executable:
            info = zipfile.ZipInfo.from_file(path, name)
            info.external_attr = EXECUTABLE
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
        else:
            zf.write(path, name)


def _record(zf: zipfile.ZipFile, arc: str) -> None:
    zf.writestr(f"{arc}/{INSTALL_FILE}", json.dumps(engine_python_record(), indent=2) + "\n")


def pack_krita(zf: zipfile.ZipFile) -> None:
    package, desktop, common = krita_sources()
    zf.write(desktop, desktop.name)
    _zip_tree(zf, package, NAME)
    _zip_tree(zf, common, f"{NAME}/sfumato_link")
    _record(zf, NAME)


def pack_gimp(zf: zipfile.ZipFile) -> None:
    root = plugins_dir()
    _zip_tree(zf, root / "gimp" / "sfumato", "sfumato", executable=("sfumato.py",))
    _zip_tree(zf, root / "common" / "sfumato_link", "sfumato/sfumato_link")
    _record(zf, "sfumato")


PACKERS: dict[str, Callable[[zipfile.ZipFile], None]] = {"krita": pack_krita, "gimp": pack_gimp}


def pack(host: str, out: str | os.PathLike, log: Callable[[str], None] = print) -> Path:
    """Write `host`'s zip to `out`; returns its path."""
    if host not in PACKERS:
        raise ValueError(f"unknown host {host!r}; choose one of: {', '.join(sorted(PACKERS))}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        PACKERS[host](zf)
    log(f"wrote {out}: {HOW_TO[host]}")
    return out
