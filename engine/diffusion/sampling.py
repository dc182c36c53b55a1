"""Samplers, and the registry of every denoising loop.

A loop is a plain function `(model, x, sigmas, callback=None, generator=None, **options) -> x`,
where `model(x, sigma)` returns the denoised estimate (denoiser.model_fn) and `x` starts at
noise level `sigmas[0]`. The callback receives a dict after every step and cancels by raising;
the generator draws any fresh noise (deterministic loops ignore it). Options are per loop:
churn for Euler and Heun, the observation and its operator for plug-and-play restoration.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .pnp import plug_and_play
from .schedule import Callback, DenoiseFn


def _report(callback: Callback, i: int, total: int, x: torch.Tensor, sigma: torch.Tensor,
            denoised: torch.Tensor) -> None:
    if callback is not None:
        callback({"step": i + 1, "total": total, "x": x, "sigma": float(sigma), "denoised": denoised})


def _churn(x: torch.Tensor, sigma: torch.Tensor, gamma: float, noise: Callable[[torch.Tensor], torch.Tensor]):
    """Raise the noise level from sigma to sigma*(1+gamma) by adding fresh noise."""
    if gamma <= 0:
        return x, sigma
    sigma_hat = sigma * (1 + gamma)
    return x + noise(x) * (sigma_hat**2 - sigma**2).sqrt(), sigma_hat


def _gamma(sigma: torch.Tensor, n: int, s_churn: float, s_tmin: float, s_tmax: float) -> float:
    if s_churn <= 0 or not (s_tmin <= float(sigma) <= s_tmax):
        return 0.0
    return min(s_churn / n, math.sqrt(2) - 1)


def _default_noise(generator: torch.Generator | None) -> Callable[[torch.Tensor], torch.Tensor]:
    def noise(x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return noise


def _sample_ode(model: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback, s_churn: float,
                s_tmin: float, s_tmax: float, generator: torch.Generator | None, heun: bool) -> torch.Tensor:
    """The probability-flow ODE step loop shared by Euler and Heun (optionally with churn)."""
    noise = _default_noise(generator)
    n = len(sigmas) - 1
    for i in range(n):
        gamma = _gamma(sigmas[i], n, s_churn, s_tmin, s_tmax)
        x, sigma = _churn(x, sigmas[i], gamma, noise)
        denoised = model(x, sigma)
        d = (x - denoised) / sigma
        dt = sigmas[i + 1] - sigma
        if not heun or sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_next = x + d * dt
            denoised_next = model(x_next, sigmas[i + 1])
            d_next = (x_next - denoised_next) / sigmas[i + 1]
            x = x + (d + d_next) / 2 * dt
        _report(callback, i, n, x, sigma, denoised)
    return x


@torch.no_grad()
def sample_euler(model: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
                 generator: torch.Generator | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                 s_tmax: float = float("inf")) -> torch.Tensor:
    """First-order Euler steps on the probability-flow ODE (optionally with churn)."""
    return _sample_ode(model, x, sigmas, callback, s_churn, s_tmin, s_tmax, generator, heun=False)


@torch.no_grad()
def sample_heun(model: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
                generator: torch.Generator | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                s_tmax: float = float("inf")) -> torch.Tensor:
    """EDM's second-order Heun sampler (Algorithm 2); the last step to 0 is Euler."""
    return _sample_ode(model, x, sigmas, callback, s_churn, s_tmin, s_tmax, generator, heun=True)


@torch.no_grad()
def sample_dpmpp_2m(model: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """DPM-Solver++(2M): a multistep second-order solver in log-sigma time (Lu et al. 2022).
    Deterministic: it draws no noise, so the generator is unused."""
    n = len(sigmas) - 1
    old_denoised = None
    h_last = None
    for i in range(n):
        denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            t, t_next = -sigmas[i].log(), -sigmas[i + 1].log()
            h = t_next - t
            if old_denoised is None:
                d = denoised
            else:
                r = h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigmas[i + 1] / sigmas[i]) * x - torch.expm1(-h) * d
            h_last = h
        old_denoised = denoised
        _report(callback, i, n, x, sigmas[i], denoised)
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
}
"""The generative samplers, offered by name to the operations (their `sampler` parameter)."""

LOOPS: dict[str, Callable[..., torch.Tensor]] = {**SAMPLERS, "plug_and_play": plug_and_play}
"""Every denoising loop; plug_and_play also takes the observation (y=, operator=, noise_sigma=)."""
