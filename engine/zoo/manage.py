"""Install and inspect checkpoint files in a models folder (`sfumato models add | info`).

A file is installed only after it has been read and detected: it is copied beside its final
name and renamed into place, so the folder never holds a half-copied or unusable checkpoint.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .checkpoint import SIDECAR, SUFFIXES, CheckpointError, load

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def check_name(name: str) -> str:
    if not NAME.match(name) or name.endswith(SUFFIXES + (SIDECAR,)):
        raise CheckpointError(f"model name {name!r}: use letters, digits, '.', '_' and '-' (no path, no suffix)")
    return name


def installed(models_dir: Path, name: str) -> Path | None:
    """The checkpoint file of a zoo model, or None."""
    return next((p for p in (models_dir / (name + s) for s in SUFFIXES) if p.is_file()), None)


def add(models_dir: Path, source: Path, name: str | None = None, license: str | None = None,
        homepage: str | None = None) -> dict:
    """Detect `source`, then install it as NAME with its suffix; returns its description."""
    source = Path(source)
    name = check_name(name or source.stem)
    if installed(models_dir, name) or (models_dir / name).exists():
        raise CheckpointError(f"a model named {name!r} is already installed; pick another --name or remove it")
    info = load(source).info  # refuses pickles and unknown architectures before anything is written
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / (name + source.suffix.lower())
    tmp = models_dir / f".{name}.partial"
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {k: v for k, v in (("license", license), ("homepage", homepage)) if v}
    if meta:
        target.with_suffix(SIDECAR).write_text(json.dumps(meta, indent=2) + "\n")
    return {**info, **meta, "name": name, "file": target.name}


def info(models_dir: Path, name: str) -> dict:
    path = installed(models_dir, check_name(name))
    if path is None:
        raise CheckpointError(f"no checkpoint named {name!r} in the models folder")
    return {"name": name, "file": path.name, **load(path).info}
