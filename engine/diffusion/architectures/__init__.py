"""The architecture registry: which networks the engine can load, and what each one supports.

A model card's `architecture` names an entry here. The entry builds the raw network from the
card's `config`, recognises its own weights in a bare state dict (so weights without a full
card can still be loaded), and describes what a loaded model supports (`ModelDescriptor`).
Everything an operation needs to know about a model comes from that descriptor: adding an
architecture is one module in this package and one line in ARCHITECTURES.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ...devices import device_kind
from ..schedule import SigmaRange

COND_CHANNELS = 4  # the conditioning the engine supplies: known RGB pixels (masked) + the mask


@dataclass(frozen=True)
class ModelDescriptor:
    """What a loaded model is and supports; carried by the model, read by every operation."""

    architecture: str
    stride: int  # input sides are padded to multiples of this; work areas are aligned to it
    padding_mode: str  # "zeros", or "circular" for the seamless (tileable) twin
    padding_modes: tuple[str, ...]  # the modes the network can switch to
    cond_channels: int  # channels of conditioning the network reads (COND_CHANNELS)
    sigmas: SigmaRange  # the noise levels it was trained for, and its schedules' shape
    sigma_data: float  # EDM preconditioning: the data's standard deviation
    precisions: tuple[str, ...]  # compute dtypes it runs correctly in ("float32" first)

    def autocast_dtype(self, device: torch.device | str) -> torch.dtype | None:
        """The reduced precision to run in: none on a CPU (float32); on a GPU the first of
        bfloat16, float16 the model supports, or none."""
        if device_kind(device) != "cuda":
            return None
        for name in ("bfloat16", "float16"):
            if name in self.precisions:
                return getattr(torch, name)
        return None


@dataclass(frozen=True)
class Architecture:
    """One loadable network family. `build(config)` returns F(x_in, cond, c_noise) -> output."""

    name: str
    build: Callable[[dict], nn.Module]
    config_of: Callable[[nn.Module], dict]  # the config to store in the card
    detect: Callable[[dict[str, torch.Tensor]], dict | None]  # config from a state dict, None if not ours
    describe: Callable[[dict, float], ModelDescriptor]  # (config, sigma_data) -> descriptor
    set_padding: Callable[[nn.Module, str], None]  # switch the network's padding mode in place


from . import unet  # noqa: E402  (the entries need the types above)

ARCHITECTURES: dict[str, Architecture] = {unet.ARCHITECTURE.name: unet.ARCHITECTURE}
BUILTIN = unet.ARCHITECTURE.name  # what `sfumato train` builds from scratch


def architecture(name: str) -> Architecture:
    """The registry entry; an unknown name is a ValueError listing the known ones."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; this engine knows {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def detect(state: dict[str, torch.Tensor]) -> tuple[Architecture, dict]:
    """The architecture whose weights these are, with the config read from their shapes."""
    for arch in ARCHITECTURES.values():
        config = arch.detect(state)
        if config is not None:
            return arch, config
    raise ValueError(f"the weights match none of the known architectures ({', '.join(ARCHITECTURES)})")
