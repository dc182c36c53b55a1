"""Style guidance: pull each denoised estimate towards a reference image's texture statistics.

Used by `stylize` (re-render after a painting) and `generate` (texture synthesis from an example).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .schedule import DenoiseFn

STEP = 0.05  # size of one normalised style step per unit of guidance scale


class RandomFeatures(nn.Module):
    """A fixed, seeded random-filter convnet: a multi-scale feature pyramid with no
    downloaded weights. Random filters followed by nonlinearities already capture texture
    statistics well (Ustyuzhaninov et al. 2017), which is what style transfer needs."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 96, 128), seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        cin = 3
        for w in widths:
            conv = nn.Conv2d(cin, w, 3, padding=1, padding_mode="reflect")
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(2.0 / (cin * 9)))
                conv.bias.zero_()
            self.convs.append(conv)
            cin = w
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x]
        h = x
        for i, conv in enumerate(self.convs):
            if i > 0:
                h = F.avg_pool2d(h, 2)
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return feats


class StyleGuide:
    """Sliced-Wasserstein distance between the multi-scale random-feature distributions of an
    image and a reference (Heitz et al. 2021): project features on fixed random directions,
    sort, compare quantiles. Level 0 is the raw colour distribution (the palette)."""

    def __init__(self, reference: torch.Tensor, directions: int = 32, seed: int = 0,
                 widths: tuple[int, ...] = (32, 64, 96, 128), max_points: int = 16384):
        with torch.inference_mode(False):
            self.net = RandomFeatures(widths, seed).to(reference.device)
            g = torch.Generator().manual_seed(seed + 1)
            chans = [3, *widths]
            self.dirs = [F.normalize(torch.randn(c, directions, generator=g), dim=0).to(reference.device)
                         for c in chans]
        self.max_points = max_points
        self.gen = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad():
            self.ref = [self._sorted(f, d) for f, d in zip(self.net(reference.float().clone()), self.dirs)]

    def _sorted(self, f: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Sorted projections (directions, points) of all feature vectors of the batch."""
        c = f.shape[1]
        pts = f.permute(0, 2, 3, 1).reshape(-1, c)
        if pts.shape[0] > self.max_points:
            idx = torch.randperm(pts.shape[0], generator=self.gen)[: self.max_points].to(pts.device)
            pts = pts[idx]
        return torch.sort((pts @ d).T, dim=1).values

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over levels of the squared quantile differences (differentiable in x)."""
        total = x.new_zeros(())
        for f, d, ref in zip(self.net(x.float()), self.dirs, self.ref):
            proj = self._sorted(f, d)
            if ref.shape[1] != proj.shape[1]:
                ref = F.interpolate(ref[None], size=proj.shape[1], mode="linear", align_corners=True)[0]
            total = total + ((proj - ref) ** 2).mean() / (ref.var() + 1e-6)
        return total / len(self.ref)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """d loss / d x, usable inside no_grad / inference_mode sampling loops."""
        with torch.inference_mode(False), torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(self.loss(xg), xg)
        return g.to(x.dtype)


def style_steered(model: DenoiseFn, guide: StyleGuide, scale: float, sigma_min: float = 0.0,
                  split: bool = True) -> DenoiseFn:
    """Wrap a denoise function so each estimate with sigma >= sigma_min moves by
    scale * STEP along the normalised negative gradient of the style loss: D' = D - step g / rms(g).
    split: in ceil(scale) equal steps with a fresh gradient each (stable for strong guidance),
    else in one step. scale 0 disables the guidance."""
    if scale <= 0:
        return model
    n = max(1, int(math.ceil(scale))) if split else 1
    step = STEP * scale / n

    def steered(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d = model(x, sigma)
        if float(torch.as_tensor(sigma).reshape(-1)[0]) < sigma_min:
            return d
        for _ in range(n):
            g = guide.grad(d)
            d = d - step * g / g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
        return d
    return steered
