"""Find thin bright or dark defects (scratches, dust, hairs) in a photo, as an inpainting mask.

Two detectors share the checks around them (a mark adds no colour; no mark starts at the
border; an optional region). The learned one (defect_net.py) runs whenever its weights are
installed, which they are in every package: it sees about 90 px around each pixel and was
trained on damage drawn over real photos and drawn scenes, so it tells a hair or a speck on
busy ground from a branch or a glint far better than fixed thresholds do (docs/performance.md,
old photos). Its probability is thresholded by `sensitivity` and grown into touching
pixels of half that probability, so a hair's faint ends join its clear middle.

The hand-built rules below are the fallback without those weights (and `learned=False`).
A scratch is a narrow ridge, brighter (or darker) than the pixels a few pixels away on *both*
sides across it, and it stays so for a long way along it. So for each of several orientations
we take the two-sided flank contrast (a pixel minus the brighter of its two flanks at distance
d along the normal; edges fail it because one flank is always on the bright side) and average
it along a segment in the line's direction. Texture also has thin ridges, but short ones in
random directions, so the segment average of texture is weak; the evidence is compared with
the local ridge energy so that grass needs a far stronger mark than a clear sky. Compact spots
brighter (or darker) than their surround in every direction are dust. Weak pixels touching
strong ones join by hysteresis. A ridge with a comparable parallel ridge a few pixels to
either side is a stripe pattern (a tiger's coat, a kimono, grass), not a scratch, and a mark
must stand out of the texture around it.

Why a mark adds no colour: scratches and dust are grey (white or black where the emulsion is
gone or dirt sits), so a pixel more saturated than its surround is a sunlit leaf, not a speck.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..images import dilate, luma, max_filter
from .defect_classes import HAIR, SCRATCH, component_kinds, extents, label_components
from .defect_evidence import MEDIAN_RADIUS, TEXTURE_GAP, grow, median_filter
from .defect_net import DefectNet, defect_probability, load_detector

OUTLIER_WINDOW = 10  # px radius of the texture window a mark is compared with
OUTLIER_SHARE = 0.1  # a mark passes when this share of its pixels stand out (its crest; the mask holds a rim)
LEARNED_LOGIT = 2.2  # the learned detector's threshold at the default sensitivity, as a logit (probability
# 0.90): a mark needs a confident core (docs/performance.md, old photos: CBSD68 photos 1-40)
LEARNED_SPAN = 4.0  # logits the threshold moves over the sensitivity's range (0.90 -> 0.55 at 1, 0.985 at 0)
LEARNED_GROW = 0.5  # pixels above this share of the threshold join a mark they touch
GROW_STEPS = 20  # px a mark may grow by through such pixels
LEARNED_VIEWS = 4  # mirrored views whose mean the network's verdict is (defect_net.VIEWS)
# Noise makes the network unsure of real marks but hardly ever sure of false ones (CBSD68 photos
# 21-30 with clipped noise, sigma 15-50: under 0.1 % of clean pixels flagged even at the lowered
# threshold), so the threshold falls by NOISE_LOGIT per grey level of measured noise sigma
# between NOISE_FLOOR (a clean file's reading) and NOISE_CAP.
NOISE_LOGIT = 0.15
NOISE_FLOOR = 3.0
NOISE_CAP = 25.0


@dataclass(frozen=True)
class DefectParams:
    """Detector knobs. `sensitivity` 0..1 scales the thresholds (higher finds more)."""

    flank: float = 3.0  # distance of the flanks: marks up to ~2*flank-2 pixels wide
    spot_flank: float = 4.5  # second ring for dust specks up to ~8 pixels across
    line_length: int = 9  # segment over which line evidence is counted (short: a 1 px line stays on it)
    reach: int = 6  # further segments a line must continue: marks shorter than ~reach*5+9 px are not lines
    angles: int = 16  # 11.25 degrees apart: a 1-pixel line stays on its segment
    context: int = 31  # window of the local ridge energy
    sensitivity: float = 0.5
    learned: bool = True  # the learned detector when its weights are installed (defect_net.py)
    noise: float = 0.0  # measured noise sigma (0..255): rules' marks must stand out of it; the network's threshold falls
    dust: bool = True
    dilate: int = 0  # px the mask grows by (the repair grows it over the marks' rims itself)
    parallel: tuple[float, ...] = (5.0, 8.0, 11.0)  # offsets where a parallel ridge marks a stripe pattern
    alone: float = 0.5  # a parallel ridge this strong (relative) makes a ridge texture
    colour: float = 0.03  # saturation (0..1) a mark may have beyond `achromatic` x its surround's
    achromatic: float = 0.6  # share of the surround's saturation a mark keeps at most (it is grey)
    hair_extent: float = 16.0  # px: a connected thin mark this long is a hair even when it curls
    hair_contrast: float = 1.3  # a hair needs this much more contrast than a straight mark
    outlier: float = 7.0  # a mark's contrast vs the texture around it, at the default sensitivity
    hair_outlier: float = 1.5  # ... times this for a curled mark (branches, hair, eyelashes curl too)
    scratch_outlier: float = 0.7  # ... and this for a long straight one (its length is evidence too)


def _pad(x: torch.Tensor, p: int) -> torch.Tensor:
    return F.pad(x, (p, p, p, p), mode="replicate")


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    x = F.avg_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, 2 * r + 1), stride=1)
    return F.avg_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (2 * r + 1, 1), stride=1)


def _shift_kernels(dist: float, angles: int) -> tuple[torch.Tensor, int]:
    """(2*angles, 1, k, k) bilinear kernels sampling the point at +/- dist along each
    orientation's normal (orientation i is the line direction pi*i/angles)."""
    p = int(math.ceil(dist)) + 1
    k = 2 * p + 1
    ks = torch.zeros(2 * angles, 1, k, k)
    for i in range(angles):
        a = math.pi * i / angles
        nx, ny = -math.sin(a), math.cos(a)  # normal to the line direction (cos a, sin a)
        for j, sign in enumerate((1.0, -1.0)):
            x, y = p + sign * dist * nx, p + sign * dist * ny
            x0, y0 = math.floor(x), math.floor(y)
            fx, fy = x - x0, y - y0
            for yy, xx, wgt in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                                (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)):
                if 0 <= yy < k and 0 <= xx < k:
                    ks[2 * i + j, 0, yy, xx] += wgt
    return ks, p


