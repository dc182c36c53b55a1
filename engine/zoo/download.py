"""`sfumato models get | rm`: install checkpoints from a pinned catalogue, verified, atomically.

The catalogue (catalog.json beside this module, or `--catalog FILE|URL` with the same format)
pins each model's file: URL, size and sha256. A download goes to `.downloads/` inside the
models folder; an interrupted one is resumed from there with an HTTP range request. Only a
file of the pinned size and hash that loads as a checkpoint is renamed into place, so a
failure never leaves a half-installed model. Non-commercial licences need `accept_license`.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from .checkpoint import SIDECAR, SUFFIXES, CheckpointError, load
from .manage import check_name, installed

CATALOG = Path(__file__).with_name("catalog.json")
FORMAT = "sfumato-catalog-v1"
PARTIAL_DIR = ".downloads"
CHUNK = 1 << 16
Progress = Callable[[int, int], None] | None


class DownloadError(RuntimeError):
    """A download or install that did not complete; the models folder holds no new model."""


def load_catalog(source: str | Path | None = None, timeout: float = 30.0) -> dict[str, dict]:
    """The catalogue's models by name, from the shipped file, a file or an http(s) URL."""
    src = str(source) if source else str(CATALOG)
    try:
        if src.startswith(("http://", "https://")):
            with urllib.request.urlopen(src, timeout=timeout) as resp:
                data = json.loads(resp.read())
        else:
            data = json.loads(Path(src).read_text())
    except (OSError, ValueError) as exc:
        raise DownloadError(f"catalogue {src} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
        raise DownloadError(f"catalogue {src} is not a {FORMAT} catalogue")
    for name, entry in data["models"].items():
        f = entry.get("file") if isinstance(entry, dict) else None
        if not (isinstance(f, dict) and isinstance(f.get("url"), str) and isinstance(f.get("size"), int)
                and isinstance(f.get("sha256"), str) and f.get("suffix") in SUFFIXES):
            raise DownloadError(f"catalogue {src}: entry {name!r} needs file.url, size, sha256 and suffix")
    return data["models"]


def entry_of(catalog: dict[str, dict], name: str) -> dict:
    if name not in catalog:
        raise DownloadError(f"{name!r} is not in the catalogue; it has: {', '.join(sorted(catalog)) or 'nothing'}")
    return catalog[name]


def licence_note(entry: dict) -> str:
    kind = "" if entry.get("commercial", False) else " (non-commercial use only)"
    return f"licence: {entry.get('license', 'unknown')}{kind}; see {entry.get('homepage', 'the model page')}"


def _fetch(url: str, partial: Path, size: int, progress: Progress, timeout: float) -> None:
    """Download into `partial`, resuming from its current length when the server allows it."""
    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()
        have = 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            mode = "ab" if have and resp.status == 206 else "wb"
            done = have if mode == "ab" else 0
            sent = int(resp.headers.get("Content-Length") or -1)
            start = done
            with open(partial, mode) as out:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, size)
            if 0 <= done - start < sent:  # the connection closed before the announced length
                raise http.client.IncompleteRead(b"", sent - (done - start))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, reset, cut short
        got = partial.stat().st_size if partial.exists() else 0
        if not got:
            partial.unlink(missing_ok=True)
            _tidy(partial.parent)
        hint = f"; {got} of {size} bytes kept, run the command again to resume" if got else ""
        raise DownloadError(f"{url}: download failed ({getattr(exc, 'reason', None) or exc!r}){hint}") from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def get(models_dir: Path, name: str, catalog: dict[str, dict], accept_license: bool = False,
        progress: Progress = None, timeout: float = 30.0) -> Path:
    """Download, verify and install NAME; returns the installed file."""
    check_name(name)
    entry = entry_of(catalog, name)
    if not entry.get("commercial", False) and not accept_license:
        raise DownloadError(f"{name}: {licence_note(entry)}; pass --accept-license to accept it")
    if installed(models_dir, name) or (models_dir / name).exists():
        raise DownloadError(f"{name} is already installed; remove it first (sfumato models rm {name})")
    f = entry["file"]
    partial_dir = models_dir / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    partial = partial_dir / (name + f["suffix"])
    _fetch(f["url"], partial, f["size"], progress, timeout)
    got = partial.stat().st_size
    if got != f["size"] or _sha256(partial) != f["sha256"].lower():
        partial.unlink()
        _tidy(partial_dir)
        what = f"{got} bytes instead of {f['size']}" if got != f["size"] else "its sha256 differs from the catalogue's"
        raise DownloadError(f"{name}: the downloaded file is wrong ({what}); nothing was installed")
    try:
        load(partial)
    except CheckpointError as exc:
        partial.unlink()
        _tidy(partial_dir)
        raise DownloadError(f"{name}: the verified file does not load: {exc}") from exc
    target = models_dir / (name + f["suffix"])
    meta = {k: entry[k] for k in ("license", "homepage") if entry.get(k)}
    target.with_suffix(SIDECAR).write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(partial, target)
    _tidy(partial_dir)
    return target


def _tidy(partial_dir: Path) -> None:
    try:
        partial_dir.rmdir()  # only when empty: other downloads' partial files stay
    except OSError:
        pass


def remove(models_dir: Path, name: str) -> Path:
    """Delete an installed checkpoint and its sidecar."""
    path = installed(models_dir, check_name(name))
    if path is None:
        raise DownloadError(f"no checkpoint named {name!r} in the models folder")
    path.with_suffix(SIDECAR).unlink(missing_ok=True)
    path.unlink()
    return path
