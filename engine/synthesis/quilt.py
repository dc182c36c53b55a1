"""Make an image tileable by quilting its own strips into the seams (Efros and Freeman 2001,
minimum-error boundary cuts; graph-cut textures, Kwatra et al. 2003, with the image as its patch).

Offset by half, the image's edges meet in a cross through the middle. The horizontal arm is
replaced by a full-width strip of the image itself (rows that are continuous in the image),
chosen where it agrees best with what lies above and below the arm, where its middle rows (the
new wrap-around edge) differ about as much as the picture's neighbouring rows do on average and
no row of the mended band stands out, and cut in along the cheapest paths through the two halves
of the arm; then the vertical arm the same way, on the result. The strip takes the light of what it meets at each cut (a smooth offset, its detail
kept), unless the strip as it is scores clearly better (where content differs, not light). Each arm tries a band half as wide first (mend_arm). A picture that clearly repeats is
first cut to whole repeats (whole_repeats). Outside the cross nothing changes, and inside it the
detail is the picture's own (patch-by-patch completion of a wide band filled it with the commonest flat patches: a Great
Wave crop's edges became beige sky, style distance 6 times plain tiling's, and a light
correction over the whole picture greyed it); a periodic picture whose side holds whole
repeats comes back unchanged (the in-phase strip agrees exactly).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..numerics import gaussian_taps
from .lattice import axis_period

CANDIDATES = 12  # strips ranked best by their total disagreement that get their cuts computed (42 painting
# and photo crops of 160 px, seam ratio within 0.8-1.25: 34 with 6 candidates, 36 with 12)
STEP_TOL = 1.1  # a strip whose middle step is within this factor of the picture's mean step is not charged:
# the cheapest cuts favour strips from flat areas, and the wrap-around edge was then a line smoother than the
# picture (a Kandinsky crop's 0.6 of its mean step across), or from a busy area, rougher than a calm one
# (seam ratio within 0.8-1.25 on the 42 crops: 23 without the charges, 36 with)
STEP_WEIGHT = 4.0  # beyond a tolerance, a strip's cut cost is multiplied by exp(this x the log ratio's excess)
SEARCH_SIDE = 192  # the strips are ranked on a copy at most about this many pixels on its side
CUT_STARTS = 16  # a cut must close on itself around the tile: tried from at most this many rows
FEATHER = 1.0  # the cut is softened over a Gaussian this wide (pixels): a one-pixel jog in a line
KEEP = 2  # rows either side of the seam that are the strip's alone: a cut hugging the seam put a step one row
# off it, where the seam ratio cannot see it (a brick scan: a line across the tile, 13 levels against 1.5)
FIT_TOL = 0.25  # pixels: a side within this of whole repeats is left as it is (the cuts absorb the rest;
# a period is found to about 0.01 px, five bricks of 32 px read 160.02)
MIN_HALF = 2 * KEEP  # the least band half-width (rows) that leaves the cuts room
BANDS = (0.5, 1.0)  # shares of the widest band tried per arm, narrowest first
REPEAT_BAND = 0.1  # the least band along an axis that repeats: its in-phase strip agrees, a wide band costs
# nothing, and the cuts need the room to run along a mortar line (bricks with a band of 0.06: seam 0.18, 0.1: 0.07)
UNLIT_CHARGE = 1.5  # each strip is also tried as it is, without the light of what it meets, its score times this:
# where strip and picture differ in content, not light (dark water cut into an orange sky, a wall under a
# jacket), the relighting smears one colour into the other and its ramp steps at the wrap line; on the 42 crops
# seam ratio within 0.8-1.25 in 37 instead of 36 (1.25-1.5 alike, 2: 36), structure <= 1.3 in 35 as before
COLOUR_WEIGHT = 3.0  # a strip's score is multiplied by exp(this x how far the mended band's colours moved from
# the band's own, per channel mean and spread, over the picture's spread; at most COLOUR_CAP): the cheapest cuts
# often came from a strip of other content relit to fit (a night cafe's dark door turned into red strokes).
# On 96 crops (16 paintings at 96/160/256 px in four places, 16 eval photos at two): structure mean 1.247 ->
# 1.221, at most 1.3 in 65 -> 73; seam ratio within 0.8-1.25 in 75 as before (mean 1.140 -> 1.165)
COLOUR_CAP = 0.5  # uncapped, on smooth two-tone photos it overrode the wrap line's step penalty:
# structure 1.199, but seam within the band in 71, worst 3.33 (a cream and brown crop: a grey smear down the seam)
JOIN_MAX = 1.25  # a row of steps this much above the picture's mean step between rows is seen as a line


def _box3(e: np.ndarray) -> np.ndarray:
    """3 x 3 box sum over the last two axes (wrapping): the error of a pixel's neighbourhood, so a
    cut follows where the two pictures agree over an area, not along one lucky line of pixels
    (flat checks agree row by row at the wrong phase)."""
    s = e + np.roll(e, 1, -1) + np.roll(e, -1, -1)
    return s + np.roll(s, 1, -2) + np.roll(s, -1, -2)


def closed_cut(err: np.ndarray) -> tuple[np.ndarray, float]:
    """The cheapest path from left to right through `err` (m rows, n columns): one row per column,
    moving at most one row between neighbouring columns, and ending within a row of where it
    started (the tile wraps around). Returns (row per column, its cost)."""
    m, n = err.shape
    starts = np.unique(np.linspace(0, m - 1, min(m, CUT_STARTS)).round().astype(int))
    inf = np.float64(np.inf)
    cost = np.full((len(starts), m), inf)
    cost[np.arange(len(starts)), starts] = err[starts, 0]
    back = np.zeros((n, len(starts), m), np.int8)
    pad = np.full((len(starts), 1), inf)
    for j in range(1, n):
        moves = np.stack([np.concatenate([pad, cost[:, :-1]], 1), cost, np.concatenate([cost[:, 1:], pad], 1)])
        k = moves.argmin(0)
        cost = np.take_along_axis(moves, k[None], 0)[0] + err[None, :, j]
        back[j] = k - 1
    ends = np.clip(starts[:, None] + np.arange(-1, 2)[None], 0, m - 1)  # within a row of the start
    closing = np.take_along_axis(cost, ends, 1)
    s, e = np.unravel_index(int(closing.argmin()), closing.shape)
    path = np.empty(n, np.int64)
    path[-1] = ends[s, e]
    for j in range(n - 1, 0, -1):
        path[j - 1] = path[j] + back[j, s, path[j]]
    return path, float(closing[s, e])


def _feather(mask: np.ndarray) -> np.ndarray:
    """The 0/1 mask (h, w) softened across its border by a small Gaussian along the rows' axis."""
    g = gaussian_taps(FEATHER, dtype=torch.float64).numpy()
    r = len(g) // 2
    return sum(w * np.roll(mask, k, 0) for k, w in zip(range(-r, r + 1), g))


