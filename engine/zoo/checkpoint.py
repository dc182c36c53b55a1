"""Read a checkpoint file safely, detect its architecture and describe what it is for.

Nothing in a model file is ever executed: `.safetensors` is raw tensors; `.pth`, `.ckpt` and
`.pt` go through `torch.load(weights_only=True)`, which unpickles only tensors and plain
containers. A file that needs arbitrary classes (a whole pickled model, an optimiser) is
refused with an error naming it. The architecture is detected from the tensor names and
shapes by spandrel (backend.py).
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .backend import spandrel

SUFFIXES = (".safetensors", ".pth", ".ckpt", ".pt")
SIDECAR = ".json"  # NAME.json beside NAME.safetensors: licence and homepage (written by `models get`)
RESTORE_SCALES = (2, 4)  # the upscale factors restore offers
INPAINT_USES = ["fill", "remove", "outpaint"]  # what inpaint runs an inpainting model for (one path for all)
# spandrel's generic "Restoration" purpose, made precise per architecture (spandrel ids)
DENOISERS = frozenset({"DnCNN", "DRUNet", "SCUNet", "FFDNet", "KBNet"})
JPEG = frozenset({"FBCNN"})


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or used; the message names the file and the reason."""


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors by name (CPU), unwrapped from the usual containers ("params_ema", ...)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CheckpointError(f"{path.name}: not a checkpoint ({', '.join(SUFFIXES)})")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file
            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path.name} holds pickled Python objects (a whole pickled model?), not plain "
                              f"weights: refused, nothing in it is run. Save the model's state_dict, "
                              f"preferably as .safetensors") from exc
    except Exception as exc:  # a truncated or corrupt file: torch and safetensors raise various types
        raise CheckpointError(f"{path.name} cannot be read: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name} holds a {type(state).__name__}, not a dictionary of weights")
    state = spandrel().canonicalize_state_dict(state)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path.name} holds no tensors")
    return tensors


@dataclass
class ZooModel:
    """A loaded checkpoint: spandrel's model descriptor plus our description of it."""

    path: Path
    model: Any  # spandrel ImageModelDescriptor / MaskedImageModelDescriptor
    info: dict = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return self.info["serves"].get("restore", [])


def load(path: Path) -> ZooModel:
    """Read, detect and build the network (eval mode, CPU, float32)."""
    state = read_state(path)
    sp = spandrel()
    try:
        model = sp.MAIN_REGISTRY.load(state)
    except sp.UnsupportedModelError as exc:
        raise CheckpointError(f"{path.name}: its weights match none of the architectures spandrel "
                              f"{sp.__version__} knows") from exc
    except Exception as exc:  # detected, but the shapes do not build: a damaged or edited file
        raise CheckpointError(f"{path.name}: the weights could not be loaded: {exc}") from exc
    model.eval().float()
    stored = next((str(v.dtype).replace("torch.", "") for v in state.values() if v.is_floating_point()), "float32")
    return ZooModel(path=path, model=model, info=describe(model, path, stored))


def purpose_of(model: Any) -> str:
    """upscale, face, denoise, jpeg, restore (another restoration) or inpaint."""
    arch = model.architecture.id
    return {"SR": "upscale", "FaceSR": "face", "Inpainting": "inpaint"}.get(model.purpose) or (
        "denoise" if arch in DENOISERS else "jpeg" if arch in JPEG else "restore")


def serves(purpose: str, scale: int) -> dict[str, list[str]]:
    """The ops and tasks a model of this purpose runs for (restore's task names)."""
    if purpose == "upscale" and scale in RESTORE_SCALES:
        return {"restore": ["upscale"]}
    if purpose in ("denoise", "jpeg"):
        return {"restore": [purpose]}
    if purpose == "inpaint":
        return {"inpaint": list(INPAINT_USES)}
    return {}


def what_it_does(info: dict) -> str:
    """'Compact, upscale x4; it serves restore: upscale': the words an error uses to say what
    a zoo model can do instead."""
    uses = "; ".join(f"{op}: {', '.join(tasks)}" for op, tasks in info["serves"].items()) or "no op"
    scale = f" x{info['scale']}" if info["purpose"] == "upscale" else ""
    return f"{info['architecture']}, {info['purpose']}{scale}; it serves {uses}"


def describe(model: Any, path: Path, stored: str) -> dict:
    """What `models` and `welcome` list for the checkpoint."""
    purpose = purpose_of(model)
    precisions = ["float32"] + [n for n, ok in (("bfloat16", model.supports_bfloat16),
                                               ("float16", model.supports_half)) if ok]
    meta = read_sidecar(path)
    return {
        "architecture": model.architecture.name,
        "purpose": purpose,
        "scale": int(model.scale),
        "channels": int(model.input_channels),
        "parameters": sum(p.numel() for p in model.model.parameters()),
        "size": path.stat().st_size,
        "format": path.suffix.lower().lstrip("."),
        "dtype": stored,
        "precisions": precisions,
        "tiling": model.tiling.name.lower(),
        "license": meta.get("license"),
        "homepage": meta.get("homepage"),
        "serves": serves(purpose, int(model.scale)),
    }


def read_sidecar(path: Path) -> dict:
    """Licence and homepage from NAME.json beside the checkpoint; {} when there is none or it is unreadable."""
    side = path.with_suffix(SIDECAR)
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
