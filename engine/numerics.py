"""Numerical solvers shared by the classical fills and the restoration operators."""
from __future__ import annotations

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
