"""Large holes (objects, outpainting): exemplar completion at full resolution.

A hole too deep for the thin-hole path is filled at the crop's full resolution by the
synthesis core (engine.synthesis.complete: coarse-to-fine PatchMatch and patch voting), which
copies the picture's own texture and runs edges and horizons on from the border; the
composite's colour match then removes a lighting offset at the border. The seam blend
(synthesis.blend) removes the step where the fill meets the known pixels; in an outpainted
strip (the hole takes a whole side) every step is a seam, in a removal a large one is an
object edge. The diffusion model is not run over the fill: measured on photos, a pass over the whole hole at strength 0.25 smooths
the copied texture (a worse perceptual score than the synthesis alone), and a low-noise pass
(sigma 0.1) over just a 6 px band inside the border left a visibly off-colour strip with the
built-in model (outpainting a savanna photo), where the synthesis alone had no seam.
Variants are completions from different seeds (different random fields, so visibly different).

Outpainting (the hole takes a whole side) sees the whole picture as context, and its matches
carry a price that grows with their distance from the target (synthesis.Settings.near, scaled
by the strip's width at each pyramid level): a far source must match much better, so the strip
continues what is at the old edge instead of cloning a distant object (a penguin, a tiger's
head) into it. Priced on every pixel of distance, each target copies the border column nearest
to it, and a subject touching the border is drawn out sideways (horizontal streaks through skin,
fur, sand). So the full price holds only at the two coarsest levels, where the strip is a few
patches wide and its layout is decided; the finer levels pay only a small share of it (a
tie-breaker on flat areas, where pieces from anywhere would show their edges) within 0.7 strip
widths and the full price past that, so their texture comes in coherent, unstretched
pieces. The finer levels run three EM rounds instead of one, which sharpens the strip (the
first round still matches the blurry upsampled estimate).

Object holes (REMOVAL) end with a gradient-domain fusion of the cuts between copied pieces on
smooth areas (synthesis.fusion): no flat blocks with square steps where the context is smooth.

Object removal (`remove`): the mask grows by a few pixels (halos and soft edges of the object
go too) and a further ring around it is kept out of the source, so no part of the object or
its fringe is copied back. A `source` input restricts where patches come from.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import images
from ..synthesis import Settings, complete
from ..synthesis.blend import pull_low, seam_blend

REMOVE_GROW = 0.02  # object removal grows the mask by this share of its mean side (at least 3 px) ...
REMOVE_GROW_MIN = 3
REMOVE_RING = 2  # ... and keeps this many times that width around it out of the source
# Outpainting, measured on the first ten CBSD68 photos (right quarter; PatchMatch 0.193 in the
# same run): patch distance 0.276 before (crop context, one finest EM round); whole picture, two
# finest rounds and a price on the distance from the hole instead (0.008): 0.235 (a tiger's head
# cloned); near price 0.024 / 0.045 / 0.08: 0.191 / 0.183 / 0.174 (each draws the border out
# sideways). On removal the price on the distance from the hole made the patch distance worse
# (0.217 -> 0.231 on six photos); object holes (REMOVAL below) pay one at coarse levels. The streaks,
# same ten photos: full price at the two coarsest levels only, free within 1 / 0.7 / 0.5 / 0.3 strip widths finer:
# 0.198 / 0.192 / 0.191 / 0.189 (two finest rounds); 0.7 with three rounds: 0.181, texture ratio
# 1.04, the long streaks gone, but a blurred background (the docs' cat) shows the pieces' edges;
# 3 % of the price inside the band as a tie-breaker: 0.182, texture 1.06, seam 0.92, edges gone
# (10 % / 30 %: 0.185 / 0.180, the streaks back on the tiger's ground). A price per reuse of a
# source (spreading the copies) and a guide from the picture mirrored across the edge removed
# streaks too but scored 0.21-0.24 (a mirrored tiger's head).
OUTPAINT = Settings(near=0.045, near_levels=2, near_free=0.7, near_inside=0.03, em_fine=3)
# Object removal, measured on the first 20 CBSD68 photos with the bench's object masks (patch
# distance; PatchMatch 0.259 in the same runs): core defaults (6 EM rounds at the coarsest level,
# two fewer per finer level) 0.287; 10 rounds 0.263; 14 rounds 0.255: more rounds at the finer
# levels settle the field (with decay 1.8, dropping 4 rounds per level instead of 2: 0.254 against
# 0.241). A steeper confidence decay (1.8 instead of 1.3) scored 0.241 but cloned pieces of
# objects at the border into the fill (the astronaut's helmet into the sky behind the rocket in
# docs/img/removal_before_after.png): not taken. The cost: 2x the synthesis time at 512², 1.3x
# at 2048².
# The same runs with the 14 rounds: square-edged flat blocks where the surroundings are smooth
# (the spoon's foot in docs/img/removal_before_after.png, a penguin's misty background): pieces
# copied from the lit and the shaded side meet with a step, along the square contours of the
# confidence's chessboard depth. Octagonal depth (round_depth) rounds the pieces (numbers
# unchanged: 0.266 on the first ten); gradient-domain fusion of the cuts (fuse, synthesis.fusion)
# removes the steps: hole PSNR 14.16 -> 14.29 dB on the 20 photos, patch distance 0.255 -> 0.257,
# texture ratio 0.93 -> 0.93. Fusing textured cuts too raised PSNR to 14.39 but the patch
# distance to 0.263 (worse than PatchMatch); a membrane of the border as guidance (+0.1-0.4 dB
# on ten) filled the gap between two statues with statue (docs/performance.md).
# Wrong layouts (sky coming down over the bushes behind a hut, dark ground growing up a tiger's
# chest) were most of the remaining PSNR gap. The outpainting's near price at the two coarsest
# levels only (nothing finer), same 20 photos, patch distance / hole PSNR / texture ratio: none
# 0.257 / 14.29 / 0.93; near 0.005: 0.235 / 14.57 / 0.93; 0.01: 0.236 / 14.54 / 0.93; 0.015:
# 0.232 / 14.61 / 0.91. The hut, the castle's reflection, a cliff and a lying tiger get the right
# layout, but the rocket's smoke in docs/img/removal_before_after.png gets a straight vertical step
# (its right part copied from the nearer, lighter border; fuse 0.15-0.25 keeps it) and a bright
# band runs down a sandy field. Paid in the first half of each of those levels' rounds only
# (near_rounds), the layouts stay and the step and band go: 0.241 / 14.53 / 0.91. Weaker prices
# (0.0025-0.005) or at the coarsest level only (0.01: 0.244 / 14.45): pieces of the helmet at the
# suit's foot. At three levels: 0.206 / 14.38 / 1.00, at all: 0.181 / 14.26 / 1.19, with square
# blocks and repeated pieces (a spear copied twice). In the coarsest peel only: 0.270 / 14.31.
# Four random fields at the coarsest level, keeping the lowest patch-match energy: no better
# (0.580 against 0.567 on the four worst photos).
# Hole PSNR against the engine before the synthesis core (765f2b4^, tools/removal_baseline.py, same
# photos, masks and metrics: 15.65 dB on the 20, so the bar is 14.65), same 20 photos, patch distance /
# hole PSNR / texture ratio, one change at a time from 0.240 / 14.53 / 0.92: the coarsest level's free
# rounds matched against an estimate pulled halfway to the border's membrane (membrane_pull 0.5):
# 0.234 / 14.58 / 0.93 (0.8: 0.239 / 14.49; at the two coarsest levels, 0.5 / 0.3: 0.275 / 14.87 and
# 0.263 / 14.81 with texture 0.84-0.85, smoothed); the fill's low frequencies (Gaussian of half the hole's
# depth) pulled halfway to the membrane, fading in over a quarter of the depth: 0.236 / 14.85, 0.7:
# 0.239 / 14.85, but a white cloud or a dark coat filled in where the truth has branches or a face
# became a washed-out grey stain; pulling only tone offsets (PULL_CAP 0.06 in blend.py): 0.238 / 14.58;
# near_rounds 0.6: 0.235 / 14.59 / 0.89. Both pulls together (cap 0.1): 0.233 / 14.67 / 0.93, no stains.
REMOVAL = Settings(em_coarse=14, round_depth=True, fuse=0.1, near=0.015, near_levels=2, near_free=math.inf,
                   near_rounds=0.5, membrane_pull=0.5)
REMOVAL_PULL = 0.5  # the fill's tone offsets (not its layout) move this far toward the border's membrane


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


def outpainting(regen: np.ndarray) -> bool:
    """The hole takes a whole side of the picture: a canvas extension, not an object."""
    return bool(regen[0].all() or regen[-1].all() or regen[:, 0].all() or regen[:, -1].all())


def work_context(mask: np.ndarray, requested: int | None) -> int | None:
    """Context around the selection for the work area: the whole picture for an outpainted strip
    (see the module docstring), otherwise what was requested (None: the engine's default)."""
    if requested is None and outpainting(np.asarray(mask) > 0):
        return max(mask.shape[:2])
    return requested


def synthesize(rgb: np.ndarray, regen: np.ndarray, source: np.ndarray | None, seed: int, n_var: int, device: str,
               progress: Callable[[int, int], None]) -> list[np.ndarray]:
    """One completion per variant (seeds seed, seed + 1, ...), at the crop's full resolution."""
    fills = []
    keep_edges = not outpainting(regen)
    settings = REMOVAL if keep_edges else OUTPAINT
    for v in range(n_var):
        fill = complete(rgb, regen, source=source, seed=seed + v, device=device, settings=settings,
                        progress=lambda i, n, v=v: progress(v * n + i, n_var * n))
        fill = seam_blend(fill, regen, keep_edges)
        fills.append(pull_low(fill, regen, REMOVAL_PULL) if keep_edges else fill)
    return fills
