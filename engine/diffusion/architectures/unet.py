"""The built-in architecture: the compact noise-conditional UNet of network.py."""
from __future__ import annotations

import re

import torch
from torch import nn

from ..network import UNet, UNetConfig
from ..schedule import EDM
from . import COND_CHANNELS, Architecture, ModelDescriptor

NAME = "unet"


def build(config: dict) -> UNet:
    return UNet(UNetConfig.from_dict(config))


def config_of(net: nn.Module) -> dict:
    return net.config.to_dict()


def describe(config: dict, sigma_data: float) -> ModelDescriptor:
    cfg = UNetConfig.from_dict(config)
    if cfg.cond_channels != COND_CHANNELS:
        raise ValueError(f"the engine conditions on {COND_CHANNELS} channels (known RGB + mask); "
                         f"this UNet reads {cfg.cond_channels}")
    return ModelDescriptor(architecture=NAME, stride=2 ** (len(cfg.channels) - 1), padding_mode="zeros",
                           padding_modes=("zeros", "circular"), cond_channels=cfg.cond_channels, sigmas=EDM,
                           sigma_data=float(sigma_data), precisions=("float32", "bfloat16"))


def _count(state: dict[str, torch.Tensor], pattern: str, level: int) -> int:
    rx = re.compile(pattern.format(level=level))
    return len({m.group(1) for k in state if (m := rx.match(k))})


def detect(state: dict[str, torch.Tensor]) -> dict | None:
    """Read the config from the tensor shapes. GroupNorm's group count is not stored in the
    weights, so it is taken as the default; in/out channels are taken as equal (the image)."""
    if not {"stem.weight", "emb_mlp.0.weight", "out.weight"} <= state.keys():
        return None
    levels = 1 + len({k.split(".")[1] for k in state if k.startswith("downsample.")})
    channels = [int(state["stem.weight"].shape[0])]
    channels += [int(state[f"downsample.{i}.weight"].shape[0]) for i in range(levels - 1)]
    out_channels = int(state["out.weight"].shape[0])
    return {
        "in_channels": out_channels,
        "cond_channels": int(state["stem.weight"].shape[1]) - out_channels,
        "out_channels": out_channels,
        "channels": channels,
        "down_blocks": [_count(state, r"down\.{level}\.(\d+)\.", lv) for lv in range(levels)],
        "up_blocks": [_count(state, r"up\.{level}\.(\d+)\.", levels - 1 - lv) for lv in range(levels)],
        "emb_dim": int(state["emb_mlp.0.weight"].shape[0]),
    }


def set_padding(net: nn.Module, mode: str) -> None:
    net.set_padding_mode(mode)


ARCHITECTURE = Architecture(name=NAME, build=build, config_of=config_of, detect=detect, describe=describe,
                            set_padding=set_padding)