def _line_kernels(length: int, angles: int) -> torch.Tensor:
    """(angles, 1, L, L) kernels averaging over a digital (one cell per step along the major
    axis) segment through the centre: a drawn 1-pixel line fills its own digital segment,
    where a smooth kernel would also count the empty cells beside it."""
    c = (length - 1) // 2
    ks = torch.zeros(angles, 1, length, length)
    for i in range(angles):
        a = math.pi * i / angles
        dx, dy = math.cos(a), math.sin(a)
        major = max(abs(dx), abs(dy))
        for t in range(-c, c + 1):
            ks[i, 0, c + round(t * dy / major), c + round(t * dx / major)] = 1.0
        ks[i] /= ks[i].sum()
    return ks


def _segment_steps(length: int, angles: int) -> list[tuple[int, int]]:
    """Integer (dy, dx) of one segment length along each orientation."""
    d = length // 2 + 1
    return [(round(d * math.sin(math.pi * i / angles)), round(d * math.cos(math.pi * i / angles)))
            for i in range(angles)]


def _shift_along(x: torch.Tensor, steps: list[tuple[int, int]], k: int) -> torch.Tensor:
    """out[:, i] = x[:, i] sampled k segments further along orientation i, edges replicated."""
    p = abs(k) * max(max(abs(dy), abs(dx)) for dy, dx in steps)
    xp = _pad(x, p)
    h, w = x.shape[-2:]
    return torch.stack([xp[:, i, p + k * dy:p + k * dy + h, p + k * dx:p + k * dx + w]
                        for i, (dy, dx) in enumerate(steps)], dim=1)


def _continued(along: torch.Tensor, steps: list[tuple[int, int]], reach: int) -> torch.Tensor:
    """Line evidence that holds on `reach` further segments in a row through the pixel: the
    best, over windows of reach+1 consecutive segments containing it, of the weakest one."""
    if reach <= 0:
        return along
    # Orientations are 180/n degrees apart, so a line drifts across the sampled direction:
    # take the further segments' evidence from a small neighbourhood.
    loose = max_filter(along, 2)
    shifted = {j: along if j == 0 else _shift_along(loose, steps, j) for j in range(-reach, reach + 1)}
    best = None
    for start in range(-reach, 1):
        window = shifted[start]
        for j in range(start + 1, start + reach + 1):
            window = torch.minimum(window, shifted[j])
        best = window if best is None else torch.maximum(best, window)
    return best


