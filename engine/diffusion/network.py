"""Compact noise-conditional UNet backbone, sized for a laptop CPU.

The widest convolutions run at low resolution and full resolution gets one narrow block,
because on a CPU the full-resolution layers dominate the cost of a forward pass.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:
    """Architecture hyper-parameters; stored verbatim in every model card."""

    in_channels: int = 3  # the noisy image
    cond_channels: int = 4  # known pixels (3) + mask (1)
    out_channels: int = 3
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    down_blocks: list[int] = field(default_factory=lambda: [1, 1, 2, 2])
    up_blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    emb_dim: int = 128
    groups: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def fourier_embedding(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the scalar noise level, one row per batch item."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c_noise.device) / half)
    args = c_noise.float()[:, None] * 100.0 * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with scale/shift modulation by the noise embedding."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, padding_mode: str):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(min(groups, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, padding_mode=padding_mode)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        return self.skip(x) + self.conv2(h)


class UNet(nn.Module):
    """Fully convolutional UNet: F(x_in, cond, c_noise) -> residual prediction.

    `padding_mode` may be switched between 'zeros' and 'circular' after loading
    (see `set_padding_mode`); circular padding makes the output tile seamlessly.
    """

    def __init__(self, config: UNetConfig | None = None, padding_mode: str = "zeros"):
        super().__init__()
        self.config = cfg = config or UNetConfig()
        ch, pm = cfg.channels, padding_mode
        self.emb_mlp = nn.Sequential(
            nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.SiLU(), nn.Linear(cfg.emb_dim, cfg.emb_dim)
        )
        self.stem = nn.Conv2d(cfg.in_channels + cfg.cond_channels, ch[0], 3, padding=1, padding_mode=pm)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = ch[0]
        for level, (c, n) in enumerate(zip(ch, cfg.down_blocks)):
            if level > 0:
                self.downsample.append(nn.Conv2d(prev, c, 3, stride=2, padding=1, padding_mode=pm))
                prev = c
            blocks = nn.ModuleList()
            for _ in range(n):
                blocks.append(ResBlock(prev, c, cfg.emb_dim, cfg.groups, pm))
                prev = c
            self.down.append(blocks)
        self.up = nn.ModuleList()
        self.upconv = nn.ModuleList()
        for level in reversed(range(len(ch))):
            c = ch[level]
            blocks = nn.ModuleList()
            for i in range(cfg.up_blocks[level]):
                blocks.append(ResBlock(prev + (c if i == 0 else 0), c, cfg.emb_dim, cfg.groups, pm))
                prev = c
            self.up.append(blocks)
            if level > 0:
                self.upconv.append(nn.Conv2d(prev, ch[level - 1], 3, padding=1, padding_mode=pm))
                prev = ch[level - 1]
        self.out_norm = nn.GroupNorm(min(cfg.groups, prev), prev)
        self.out = nn.Conv2d(prev, cfg.out_channels, 3, padding=1, padding_mode=pm)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def set_padding_mode(self, mode: str) -> None:
        """Switch every 3x3 convolution between 'zeros' and 'circular' padding."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1):
                m.padding_mode = mode

    def forward(self, x: torch.Tensor, cond: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.emb_mlp(fourier_embedding(c_noise, self.config.emb_dim))
        h = self.stem(torch.cat([x, cond], dim=1))
        skips = []
        for level, blocks in enumerate(self.down):
            if level > 0:
                h = self.downsample[level - 1](h)
            for b in blocks:
                h = b(h, emb)
            skips.append(h)
        for i, blocks in enumerate(self.up):
            for j, b in enumerate(blocks):
                h = b(torch.cat([h, skips.pop()], dim=1) if j == 0 else h, emb)
            if i < len(self.upconv):
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                h = self.upconv[i](h)
        return self.out(F.silu(self.out_norm(h)))
