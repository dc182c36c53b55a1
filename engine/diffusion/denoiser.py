"""EDM-preconditioned denoiser D(x; sigma, cond) (Karras et al. 2022), and the model function.

Images live in [-1, 1]. The conditioning is the known pixels `image * (1 - mask)` and
the mask itself (1 = regenerate). Unconditional generation and plain denoising use an
all-ones mask, so the network sees no clean pixels; inpainting uses any mask.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import weakref
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import ModelDescriptor, architecture
from .schedule import DenoiseFn

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
    """Wraps a raw network with c_skip / c_out / c_in / c_noise preconditioning; carries the
    model's descriptor (stride, padding, conditioning, sigma range, precisions) and config."""

    def __init__(self, net: nn.Module, descriptor: ModelDescriptor, config: dict):
        super().__init__()
        self.net = net
        self.descriptor = descriptor
        self.config = config

    @classmethod
    def build(cls, arch: str, config: dict, sigma_data: float = SIGMA_DATA) -> "Denoiser":
        """A freshly initialised model of a registered architecture."""
        entry = architecture(arch)
        net = entry.build(config)
        return cls(net, entry.describe(config, sigma_data), entry.config_of(net))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, cond: torch.Tensor) -> torch.Tensor:
        """Return the denoised estimate of x at noise level sigma (per batch item)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(x.shape[0])
        s = sigma[:, None, None, None].to(x.dtype)
        sd = self.descriptor.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4
        h, w = x.shape[-2:]
        m = self.descriptor.stride
        ph, pw = (-h) % m, (-w) % m
        xin, cin = x * c_in, cond
        if ph or pw:
            mode = "circular" if self.descriptor.padding_mode == "circular" else "replicate"
            xin = F.pad(xin, (0, pw, 0, ph), mode=mode)
            cin = F.pad(cin, (0, pw, 0, ph), mode=mode)
        f = self.net(xin, cin, c_noise)[..., :h, :w]
        return c_skip * x + c_out * f.to(x.dtype)


def model_fn(den: Denoiser, device: torch.device | str, known: torch.Tensor | None = None,
             mask: torch.Tensor | None = None) -> DenoiseFn:
    """denoise(x, sigma) -> float32 estimate: the one place that decides precision (float32
    on a CPU, autocast to the descriptor's reduced precision on a GPU) and conditioning (the
    known pixels and mask, 1 = regenerate, when given; otherwise nothing is known)."""
    amp = den.descriptor.autocast_dtype(device)
    fixed = make_cond(known, mask, known) if known is not None else None

    def fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        cond = fixed if fixed is not None else make_cond(None, None, x)
        with torch.no_grad(), (torch.autocast("cuda", dtype=amp) if amp is not None else nullcontext()):
            return den(x, sigma, cond).float()
    return fn


_CIRCULAR: "weakref.WeakKeyDictionary[Denoiser, Denoiser]" = weakref.WeakKeyDictionary()
_CIRCULAR_LOCK = threading.Lock()


def circular_twin(den: Denoiser) -> Denoiser:
    """A twin of the model with circular padding that shares its weights (cached): its output
    tiles seamlessly. The shared model is never toggled, so another job using it is unaffected."""
    if "circular" not in den.descriptor.padding_modes:
        raise ValueError(f"a {den.descriptor.architecture} model cannot pad circularly (no tileable output)")
    with _CIRCULAR_LOCK:
        twin = _CIRCULAR.get(den)
        if twin is None:
            memo = {id(t): t for t in list(den.parameters()) + list(den.buffers())}
            twin = copy.deepcopy(den, memo)
            architecture(den.descriptor.architecture).set_padding(twin.net, "circular")
            twin.descriptor = dataclasses.replace(den.descriptor, padding_mode="circular")
            _CIRCULAR[den] = twin
        return twin


def loss_weight(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """EDM lambda(sigma) making the effective training target unit-variance."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
