"""Plug-in settings: engine address, the engine's Python (for the relay and auto-start),
transport choice, whether to start a local engine and keep it running, and the two key files
for an engine served with keys.

Precedence, lowest first: built-in defaults, the file written by `sfumato plugins install`
(`sfumato_install.json` next to this package), what the editor stored (a GIMP parasite,
Krita's settings), then environment variables SFUMATO_ENGINE, SFUMATO_PYTHON,
SFUMATO_ENGINE_ROOT, SFUMATO_TRANSPORT, SFUMATO_SERVER_KEY and SFUMATO_CLIENT_KEY.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
INSTALL_FILE = "sfumato_install.json"
TRANSPORTS = ("auto", "zmq", "relay")
ENV = {"address": "SFUMATO_ENGINE", "python": "SFUMATO_PYTHON", "engine_root": "SFUMATO_ENGINE_ROOT",
       "transport": "SFUMATO_TRANSPORT", "server_key": "SFUMATO_SERVER_KEY", "client_key": "SFUMATO_CLIENT_KEY"}


@dataclass(frozen=True)
class Settings:
    """What a plug-in needs to reach the engine."""

    address: str = DEFAULT_ADDRESS
    python: str = ""  # the engine's Python, for the relay; "" = guess (install file, then PATH)
    engine_root: str = ""  # source checkout holding engine/, when the engine is not pip-installed
    transport: str = "auto"  # auto = zmq when it imports, else the relay
    autostart: bool = True  # start a local engine when none answers (autostart.py); never a remote one
    keep_engine: bool = False  # a started engine keeps running after the editor exits
    timeout: float = 5.0  # seconds to wait for `welcome` before saying the engine is not running
    server_key: str = ""  # an engine served with keys: its public key file (server.key); "" = no keys
    client_key: str = ""  # this editor's key pair (NAME.key_secret from `sfumato keys add-client`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "Settings":
        """Known keys only, wrong types ignored, so a stale stored blob never breaks the plug-in."""
        return cls().merged(data)

    @classmethod
    def from_json(cls, text: str | bytes | None) -> "Settings":
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        return cls.from_mapping(data if isinstance(data, dict) else None)

    def merged(self, data: Mapping[str, Any] | None) -> "Settings":
        """These settings overridden by the usable, non-empty values in `data`."""
        if not data:
            return self
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = data.get(f.name)
            if value is None or value == "":
                continue
            want = type(getattr(self, f.name))
            if want is float and not isinstance(value, bool):
                try:
                    changes[f.name] = float(value)
                except (TypeError, ValueError):
                    pass
            elif isinstance(value, want):
                changes[f.name] = value
        if changes.get("transport", "auto") not in TRANSPORTS:
            changes.pop("transport")
        return replace(self, **changes)


def install_defaults(package_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the installer recorded next to the package (engine Python, source root), if anything."""
    folder = Path(package_dir) if package_dir else Path(__file__).resolve().parent.parent
    path = folder / INSTALL_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def env_overrides(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    return {key: env[name] for key, name in ENV.items() if env.get(name)}


def load(stored: Mapping[str, Any] | str | None = None, env: Mapping[str, str] | None = None,
         package_dir: str | os.PathLike | None = None) -> Settings:
    """Defaults < install file < stored (a mapping or its JSON) < environment."""
    if isinstance(stored, (str, bytes)):
        stored = json.loads(stored) if stored else None
    result = Settings()
    for layer in (install_defaults(package_dir), stored, env_overrides(env)):
        result = result.merged(layer if isinstance(layer, Mapping) else None)
    return result


def guess_python(settings: Settings) -> str:
    """The Python to run the relay with: the setting, else `python3`/`python` on PATH."""
    if settings.python:
        return settings.python
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found:
            return found
    return sys.executable
