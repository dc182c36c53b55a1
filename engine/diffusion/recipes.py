"""Training recipes: the defaults behind `sfumato train`.

Fine-tuning (`--from MODEL`) must turn ten paintings into a style model on a laptop CPU in
minutes, so it takes few steps at a low learning rate from the base weights, a short EMA,
and holds out a single image for the sample grid. Training from scratch keeps TrainConfig's
own defaults.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Sequence

from .modelfile import CARD
from .trainer import TrainConfig

FINETUNE = dict(
    steps=300,  # ~3-5 min on 2 CPU cores at patch 64, batch 8 for the default architecture
    patch=64,
    batch=8,
    lr=1e-4,  # a third of the from-scratch rate: adapt the style, keep the prior
    warmup=20,
    decay_fraction=0.3,
    ema=0.99,  # averages over ~100 steps, so the short run's EMA has caught up by the end
    held_out=1,  # ten images are precious; one is enough for the grid's inpainting rows
    sample_every=150,
    checkpoint_every=100,
    max_side=768,  # paintings are big: train on brushwork at a scale close to working size
    synthetic=None,
)


def model_folders(out: str | Path, models: str | Path | None = None) -> list[Path | None]:
    """Where `--from NAME` is looked up: the models folder given, else the folder the new model
    is written into (the models folder in use) and then the shipped models (None)."""
    return [Path(models)] if models else [Path(out).parent, None]


def resolve_model_folder(name: str, models_dirs: Sequence[str | Path | None] = (None,)) -> Path:
    """A model folder from a folder path or an installed model's name (e.g. 'builtin'), the
    first of `models_dirs` (None: the shipped models) that holds it."""
    path = Path(name)
    if (path / CARD).is_file():
        return path
    from ..registry import PACKAGE_MODELS, ModelRegistry  # local: the registry is not needed for a path

    folders = [Path(d) if d else PACKAGE_MODELS for d in models_dirs]
    for folder in folders:
        if path.name == name and (folder / name / CARD).is_file():
            return folder / name
    return ModelRegistry(folders[0]).folder(name)  # raises EngineError: a path, or not installed


def finetune_defaults(folders: list[str], out: str, from_model: str,
                      models_dirs: Sequence[str | Path | None] = (None,), **overrides) -> TrainConfig:
    """TrainConfig for fine-tuning `from_model` (a model folder or an installed model's name,
    looked up in `models_dirs`, default the shipped models) on `folders`.

    Any TrainConfig field can be overridden (e.g. steps, patch, batch, lr, device, seed);
    None values in `overrides` are ignored so a CLI can pass its optional flags through.
    """
    names = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown TrainConfig fields: {', '.join(sorted(unknown))}")
    values = dict(FINETUNE)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "steps" in overrides and overrides["steps"] is not None and "sample_every" not in overrides:
        values["sample_every"] = max(1, int(values["steps"]) // 2)
    base = resolve_model_folder(from_model, models_dirs)
    return TrainConfig(folders=list(folders), out=str(out), from_model=str(base), **values)


def scratch_defaults(folders: list[str], out: str, **overrides) -> TrainConfig:
    """TrainConfig for training from scratch (TrainConfig's defaults; None values ignored)."""
    return TrainConfig(folders=list(folders), out=str(out), **{k: v for k, v in overrides.items() if v is not None})
