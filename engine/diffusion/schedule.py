"""The vocabulary every denoising loop shares: noise-level ranges, Karras schedules, and the
types of the model function and the progress callback.

EDM's range (Karras et al. 2022) is written here once; a loaded model carries its own range
in its descriptor (architectures/), and operations take their schedules from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch


class DenoiseFn(Protocol):
    """denoise(x, sigma) -> the denoised estimate of x at noise level sigma."""

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


Callback = Callable[[dict], None] | None


@dataclass(frozen=True)
class SigmaRange:
    """Noise levels a model was trained for, and the Karras ramp exponent rho of its schedules."""

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0

    def at_strength(self, strength: float) -> float:
        """Noise level where an SDEdit of the given strength starts: the point `strength` of the
        way along the ramp from sigma_min to sigma_max (EDM: 1 -> 80, 0.5 -> ~2.5, 0.3 -> ~0.3)."""
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return float((lo + strength * (hi - lo)) ** self.rho)

    def schedule(self, steps: int, sigma_start: float | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
        """Sigmas from sigma_start (default sigma_max: pure noise) down to sigma_min, then 0."""
        start = self.sigma_max if sigma_start is None else sigma_start
        return karras_sigmas(max(1, steps), self.sigma_min, max(start, self.sigma_min * 1.01), self.rho, device)

    def ramp(self, steps: int, sigma_start: float, sigma_end: float,
             device: torch.device | str = "cpu") -> torch.Tensor:
        """A ramp of this range's shape between two given levels (restoration runs a short one), then 0."""
        return karras_sigmas(steps, min(sigma_end, sigma_start), sigma_start, self.rho, device)


EDM = SigmaRange()


def karras_sigmas(n: int, sigma_min: float = EDM.sigma_min, sigma_max: float = EDM.sigma_max,
                  rho: float = EDM.rho, device: torch.device | str = "cpu") -> torch.Tensor:
    """n noise levels from sigma_max down to sigma_min, plus a final 0 (EDM eq. 5)."""
    if n < 1:
        raise ValueError("need at least one step")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    if n == 1:
        sigmas = torch.tensor([sigma_max], dtype=torch.float64)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float().to(device)