def _rank(x: np.ndarray, src: np.ndarray, half: int) -> np.ndarray:
    """Strip starts (rows of `src`) ordered by the total disagreement of a 2*half-row strip with
    the rows around x's middle; ranked on a reduced copy for large images."""
    h = x.shape[0]
    f = max(1, int(np.ceil(max(x.shape[:2]) / SEARCH_SIDE)))
    xs, ss, hs = x[::f, ::f], src[::f, ::f], max(1, half // f)
    c = xs.shape[0] // 2
    band = xs[c - hs:c + hs]
    starts = np.arange(0, xs.shape[0] - 2 * hs + 1)
    score = np.array([((ss[y:y + 2 * hs] - band) ** 2).sum() for y in starts])
    coarse = starts[np.argsort(score, kind="stable")[:CANDIDATES]] * f
    fine = np.unique(np.clip((coarse[:, None] + np.arange(f)[None]).ravel(), 0, h - 2 * half))
    c = h // 2
    full = np.array([((src[y:y + 2 * half] - x[c - half:c + half]) ** 2).sum() for y in fine])
    return fine[np.argsort(full, kind="stable")[:CANDIDATES]]


def _smooth_cyclic(v: np.ndarray, sigma: float) -> np.ndarray:
    """v (n, c) smoothed along its first axis by a Gaussian, wrapping around."""
    n = v.shape[0]
    k = np.fft.fftfreq(n)
    return np.real(np.fft.ifft(np.fft.fft(v, axis=0) * np.exp(-2 * (np.pi * k * sigma) ** 2)[:, None], axis=0))


def _relight(diff: np.ndarray, top: np.ndarray, bottom: np.ndarray, half: int) -> np.ndarray:
    """A smooth offset (2*half, w, c) that gives the strip the light of what it meets at each cut
    (`diff`: picture minus strip over the band; `top`, `bottom`: the cuts' rows per column),
    changing linearly from one cut to the other: a scan lit unevenly (its top lighter than its
    bottom) would otherwise leave a step along a cut; the strip's own detail is kept."""
    cols = np.arange(diff.shape[1])
    at_top = diff[np.clip(top, 0, len(diff) - 1), cols]
    at_bottom = diff[np.clip(bottom - 1, 0, len(diff) - 1), cols]
    sigma = max(4.0, 2.0 * half)  # broad light only: a mortar line met by brick would leave a glow
    a, b = _smooth_cyclic(at_top, sigma), _smooth_cyclic(at_bottom, sigma)
    t = np.clip((np.arange(len(diff))[:, None] - top[None]) / np.maximum(bottom - top, 1)[None], 0, 1)[..., None]
    return (a[None] * (1 - t) + b[None] * t).astype(np.float32)


def mean_step(x: np.ndarray) -> float:
    """The mean absolute difference between neighbouring pixels of x (h, w, c), down and across."""
    return 0.5 * float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())