def _beside(ridge: torch.Tensor, dists: tuple[float, ...]) -> torch.Tensor:
    """Per orientation, the strongest ridge of the same orientation at +/- each distance
    along its normal, give or take a pixel (a neighbour's crest may be one pixel wide)."""
    n = ridge.shape[1]
    p = int(math.ceil(max(dists)))
    rp = _pad(max_filter(ridge, 1), p)
    h, w = ridge.shape[-2:]
    out = torch.zeros_like(ridge)
    for i in range(n):
        a = math.pi * i / n
        nx, ny = -math.sin(a), math.cos(a)
        for d in dists:
            for sgn in (1, -1):
                dy, dx = round(sgn * d * ny), round(sgn * d * nx)
                out[:, i] = torch.maximum(out[:, i], rp[:, i, p + dy:p + dy + h, p + dx:p + dx + w])
    return out


def _long_runs(mask: torch.Tensor, extent: float) -> torch.Tensor:
    """The 8-connected parts of a (H, W) bool mask whose bounding-box diagonal reaches `extent`."""
    labels, n = label_components(mask.numpy())
    if n == 0:
        return torch.zeros_like(mask)
    keep = extents(labels, n) >= extent
    keep[0] = False
    return torch.from_numpy(keep[labels])


def _saturation(rgb: torch.Tensor) -> torch.Tensor:
    return rgb.amax(dim=1, keepdim=True) - rgb.amin(dim=1, keepdim=True)


