"""Model discovery and lazy loading: every folder under models/ with a model.json card.

Loading is lazy and cached, so start-up stays fast and a model used once stays warm.
Nothing is ever downloaded: a missing model is a `model_missing` error saying where
the files go.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch

from .diffusion.denoiser import Denoiser
from .diffusion.modelfile import CARD, WEIGHTS, ModelFileError, load_model, read_card
from .errors import MODEL_MISSING, EngineError

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


def resolve_device(name: str) -> str:
    """'auto' picks CUDA when present; an unavailable device is a clear error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return name


class ModelRegistry:
    """Maps model names (folder names, or explicit folders) to loaded denoisers."""

    def __init__(self, models_dir: str | Path | None = None, device: str = "cpu"):
        self.models_dir = Path(models_dir) if models_dir else PACKAGE_MODELS
        self.device = device
        self._cache: dict[str, tuple[Denoiser, dict]] = {}
        self._lock = threading.Lock()
        self._cards: dict[str, dict] = {}
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
                    cards[folder.name] = {"error": str(exc)}
        self._cards = cards
        return self.list()

    def list(self) -> list[dict]:
        out = []
        for name, card in self._cards.items():
            entry = {"name": name, "loaded": name in self._cache}
            if "error" in card:
                entry["error"] = card["error"]
            else:
                entry.update({k: card.get(k) for k in ("parameters", "steps", "base_model", "dtype")})
                entry["kind"] = "style" if card.get("base_model") else "base"
            out.append(entry)
        return out

    def names(self) -> list[str]:
        return [n for n, c in self._cards.items() if "error" not in c]

    def folder(self, name: str) -> Path:
        """Folder of a model by name; also accepts an explicit path to a model folder."""
        if name in self._cards:
            return self.models_dir / name
        path = Path(name)
        if (path / CARD).is_file():
            return path
        raise EngineError(
            MODEL_MISSING,
            f"model {name!r} is not installed: put its folder ({WEIGHTS} + {CARD}) in "
            f"{self.models_dir}/{name}/ and send 'models' with refresh, or restart the engine. "
            f"Installed: {', '.join(self.names()) or 'none'}",
            "params.model",
        )

    def get(self, name: str = DEFAULT_MODEL) -> Denoiser:
        """The loaded denoiser, cached; raises EngineError(model_missing) if absent or broken."""
        with self._lock:
            if name not in self._cache:
                folder = self.folder(name)
                try:
                    den, card = load_model(folder, self.device)
                except ModelFileError as exc:
                    raise EngineError(MODEL_MISSING, f"model {name!r} cannot be loaded: {exc}", "params.model") from exc
                if self.device == "cpu":
                    den = den.to(memory_format=torch.channels_last)
                self._cache[name] = (den, card)
            return self._cache[name][0]

    def card(self, name: str = DEFAULT_MODEL) -> dict:
        self.get(name)
        return self._cache[name][1]
