"""A small learned detector of old-print damage: the probability that a pixel is a scratch,
a speck of dust or a hair.

Why learned: the hand-built ridge and spot tests (defects.py) need one threshold per kind of
texture, and no setting of them separated hairs and specks on busy backgrounds from branches,
eyelashes and glints: they found about half of both while still flagging several times the
0.1 % of an undamaged photo that a repair may touch. A network that sees ~90 px around each
pixel learns what a mark looks like against every kind of texture from synthetic damage
drawn over real photos (tools/train_defect_detector.py; the weights and their card are in
engine/weights/).

The network is a four-level UNet with 16-64 channels (~0.3 M parameters): thin marks need
full resolution, telling a scratch from a window sill needs context, and both must run in a
fraction of a second on a laptop CPU. Input is RGB in 0..1, so colour helps to reject
saturated highlights; the tone (colour, monochrome, sepia) is augmented in training.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..tiling import run_tiled

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "defect_detector.safetensors"
WIDTHS = (16, 32, 64, 64)  # channels per level, full resolution first
STRIDE = 2 ** (len(WIDTHS) - 1)  # input sides are padded to a multiple of this
TILE = 512  # px: larger pictures are run in overlapping tiles (bounded memory)
TILE_OVERLAP = 64  # px: more than the receptive field's useful half


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class DefectNet(nn.Module):
    """UNet: per-pixel logit of "damaged" for an RGB image in 0..1 (sides a multiple of STRIDE)."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.down = nn.ModuleList()
        cin = 3
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb - 0.5) * 4.0
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def _padded_logits(net: DefectNet, rgb: torch.Tensor) -> torch.Tensor:
    """Logits of a (1, 3, H, W) tile, reflect-padded up to a multiple of STRIDE and cropped back."""
    h, w = rgb.shape[-2:]
    ph, pw = -h % STRIDE, -w % STRIDE
    mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
    x = F.pad(rgb, (0, pw, 0, ph), mode=mode) if ph or pw else rgb
    return net(x)[..., :h, :w]


@functools.lru_cache(maxsize=2)
def load_detector(path: str | None = None) -> DefectNet | None:
    """The shipped detector (or the weights at `path`), in fp32 eval mode; None when absent."""
    from safetensors.torch import load_file

    file = Path(path) if path else WEIGHTS
    if not file.is_file():
        return None
    card = file.with_suffix(".json")
    widths = tuple(json.loads(card.read_text())["widths"]) if card.is_file() else WIDTHS
    net = DefectNet(widths)
    net.load_state_dict({k: v.float() for k, v in load_file(str(file)).items()})
    return net.eval()


# mirrored views of the picture (each its own inverse): a mark looks the same in all of them,
# while the network's chance responses to texture differ, so their mean logit is steadier
VIEWS = (lambda t: t, lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.transpose(-1, -2))


@torch.no_grad()
def defect_probability(rgb: torch.Tensor, net: DefectNet, views: int = 1) -> np.ndarray:
    """(H, W) probability of damage for a (1, 3, H, W) image in 0..1, from the mean logit
    over the first `views` of VIEWS."""
    def logits(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([v(_padded_logits(net, v(t).contiguous())) for v in VIEWS[:views]]).mean(0)
    return torch.sigmoid(run_tiled(logits, rgb.float(), tile=TILE, overlap=TILE_OVERLAP))[0, 0].numpy()
