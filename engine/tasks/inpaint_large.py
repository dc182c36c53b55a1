"""Large holes (objects, outpainting): exemplar completion, then a light diffusion pass on the seam.

A hole too deep for the thin-hole path is filled at the crop's full resolution by the
synthesis core (engine.synthesis.complete: coarse-to-fine PatchMatch and patch voting), which
copies the picture's own texture and runs edges and horizons on from the border. The
diffusion model then only harmonises the band just inside the hole's border, refining it at a
low noise level with everything else as known context: measured on photos, a diffusion pass
over the whole fill smooths the copied texture away (a worse perceptual score than the
synthesis alone), so the interior is never resampled. `method=patch` is the synthesis alone.
Variants are completions from different seeds (different random fields, so visibly different).

Object removal (`remove`): the mask grows by a few pixels (halos and soft edges of the object
go too) and a further ring around it is kept out of the source, so no part of the object or
its fringe is copied back. A `source` input restricts where patches come from.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import images
from ..synthesis import complete
from .jobtools import Stages, make_generator, schedule

BAND = 6  # px: the band inside the hole's border that the diffusion model harmonises
BAND_SIGMA = 0.1  # its noise level: enough to reconcile a seam, too little to repaint texture
BAND_STEPS = 0.1  # sampler steps of the band pass, as a share of `steps` (at least one)
BAND_MARGIN = 16  # px of context around the band in the diffusion pass
REMOVE_GROW = 0.02  # object removal grows the mask by this share of its mean side (at least 3 px) ...
REMOVE_GROW_MIN = 3
REMOVE_RING = 2  # ... and keeps this many times that width around it out of the source


def removal_grow(regen: np.ndarray) -> int:
    box = images.mask_bbox(regen.astype(np.float32))
    return 0 if box is None else max(REMOVE_GROW_MIN, round(REMOVE_GROW * (box.h + box.w) / 2))


def source_region(regen: np.ndarray, source: np.ndarray | None, remove: bool) -> np.ndarray | None:
    """Where patches may come from (None: everywhere outside the hole)."""
    allowed = None if source is None else source > 0.5
    if remove:
        keep_out = images.dilate(regen, REMOVE_RING * removal_grow(regen))
        allowed = ~keep_out if allowed is None else allowed & ~keep_out
    if allowed is not None and not allowed.any():
        return None  # nothing left to copy from: the source restriction cannot be honoured
    return allowed


def synthesize(rgb: np.ndarray, regen: np.ndarray, source: np.ndarray | None, seed: int, n_var: int, device: str,
               progress: Callable[[int, int], None]) -> list[np.ndarray]:
    """One completion per variant (seeds seed, seed + 1, ...), at the crop's full resolution."""
    fills = []
    for v in range(n_var):
        fills.append(complete(rgb, regen, source=source, seed=seed + v, device=device,
                              progress=lambda i, n, v=v: progress(v * n + i, n_var * n)))
    return fills


def seam_band(regen: np.ndarray) -> np.ndarray:
    """Hole pixels within BAND px of a known pixel (not the image edge: outpainting has no seam there)."""
    return regen & images.dilate(~regen, BAND)


def harmonise(den, device: str, fills: list[np.ndarray], regen: np.ndarray, sampler: str, steps: int, seed: int,
              stages: Stages) -> list[np.ndarray]:
    """Refine the seam band of each fill at low noise; the rest of the fill is known context."""
    from .inpaint import Sampling  # the sampler wrapper of the inpaint op (imported late: it imports us)

    band = seam_band(regen)
    box = images.mask_bbox(band.astype(np.float32))
    if box is None:
        return fills
    h, w = regen.shape
    y0, y1 = images.grow_to_multiple(max(0, box.y0 - BAND_MARGIN), min(h, box.y1 + BAND_MARGIN), h, den.stride)
    x0, x1 = images.grow_to_multiple(max(0, box.x0 - BAND_MARGIN), min(w, box.x1 + BAND_MARGIN), w, den.stride)
    sl = (slice(y0, y1), slice(x0, x1))
    known = images.to_model([f[sl] for f in fills], device)
    hard = images.mask_to_model(band[sl].astype(np.float32), device)
    sigmas = schedule(band_steps(steps), BAND_SIGMA, device)
    sampling = Sampling(den, device, known, hard, make_generator(seed), sampler, stages, "diffusion")
    out = images.from_model(sampling.run(known.clone(), sigmas))
    result = []
    for f, o in zip(fills, out):
        f = f.copy()
        f[sl] = np.where(band[sl][..., None], o, f[sl])
        result.append(f)
    return result


def band_steps(steps: int) -> int:
    return max(1, round(steps * BAND_STEPS))
