"""Model folders on disk: `model.safetensors` (weights only) + `model.json` (the card).

safetensors cannot execute code, so loading a model someone sent you is safe. The card's
`architecture` picks the builder from the registry (architectures/) and its `config` sizes
it; a card without them gets the architecture recognised from the weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from .architectures import architecture, detect
from .denoiser import SIGMA_DATA, Denoiser

FORMAT = "sfumato-denoiser-v1"
WEIGHTS = "model.safetensors"
CARD = "model.json"


class ModelFileError(ValueError):
    """A model folder is missing, incomplete or corrupt; the message says which file."""


def save_model(denoiser: Denoiser, folder: str | Path, card: dict, dtype: torch.dtype = torch.float16) -> Path:
    """Write weights (default fp16) and the card; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in denoiser.net.state_dict().items()}
    write_tensors(state, folder / WEIGHTS, metadata={"format": FORMAT})
    full = {
        "format": FORMAT,
        "architecture": denoiser.descriptor.architecture,
        "config": denoiser.config,
        "sigma_data": denoiser.descriptor.sigma_data,
        "parameters": sum(p.numel() for p in denoiser.parameters()),
        "dtype": str(dtype).replace("torch.", ""),
        **card,
    }
    (folder / CARD).write_text(json.dumps(full, indent=2) + "\n")
    return folder


def write_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically (through PATH.tmp), with the modes any new file gets
    (0644 under the usual umask): safetensors' own file writer makes files only their owner can read."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover keeps its old mode when written over
    tmp.write_bytes(save(tensors, metadata=metadata))
    tmp.replace(path)


def read_card(folder: str | Path) -> dict:
    path = Path(folder) / CARD
    if not path.is_file():
        raise ModelFileError(f"model card missing: expected {path}")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"model card {path} is not valid JSON: {exc}") from exc
    if card.get("format") != FORMAT:
        raise ModelFileError(f"model card {path} has format {card.get('format')!r}, expected {FORMAT!r}")
    return card


def load_model(folder: str | Path, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> tuple[Denoiser, dict]:
    """Build the denoiser described by the card and load its weights; eval mode."""
    folder = Path(folder)
    card = read_card(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ModelFileError(f"weights missing: expected {weights}")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise ModelFileError(f"weights file {weights} is corrupt or not safetensors: {exc}") from exc
    try:
        if "architecture" in card:
            entry, config = architecture(card["architecture"]), card.get("config", {})
        else:
            entry, config = detect(state)
    except ValueError as exc:
        raise ModelFileError(f"model card {folder / CARD}: {exc}") from exc
    try:
        den = Denoiser.build(entry.name, config, float(card.get("sigma_data", SIGMA_DATA)))
        den.net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"weights in {weights} do not match the card's architecture: {exc}") from exc
    return den.to(device=device, dtype=dtype).eval(), card
