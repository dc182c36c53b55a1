"""Model discovery and lazy loading: every folder under models/ with a model.json card.

Loading is lazy and cached, so start-up stays fast and a model used once stays warm.
Nothing is ever downloaded: a missing model is a `model_missing` error saying where
the files go. A checkpoint file of another project (Real-ESRGAN, DnCNN, ...) lying directly in
the models folder is a zoo model named after the file (engine/zoo); it is read and described
when the folder is scanned. A request names a model only by a name the registry lists; a path (absolute,
relative, with `..`) is refused, so a client can load nothing from outside the models folder
and learns nothing about where that folder is.

At most MAX_LOADED_MODELS models (diffusion and zoo together) stay loaded: using another one
unloads the least recently used, so an engine serving many models keeps a bounded footprint.
A model a running job holds (`hold()`) is never unloaded under it; while every loaded model is
held the registry goes over the limit and comes back to it when the jobs end.
"""
from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from . import MAX_LOADED_MODELS
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

    def __init__(self, models_dir: str | Path | None = None, device: str = "cpu",
                 max_models: int = MAX_LOADED_MODELS):
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.models_dir = Path(models_dir) if models_dir else PACKAGE_MODELS
        self.device = device
        self.max_models = max_models
        # Loaded models, least recently used first. A denoiser's key is its real folder (two names
        # of one folder share it); a zoo model's is (real file, size, mtime), so a replaced file is
        # read again. Values: (Denoiser, card) or ZooModel.
        self._loaded: OrderedDict[Hashable, tuple[Denoiser, dict] | ZooModel] = OrderedDict()
        self._held: Counter[Hashable] = Counter()  # keys running jobs hold: never unloaded
        self._holder = threading.local()  # the keys the current thread's job holds
        self._lock = threading.RLock()
        self._cards: dict[str, dict] = {}
        self._zoo_info: dict[tuple, dict] = {}  # descriptions of zoo files, kept when the model is unloaded
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
        """Read and describe a checkpoint file (the description is kept while the file is unchanged)."""
        try:
            key = self._zoo_key(path)
            if key not in self._zoo_info:
                with self._lock:
                    self._zoo_info[key] = self._use(key, lambda: load_checkpoint(path)).info
            return {"kind": ZOO, "file": path.name, **self._zoo_info[key]}
        except (ZooUnavailable, CheckpointError, OSError) as exc:
            return {"kind": ZOO, "file": path.name, "error": self._public(str(exc))}

    def zoo(self, name: str) -> ZooModel:
        """The loaded zoo model of a listed checkpoint file; EngineError(model_missing) if unusable."""
        self.require(name, (ZOO,), "params.model")
        path = self.models_dir / self._cards[name]["file"]
        with self._lock:
            try:
                zm = self._use(self._zoo_key(path), lambda: load_checkpoint(path))
            except (ZooUnavailable, CheckpointError, OSError) as exc:
                raise EngineError(MODEL_MISSING, f"model {name!r} cannot be loaded: {self._public(str(exc))}",
                                  "params.model") from exc
            assert isinstance(zm, ZooModel)
            return zm

    # ---- the loaded models: least recently used out, held ones kept -------------------------
    def _use(self, key: Hashable, load: Callable[[], tuple[Denoiser, dict] | ZooModel]
             ) -> tuple[Denoiser, dict] | ZooModel:
        """The loaded model under `key` (loaded now if absent), marked most recently used and
        held by the current job; then unload what is over the limit. Call with the lock held."""
        if key in self._loaded:
            self._loaded.move_to_end(key)
        else:
            self._loaded[key] = load()
        held = getattr(self._holder, "keys", None)
        if held is not None and key not in held:
            held.add(key)
            self._held[key] += 1
        model = self._loaded[key]
        self._trim(keep=key)
        return model

    def _trim(self, keep: Hashable | None = None) -> None:
        """Unload least recently used models over max_models, skipping held ones and `keep`."""
        unloaded = False
        for key in list(self._loaded):
            if len(self._loaded) <= self.max_models:
                break
            if key != keep and not self._held[key]:
                del self._loaded[key]
                unloaded = True
        if unloaded and self.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()  # give an unloaded model's memory back to other processes

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Models this thread uses inside the block stay loaded until it ends (a running job)."""
        held: set[Hashable] = set()
        outer = getattr(self._holder, "keys", None)
        self._holder.keys = held
        try:
            yield
        finally:
            self._holder.keys = outer
            with self._lock:
                self._held.subtract(held)
                self._held += Counter()  # drop the keys no job holds any more
                self._trim()

    def loaded(self) -> int:
        """How many models are loaded now."""
        return len(self._loaded)

    def is_zoo(self, name: str) -> bool:
        return kind_of(self._cards.get(name, {})) == ZOO

    def list(self) -> list[dict]:
        out = []
        for name, card in self._cards.items():
            entry = {"name": name, "loaded": self._real(name) in self._loaded}
            if kind_of(card) == ZOO:
                entry.update(card)
                entry["loaded"] = self._zoo_loaded(card)
                entry.pop("file")
            elif "error" in card:
                entry["error"] = card["error"]
            else:
                entry.update({k: card.get(k) for k in ("parameters", "steps", "base_model", "dtype")})
                entry["kind"] = kind_of(card)
            out.append(entry)
        return out

    def _zoo_loaded(self, card: dict) -> bool:
        if "error" in card:
            return False
        try:
            return self._zoo_key(self.models_dir / card["file"]) in self._loaded
        except OSError:
            return False

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
        return self._denoiser(name)[0]

    def card(self, name: str = DEFAULT_MODEL) -> dict:
        return self._denoiser(name)[1]

    def _denoiser(self, name: str) -> tuple[Denoiser, dict]:
        with self._lock:
            real = self.folder(name).resolve()

            def load() -> tuple[Denoiser, dict]:
                try:
                    den, card = load_model(real, self.device)
                except ModelFileError as exc:
                    raise EngineError(MODEL_MISSING, f"model {name!r} cannot be loaded: {self._public(str(exc))}",
                                      "params.model") from exc
                if self.device == "cpu":
                    den = den.to(memory_format=torch.channels_last)
                return den, card

            entry = self._use(real, load)
            assert isinstance(entry, tuple)
            return entry


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
