"""Numerics shared by the classical fills, the image helpers and the restoration operators:
a conjugate-gradient solver and Gaussian taps."""
from __future__ import annotations

import math
from typing import Callable

import torch


def conjugate_gradient(apply_a: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, x0: torch.Tensor,
                       precond: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       max_iter: int = 200, tol: float = 1e-6) -> torch.Tensor:
    """Solve A x = b for a symmetric positive definite A (given as a function).

    Stops when ||r|| <= tol * ||b||; used where no closed form exists (boundaries, bicubic).
    """
    x = x0.clone()
    r = b - apply_a(x)
    z = precond(r) if precond else r
    p = z.clone()
    rz = torch.sum(r * z)
    b_norm = float(b.norm()) or 1.0
    for _ in range(max_iter):
        if float(r.norm()) <= tol * b_norm:
            break
        ap = apply_a(p)
        alpha = rz / torch.sum(p * ap).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = precond(r) if precond else r
        rz_new = torch.sum(r * z)
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return x


def gaussian_taps(sigma: float, radius: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, 2 * radius + 1 of them; the radius is ceil(3 sigma) unless
    given. Every Gaussian in the engine (blurs, the deblurring PSF) is built from these."""
    sigma = max(float(sigma), 1e-3)
    r = max(1, math.ceil(3 * sigma)) if radius is None else radius
    t = torch.arange(-r, r + 1, dtype=dtype)
    g = torch.exp(-t**2 / (2 * sigma**2))
    return g / g.sum()
