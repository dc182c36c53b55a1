"""EDM-preconditioned denoiser D(x; sigma, cond) (Karras et al. 2022).

Images live in [-1, 1]. The conditioning is the known pixels `image * (1 - mask)` and
the mask itself (1 = regenerate). Unconditional generation and plain denoising use an
all-ones mask, so the network sees no clean pixels; inpainting uses any mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .network import UNet, UNetConfig

SIGMA_DATA = 0.5


def make_cond(known: torch.Tensor | None, mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Build the 4 conditioning channels; missing mask means 'everything unknown'."""
    b, _, h, w = like.shape
    if mask is None:
        mask = torch.ones(b, 1, h, w, device=like.device, dtype=like.dtype)
    if known is None:
        known = torch.zeros(b, 3, h, w, device=like.device, dtype=like.dtype)
    mask = mask.to(like.dtype).expand(b, 1, h, w)
    known = known.to(like.dtype).expand(b, 3, h, w)
    return torch.cat([known * (1 - mask), mask], dim=1)


class Denoiser(nn.Module):
    """Wraps the raw UNet with c_skip / c_out / c_in / c_noise preconditioning."""

    def __init__(self, net: UNet, sigma_data: float = SIGMA_DATA):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data

    @classmethod
    def from_config(cls, config: UNetConfig | None = None) -> "Denoiser":
        return cls(UNet(config))

    @property
    def stride(self) -> int:
        return self.net.config.stride

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, cond: torch.Tensor) -> torch.Tensor:
        """Return the denoised estimate of x at noise level sigma (per batch item)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(x.shape[0])
        s = sigma[:, None, None, None].to(x.dtype)
        sd = self.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4
        h, w = x.shape[-2:]
        m = self.stride
        ph, pw = (-h) % m, (-w) % m
        xin, cin = x * c_in, cond
        if ph or pw:
            mode = "circular" if self.net.stem.padding_mode == "circular" else "replicate"
            xin = F.pad(xin, (0, pw, 0, ph), mode=mode)
            cin = F.pad(cin, (0, pw, 0, ph), mode=mode)
        f = self.net(xin, cin, c_noise)[..., :h, :w]
        return c_skip * x + c_out * f.to(x.dtype)


def loss_weight(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """EDM lambda(sigma) making the effective training target unit-variance."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