def _penalty(ratio: float, tol: float) -> float:
    """1 while `ratio` is within a factor `tol` of 1, growing steeply beyond (STEP_WEIGHT)."""
    dev = abs(np.log(max(ratio, 1e-8)))
    return float(np.exp(STEP_WEIGHT * max(0.0, dev - np.log(tol))))


def colour_moved(a: np.ndarray, b: np.ndarray) -> float:
    """How far the colours of a differ from b's (both (..., c)): per channel, the difference of the means
    plus that of the standard deviations, summed. A mend should keep the band's content, not just meet
    its neighbours: colour statistics are what a texture measure reads first."""
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return float(np.abs(a.mean(0) - b.mean(0)).sum() + np.abs(a.std(0) - b.std(0)).sum())


def _cut_in(x: np.ndarray, strip: np.ndarray, up: np.ndarray, low: np.ndarray, half: int) -> np.ndarray:
    """x with its band of `half` rows either side of the middle replaced by `strip` between the cuts
    (`up`, `low`: per column, rows into each half of the band), softened across them."""
    h = x.shape[0]
    c = h // 2
    rows = np.arange(h)[:, None]
    mask = ((rows >= c - half + up[None]) & (rows < c + low[None])).astype(np.float32)
    soft = _feather(mask)
    soft[c - KEEP:c + KEEP] = 1.0  # the strip's alone (the feather would let through a trace of the seam)
    out = x.copy()
    band = slice(c - half, c + half)
    out[band] = x[band] * (1 - soft[band, :, None]) + strip * soft[band, :, None]
    return out


def mend_rows(x: np.ndarray, half: int, periodic: bool = False) -> np.ndarray:
    """x (h, w, c) whose rows h//2 - 1 and h//2 do not meet: the band of `half` rows either side
    replaced by a strip of x's own rows (continuous in x offset by half a height), cut in along the
    cheapest closed path through each half of the band; of the candidate strips, the one whose cuts
    are cheapest once a join that stands out is charged for (_penalty): a row of steps rougher than
    the picture's (the cheapest cut is not always a smooth one: on an unevenly lit grain, 12
    candidates instead of 6 found a cheaper cut that left a line 0.66 of the mean step above its
    neighbours), or a middle row, the new wrap-around edge, smoother or rougher than the picture
    (not when `periodic`: the in-phase strip of a repeat continues the picture exactly and its middle
    row is the picture's own), and a band whose colours moved from the rows it replaces (COLOUR_WEIGHT).
    Each strip is tried relit (_relight) and as it is (UNLIT_CHARGE)."""
    h = x.shape[0]
    c = h // 2
    src = np.roll(x, h // 2, axis=0)  # continuous everywhere but at its own top and bottom
    target = mean_step(x)
    spread = max(float(x.reshape(-1, x.shape[2]).std(0).sum()), 1e-6)
    own = x[c - half:c + half]
    near = slice(c - half - 1, c + half)
    best: tuple[float, np.ndarray] | None = None
    for y0 in _rank(x, src, half):
        strip = src[y0:y0 + 2 * half]
        err = _box3(((strip - x[c - half:c + half]) ** 2).sum(-1))
        err[half - KEEP:half + KEEP] = np.inf  # the cuts stay clear of the rows that did not meet
        up, cu = closed_cut(err[:half])
        low, cl = closed_cut(err[half:])
        lit = strip + _relight(x[c - half:c + half] - strip, up, half + low, half)
        for piece, charge in ((lit, 1.0), (strip, UNLIT_CHARGE)):
            out = _cut_in(x, piece, up, low, half)
            middle = float(np.abs(piece[half] - piece[half - 1]).mean()) / max(target, 1e-8)
            line = _penalty(max(1.0, roughest_row(out, near)), JOIN_MAX)
            score = charge * (cu + cl) * line * (1.0 if periodic else _penalty(middle, STEP_TOL))
            moved = min(COLOUR_CAP, colour_moved(out[c - half:c + half], own) / spread)
            score *= float(np.exp(COLOUR_WEIGHT * moved))
            if best is None or score < best[0]:
                best = (score, out)
    assert best is not None
    return best[1]


def whole_repeats(img: np.ndarray) -> tuple[np.ndarray, list[float | None]]:
    """img (h, w, c) float32 cut to a whole number of repeats along each axis where it clearly
    repeats (synthesis.lattice.axis_period): the middle k periods (k as many as fit, so at most one
    period shorter), resampled to the nearest whole pixel count (well under 1 %). A tile can only
    hold whole cycles: stripes 11.5 periods across a side keep a jog wherever they are cut.
    Returns the image and the period per axis (None: no clear repeat, that side unchanged)."""
    periods = [axis_period(img, 0), axis_period(img, 1)]
    box, size = [0.0, 0.0, float(img.shape[1]), float(img.shape[0])], [img.shape[1], img.shape[0]]
    for axis, p in enumerate(periods):
        n = img.shape[axis]
        if p is None:
            continue
        span = int((n + FIT_TOL) // p) * p
        if abs(n - span) < FIT_TOL:  # already whole repeats (as near as the period is known)
            continue
        i = 1 - axis  # PIL's order: x first
        box[i], box[i + 2], size[i] = (n - span) / 2, (n + span) / 2, round(span)
    if size == [img.shape[1], img.shape[0]]:
        return img, periods
    x0, y0 = round(box[0]), round(box[1])
    if all(abs(box[k] - round(box[k])) < 1e-6 for k in range(4)) and size == [round(box[2]) - x0, round(box[3]) - y0]:
        return np.ascontiguousarray(img[y0:y0 + size[1], x0:x0 + size[0]]), periods  # whole pixels: a plain crop
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., k]), "F").resize(tuple(size), Image.LANCZOS,
                                                                                       box=tuple(box)))
             for k in range(img.shape[2])]
    return np.clip(np.stack(chans, -1), 0, 1).astype(np.float32), periods


