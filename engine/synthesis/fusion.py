"""Gradient-domain fusion of a completed hole: the copied pieces meet without steps.

A fill copied piece by piece from different places carries each place's brightness: on a
smooth area (a saucer, a wall in shade) a piece from the lit side next to one from the shade
is a flat block with a straight, visible edge. As in gradient-domain fusion (Perez et al.
2003 for cloning; Agarwala et al. 2004, Photomontage, for pieces), the fill is rebuilt from
gradients: inside a piece its own, across a cut between two pieces what the source of one of
them has there (its texture, without the step), with the known pixels around the hole fixed;
the correction is the smooth solution of a Poisson equation (conjugate gradients). A cut whose
step is large is an object edge (sky against a forest): it is kept, otherwise the object's
colour would bleed across it as a haze. Cuts in texture are kept too: they do not show, and
rebuilding them evens out the texture's own contrast.
"""
from __future__ import annotations

import torch

from ..numerics import conjugate_gradient

CG_ITERATIONS = 300  # conjugate-gradient steps; the correction is smooth, so a few hundred settle it
CG_TOL = 1e-4  # ... or until the residual falls below this share of the first one
SMOOTH_MAX = 0.015  # cuts are rebuilt only where both sources' own steps there stay below this (0-1 scale)


def _natural(img: torch.Tensor, picked: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pixel p of a box that copies source a (flat index into img): img[a + step] - img[a]
    (what follows p in its own source) and img[a] - img[a - step] (what precedes it); 0 where p
    copies nothing (picked -1)."""
    c = img.shape[0]
    flat = img.reshape(c, -1)
    n = flat.shape[1]
    a = picked.reshape(-1).clamp(0, n - 1)
    use = (picked >= 0).reshape(-1)
    here = flat[:, a]
    zero = torch.zeros_like(here)
    fwd = torch.where(use, flat[:, (a + step).clamp(0, n - 1)] - here, zero)
    bwd = torch.where(use, here - flat[:, (a - step).clamp(0, n - 1)], zero)
    return fwd.view(c, *picked.shape), bwd.view(c, *picked.shape)


def _residual(img: torch.Tensor, est: torch.Tensor, picked: torch.Tensor, axis: int, edge: float) -> torch.Tensor:
    """Per edge along `axis` of the box (p -> next pixel q): the wanted gradient minus est's; 0 on
    edges within a piece, between known pixels, and across an object edge (|step| > edge)."""
    fwd, bwd = _natural(img, picked, 1 if axis == 2 else img.shape[2])
    sl_p = (slice(None), slice(None, -1)) if axis == 1 else (slice(None), slice(None), slice(None, -1))
    sl_q = (slice(None), slice(1, None)) if axis == 1 else (slice(None), slice(None), slice(1, None))
    copied = (picked >= 0)[None].float()
    hp, hq = copied[sl_p], copied[sl_q]
    step = est[sl_q] - est[sl_p]
    rp, rq = fwd[sl_p] - step, bwd[sl_q] - step  # each side's source says this much differently
    # of two sides that both copy, the one closer to the step (in texture either is a fair sample,
    # and their mean would halve the texture's contrast across every cut)
    closer_p = (rp.abs().amax(0, keepdim=True) <= rq.abs().amax(0, keepdim=True)) | (hq == 0)
    r = torch.where(closer_p & (hp > 0), rp, rq)
    keep = ((hp + hq) > 0) & (r.abs().amax(0, keepdim=True) <= edge)
    # only where the sources are smooth there: in texture a cut does not show, and rebuilding it
    # evens out the texture's own contrast
    keep &= torch.maximum(fwd[sl_p].abs() * hp, bwd[sl_q].abs() * hq).amax(0, keepdim=True) <= SMOOTH_MAX
    return torch.where(keep, r, torch.zeros_like(r))


def _apply(x: torch.Tensor, hole: torch.Tensor, deg: torch.Tensor) -> torch.Tensor:
    """The Laplacian on the hole (x is 0 on known pixels): deg * x - sum of 4-neighbours."""
    s = torch.zeros_like(x)
    s[:, 1:] += x[:, :-1]
    s[:, :-1] += x[:, 1:]
    s[:, :, 1:] += x[:, :, :-1]
    s[:, :, :-1] += x[:, :, 1:]
    return torch.where(hole[None], deg * x - s, torch.zeros_like(x))


def fuse(img: torch.Tensor, est: torch.Tensor, hole: torch.Tensor, picked: torch.Tensor, edge: float
         ) -> torch.Tensor:
    """est (c, h, w) rebuilt inside `hole` from its pieces' own gradients (see the module docstring).

    img: the source image (known pixels valid); picked: (h, w) flat source index each hole pixel
    copies (-1: none); edge: steps larger than this (any channel, 0-1 scale) are kept."""
    ys, xs = torch.nonzero(hole, as_tuple=True)
    if len(ys) == 0:
        return est
    h, w = hole.shape
    y0, y1, x0, x1 = max(0, int(ys.min()) - 1), min(h, int(ys.max()) + 2), max(0, int(xs.min()) - 1), min(w, int(xs.max()) + 2)
    hb = hole[y0:y1, x0:x1]
    pb = torch.where(hb, picked[y0:y1, x0:x1], torch.full_like(hb, -1, dtype=torch.long))
    eb = est[:, y0:y1, x0:x1]
    rx, ry = _residual(img, eb, pb, 2, edge), _residual(img, eb, pb, 1, edge)
    b = torch.zeros_like(eb)
    b[:, :, 1:] += rx
    b[:, :, :-1] -= rx
    b[:, 1:] += ry
    b[:, :-1] -= ry
    b = torch.where(hb[None], b, torch.zeros_like(b))
    deg = _full_degree(y0, y1, x0, x1, h, w, hb.device)  # edges beyond the image do not exist
    x = conjugate_gradient(lambda v: _apply(v, hb, deg), b, torch.zeros_like(b), precond=lambda v: v / deg,
                           max_iter=CG_ITERATIONS, tol=CG_TOL)
    out = est.clone()
    out[:, y0:y1, x0:x1] += torch.where(hb[None], x, torch.zeros_like(x))
    return out


def _full_degree(y0: int, y1: int, x0: int, x1: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """Number of 4-neighbours inside the whole image for each pixel of the box."""
    yy = torch.arange(y0, y1, device=device)[:, None]
    xx = torch.arange(x0, x1, device=device)[None]
    return (4 - (yy == 0).float() - (yy == h - 1).float() - (xx == 0).float() - (xx == w - 1).float())