def _hysteresis(strong: torch.Tensor, weak: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Grow `strong` through 8-connected `weak` pixels (bool (1,1,H,W)), a few pixels at
    most: seeds lie all along a mark, so long growth is never needed."""
    grown = strong
    for _ in range(iterations):
        nxt = (max_filter(grown.float(), 1) > 0.5) & weak | strong
        if torch.equal(nxt, grown):
            break
        grown = nxt
    return grown


def _outliers(lum: torch.Tensor, mask: np.ndarray, ratio: float, hair: float, line: float) -> np.ndarray:
    """Keep the marks that stand `ratio` times further out of a local median than the
    unmarked pixels near them do: a thin bright window sill or branch is no stronger than
    the building or tree texture around it, a scratch or speck is. Measured per pixel
    (texture in a 21 px window), so a long scratch is judged where it crosses flat areas
    as well as busy ones; a mark passes when a tenth of its pixels do (its crest: the mask
    also holds a rim)."""
    if ratio <= 0 or not mask.any():
        return mask
    y = lum[0, 0].numpy() * 255.0
    contrast = np.abs(y - median_filter(y, MEDIAN_RADIUS))
    free = torch.from_numpy(~grow(mask, TEXTURE_GAP)).float()[None, None]
    c = torch.from_numpy(contrast)[None, None]
    texture = _box(c * free, OUTLIER_WINDOW) / _box(free, OUTLIER_WINDOW).clamp(min=1e-3)
    texture = texture[0, 0].clamp(min=1.0).numpy()
    labels, n = label_components(mask)
    needed = np.full(4, ratio, np.float32)  # per class code: the contrast a mark's pixel needs, over the texture
    needed[HAIR], needed[SCRATCH] = hair * ratio, line * ratio
    per_mark = needed[component_kinds(mask, labels, n)]
    out = contrast >= per_mark[labels] * texture
    size = np.maximum(np.bincount(labels.ravel(), minlength=n + 1), 1)
    keep = np.bincount(labels[out & mask], minlength=n + 1) / size >= OUTLIER_SHARE
    keep[0] = False
    return keep[labels]


@torch.no_grad()
def detect_defects(image: np.ndarray | torch.Tensor, params: DefectParams = DefectParams(),
                   region: np.ndarray | None = None) -> np.ndarray:
    """Boolean (H, W) mask of thin bright/dark defects in an RGB image.

    `image`: (H, W, 3) in [0, 255] (numpy), or (1, 3, H, W) in [-1, 1] (torch).
    `region`: optional (H, W) mask; defects are only reported inside it.
    Only grey marks away from the border are kept (module docstring).
    """
    if isinstance(image, np.ndarray):
        rgb = torch.from_numpy(np.ascontiguousarray(image[..., :3], dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    else:
        rgb = (image[:, :3].float().cpu() + 1) / 2
    sat = _saturation(rgb)
    allowed = sat <= params.achromatic * _box(sat, 4) + params.colour  # a mark adds no colour
    b = int(math.ceil(params.flank))
    allowed[..., :b, :] = allowed[..., -b:, :] = False  # no mark starts at the border
    allowed[..., :, :b] = allowed[..., :, -b:] = False
    net = load_detector() if params.learned else None
    mask = _learned(rgb, net, params, allowed) if net is not None else _rules(rgb, params, allowed)
    mask = dilate(mask, params.dilate)
    if region is not None:
        mask &= np.asarray(region).reshape(mask.shape) > 0
    return mask


def _learned(rgb: torch.Tensor, net: DefectNet, params: DefectParams, allowed: torch.Tensor) -> np.ndarray:
    """The network's marks: pixels above the sensitivity's probability, grown through
    neighbours above LEARNED_GROW of it (a hair's faint ends join its clear middle)."""
    prob = torch.from_numpy(defect_probability(rgb, net, views=LEARNED_VIEWS))[None, None]
    s = float(np.clip(params.sensitivity, 0.0, 1.0))
    noisy = float(np.clip(params.noise, NOISE_FLOOR, NOISE_CAP)) - NOISE_FLOOR
    threshold = 1.0 / (1.0 + math.exp(-(LEARNED_LOGIT - LEARNED_SPAN * (s - 0.5) - NOISE_LOGIT * noisy)))
    strong = (prob > threshold) & allowed
    return _hysteresis(strong, (prob > LEARNED_GROW * threshold) & allowed, iterations=GROW_STEPS)[0, 0].numpy()


def _rules(rgb: torch.Tensor, params: DefectParams, allowed: torch.Tensor) -> np.ndarray:
    """The hand-built detector (module docstring): ridges, spots and curled runs that stand
    out of their texture."""
    lum = luma(rgb)
    n = params.angles
    shifts, p = _shift_kernels(params.flank, n)
    flanks = F.conv2d(_pad(lum, p), shifts)  # (1, 2n, H, W): the two flanks per orientation
    d1, d2 = lum - flanks[:, 0::2], lum - flanks[:, 1::2]
    # dust specks up to ~2*spot_flank wide: compared with a ring a little further out
    ring, pr = _shift_kernels(params.spot_flank, n)
    around = F.conv2d(_pad(lum, pr), ring)
    s1, s2 = lum - around[:, 0::2], lum - around[:, 1::2]
    lines = _line_kernels(params.line_length, n)
    q = params.line_length // 2
    s = float(np.clip(params.sensitivity, 0.0, 1.0))
    k_pix = 4.0 - 3.0 * s  # a mark pixel's contrast vs the local ridge energy (2.5 at the default)
    floor = 0.2 - 0.16 * s  # contrast floor in luma (0.12, about 30 grey levels, at the default)
    floor = max(floor, 3.0 * params.noise / 255.0)
    coverage = 0.6  # share of a segment that must be mark pixels
    mask = torch.zeros_like(lum, dtype=torch.bool)
    steps = _segment_steps(params.line_length, n)
    for sign in (1.0, -1.0):  # bright, then dark marks
        ridge = torch.minimum(sign * d1, sign * d2)
        ridge = ridge.clamp(min=0)  # (1, n, H, W) two-sided contrast per orientation
        energy = _box(ridge.amax(dim=1, keepdim=True), params.context // 2)  # a thin mark barely moves it
        ridge = torch.where(_beside(ridge, params.parallel) > params.alone * ridge, torch.zeros_like(ridge), ridge)
        peak = ridge.amax(dim=1, keepdim=True)
        sig = ((ridge > floor) & (ridge > k_pix * energy)).float()  # a mark pixel, per orientation
        # Share of significant pixels along each orientation, and whether that continues
        # for `reach` more segments (texture ridges are short and point every which way;
        # counting pixels, not averaging contrast, keeps a scratch that crosses a patch
        # of its own colour).
        along = _continued(F.conv2d(_pad(sig, q), lines, groups=n), steps, params.reach)
        best, idx = along.max(dim=1, keepdim=True)
        strong = (best > coverage) & (sig.amax(dim=1, keepdim=True) > 0) & allowed
        # hairs: thin, curled marks too bent for the segment test; any connected run of
        # clear ridge pixels reaching hair_extent counts
        clear = (peak > params.hair_contrast * floor) & (peak > params.hair_contrast * k_pix * energy) & allowed
        strong |= _long_runs(clear[0, 0], params.hair_extent)[None, None]
        if params.dust:
            # brighter than the surround in every direction, at either ring distance
            spot = torch.maximum(ridge.amin(dim=1, keepdim=True),
                                 torch.minimum(sign * s1, sign * s2).amin(dim=1, keepdim=True))
            strong |= (spot > 2.4 * k_pix * energy) & (spot > 1.5 * floor) & allowed
        # grow into pixels with at least a third of the contrast of the seeds next to them
        seed_level = max_filter(torch.where(strong, peak, torch.zeros_like(peak)), 2)
        weak = (peak > 0.35 * seed_level) & (peak > 0.5 * floor)
        mask |= _hysteresis(strong, weak)
    out = mask[0, 0].cpu().numpy()
    return _outliers(lum, out, params.outlier * (1.6 - 1.2 * s), params.hair_outlier, params.scratch_outlier)
