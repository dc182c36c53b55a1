"""Model discovery and lazy loading: every folder under models/ with a model.json card.

Loading is lazy and cached, so start-up stays fast and a model used once stays warm.
Nothing is ever downloaded: a missing model is a `model_missing` error saying where
the files go. A checkpoint file of another project (Real-ESRGAN, DnCNN, ...) lying directly in
the models folder is a zoo model named after the file (engine/zoo); it is read and described
when the folder is scanned. A request names a model only by a name the registry lists; a path (absolute,
relative, with `..`) is refused, so a client can load nothing from outside the models folder
and learns nothing about where that folder is.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import torch

from .diffusion.denoiser import Denoiser
from .diffusion.modelfile import CARD, WEIGHTS, ModelFileError, load_model, read_card
from .errors import BAD_PARAM, MODEL_MISSING, EngineError
from .tasks.specs import ZOO
from .zoo.backend import ZooUnavailable
from .zoo.checkpoint import SUFFIXES, CheckpointError, ZooModel, load as load_checkpoint

DEFAULT_MODEL = "builtin"


def package_models() -> Path:
    """The models folder that ships with Sfumato, the default when none is given.

    An installed wheel carries it inside the package (engine/models, see setup.py); a
    checkout keeps the same folder at the repository root (models/, beside engine/).
    """
    engine_dir = Path(__file__).resolve().parent
    inside = engine_dir / "models"
    return inside if inside.is_dir() else engine_dir.parent / "models"


PACKAGE_MODELS = package_models()


class ModelRegistry:
    """Maps model names (the folders in the models folder) to loaded denoisers, one per real folder."""

    def __init__(self, models_dir: str | Path | None = None, device: str = "cpu"):
        self.models_dir = Path(models_dir) if models_dir else PACKAGE_MODELS
        self.device = device
        self._cache: dict[Path, tuple[Denoiser, dict]] = {}  # by real folder: two names of one folder share it
        self._lock = threading.Lock()
        self._cards: dict[str, dict] = {}
        self._zoo: dict[tuple, ZooModel] = {}  # by (real file, size, mtime): a replaced file is read again
        self.refresh()

    def refresh(self) -> list[dict]:
        """Re-scan the models folder; returns the listing."""
        cards: dict[str, dict] = {}
        if self.models_dir.is_dir():
            for card_path in sorted(self.models_dir.glob(f"*/{CARD}")):
                folder = card_path.parent
                try:
                    cards[folder.name] = read_card(folder)
                except ModelFileError as exc:
                    cards[folder.name] = {"error": self._public(str(exc))}
            for path in sorted(p for p in self.models_dir.iterdir() if p.suffix.lower() in SUFFIXES):
                if path.is_file() and path.stem not in cards:
                    cards[path.stem] = self._zoo_card(path)
        self._cards = cards
        return self.list()

    def _zoo_key(self, path: Path) -> tuple:
        st = path.stat()
        return (path.resolve(), st.st_size, st.st_mtime_ns)

    def _zoo_card(self, path: Path) -> dict:
        """Read and describe a checkpoint file (cached while the file is unchanged)."""
        try:
            key = self._zoo_key(path)
            if key not in self._zoo:
                self._zoo[key] = load_checkpoint(path)
            return {"kind": ZOO, "file": path.name, **self._zoo[key].info}
        except (ZooUnavailable, CheckpointError, OSError) as exc:
            return {"kind": ZOO, "file": path.name, "error": self._public(str(exc))}

    def zoo(self, name: str) -> ZooModel:
        """The loaded zoo model of a listed checkpoint file; EngineError(model_missing) if unusable."""
        self.require(name, (ZOO,), "params.model")
        path = self.models_dir / self._cards[name]["file"]
        with self._lock:
            try:
                key = self._zoo_key(path)
                if key not in self._zoo:
                    self._zoo[key] = load_checkpoint(path)
            except (ZooUnavailable, CheckpointError, OSError) as exc:
                raise EngineError(MODEL_MISSING, f"model {name!r} cannot be loaded: {self._public(str(exc))}",
                                  "params.model") from exc
            return self._zoo[key]

    def is_zoo(self, name: str) -> bool:
        return kind_of(self._cards.get(name, {})) == ZOO

    def list(self) -> list[dict]:
        out = []
        for name, card in self._cards.items():
            entry = {"name": name, "loaded": self._real(name) in self._cache}
            if kind_of(card) == ZOO:
                entry.update(card)
                entry["loaded"] = "error" not in card
                entry.pop("file")
            elif "error" in card:
                entry["error"] = card["error"]
            else:
                entry.update({k: card.get(k) for k in ("parameters", "steps", "base_model", "dtype")})
                entry["kind"] = kind_of(card)
            out.append(entry)
        return out

    def names(self) -> list[str]:
        return [n for n, c in self._cards.items() if "error" not in c]

    def _public(self, text: str) -> str:
        """An error text for clients: the models folder's location becomes `models`."""
        for where in sorted({str(self.models_dir.resolve()), str(self.models_dir)}, key=len, reverse=True):
            text = text.replace(where, "models")
        return text

    def _real(self, name: str) -> Path:
        return (self.models_dir / name).resolve()

    def folder(self, name: str, field: str = "params.model") -> Path:
        """Folder of a listed model. A path is bad_param and an unlisted name model_missing,
        both naming `field`; neither message shows where the models folder is."""
        if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0:"):
            raise EngineError(BAD_PARAM, f"{field.rpartition('.')[2]} must be the name of an installed model "
                              f"(welcome.models), not a path; got {str(name)[:80]!r}", field)
        if name in self._cards:
            return self.models_dir / name
        raise EngineError(
            MODEL_MISSING,
            f"model {name!r} is not installed: put its folder ({WEIGHTS} + {CARD}) in the engine's models "
            f"folder as {name}/ and send 'models' with refresh, or restart the engine. "
            f"Installed: {', '.join(self.names()) or 'none'}",
            field,
        )

    def require(self, name: str, kinds: tuple[str, ...], field: str) -> None:
        """Raise EngineError unless `name` is a listed, readable model of one of `kinds`."""
        self.folder(name, field)
        card = self._cards[name]
        if "error" in card:
            raise EngineError(MODEL_MISSING, f"model {name!r} cannot be used: {card['error']}", field)
        if kind_of(card) not in kinds:
            raise EngineError(BAD_PARAM, f"model {name!r} is a {kind_of(card)} model; "
                              f"{field.rpartition('.')[2]} takes {' or '.join(kinds)} models", field)

    def get(self, name: str = DEFAULT_MODEL) -> Denoiser:
        """The loaded denoiser, cached per real folder; raises EngineError(model_missing) if absent or broken."""
        with self._lock:
            real = self.folder(name).resolve()
            if real not in self._cache:
                try:
                    den, card = load_model(real, self.device)
                except ModelFileError as exc:
                    raise EngineError(MODEL_MISSING, f"model {name!r} cannot be loaded: {self._public(str(exc))}",
                                      "params.model") from exc
                if self.device == "cpu":
                    den = den.to(memory_format=torch.channels_last)
                self._cache[real] = (den, card)
            return self._cache[real][0]

    def card(self, name: str = DEFAULT_MODEL) -> dict:
        self.get(name)
        return self._cache[self._real(name)][1]


def kind_of(card: dict) -> str:
    """A model's kind as `models` lists it: a style model is fine-tuned from another model; a
    checkpoint of another project is a zoo model. A model trained on from an earlier version
    of itself (`base_model` "builtin v4" for `builtin`) is still a base model."""
    if card.get("kind") == ZOO:
        return ZOO
    base = card.get("base_model")
    if not base or _VERSION_SUFFIX.sub("", str(base)) == card.get("name"):
        return "base"
    return "style"


_VERSION_SUFFIX = re.compile(r"\s+v\d+$")  # "builtin v4": the version a continued run started from