def roughest_row(x: np.ndarray, rows: slice) -> float:
    """The largest mean absolute step between neighbouring rows of x (h, w, c) within `rows`, over
    the mean step between all neighbouring rows: about 1 where the rows meet as the picture's own
    do; a cut through disagreeing detail, or the seam itself, reads well above."""
    step = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2))
    return float(step[rows].max()) / max(float(step.mean()), 1e-8)


def mend_arm(x: np.ndarray, band: float, narrow: bool = True) -> np.ndarray:
    """mend_rows with the narrowest band of BANDS (shares of `band`) whose rows all meet smoothly
    (roughest_row over the widest band at most JOIN_MAX), else the smoothest: the wider the band,
    the more of the picture its strip replaces and the wider the strip's relighting spreads (a
    Great Wave crop's wave edge met its sky in a blue haze 16 rows wide), but the more room its
    cuts have to find where strip and picture agree. `narrow` False: the widest only (a picture
    that repeats down the arm: its in-phase strips agree, and their cuts need room to run along a
    mortar line rather than through differently coloured bricks; at least REPEAT_BAND)."""
    h = x.shape[0]
    shares = BANDS if narrow else BANDS[-1:]
    band = band if narrow else max(band, REPEAT_BAND)
    halves = [min(h // 2, max(MIN_HALF, round(share * band * h / 2))) for share in shares]
    rows = slice(h // 2 - max(halves) - 1, h // 2 + max(halves))
    best: tuple[float, np.ndarray] | None = None
    for half in dict.fromkeys(halves):
        out = mend_rows(x, half, not narrow)
        r = roughest_row(out, rows)
        if r <= JOIN_MAX:
            return out
        if best is None or r < best[0]:
            best = (r, out)
    assert best is not None
    return best[1]


def make_tileable(img: np.ndarray, band: float, narrow: tuple[bool, bool] = (True, True)) -> np.ndarray:
    """img (h, w, c) float32 made to tile edge to edge: offset by half, the horizontal then the
    vertical arm of the cross where its edges meet mended with its own strips (`band`: the largest
    share of each side within which the cuts may run; `narrow`: per axis, whether narrower bands are
    tried first, see mend_arm), offset back. The middle is left as it was."""
    h, w = img.shape[:2]
    x = np.roll(np.asarray(img, np.float32), (h // 2, w // 2), axis=(0, 1))
    x = mend_arm(x, band, narrow[0])
    x = mend_arm(np.ascontiguousarray(x.transpose(1, 0, 2)), band, narrow[1]).transpose(1, 0, 2)
    return np.ascontiguousarray(np.clip(np.roll(x, (-(h // 2), -(w // 2)), axis=(0, 1)), 0, 1), np.float32)
