"""Exemplar style transfer for `stylize`: the photo is repainted with the painting's own patches.

Steps (Elad and Milanfar 2017, with StyLit-like guidance, on engine.synthesis):
1. the photo's colours are moved onto the painting's colour distribution (stylize.match_colours):
   the start of the synthesis, so the first matches already look for the right colours;
2. guides: the photo's luminance after matching the painting's luminance histogram, its
   edges with their orientation, and its edge strength remapped onto the painting's line work
   (LINE_GAIN); the same channels on the painting. `structure` sets the content fusion: after
   each vote the estimate moves back towards the palette-matched photo, most on its edges,
   except where the painting's lines are asked for (0: the painting's strokes flow freely);
   there, for a painting with deep dark line work, the start is drawn in its ink colour (LINE_INK);
   where the photo is flat, the guide and the start carry the painting's fine detail (texture_seed),
   so flat areas are painted with its busy patches, not its blandest; after each vote the estimate's
   low-pass luminance is also pulled to the photo's (histogram-matched) one (LAYOUT_KEEP), so the
   seed and the copied patches keep the photo's light and dark where they lie;
3. guided synthesis at several scales (synthesis.guided): every pixel of the result is copied
   from the painting, which is scaled so that its strokes have `stroke_scale` times their
   size relative to a painting with as many pixels as the work area; often-used painting
   patches cost more (USAGE), so all of the painting's strokes are used, not its blandest;
4. the synthesis's colours are moved half-way back onto the painting's distribution (the
   caller's `rematch`: on three paintings x two photos at guidance 3, style distance
   0.138 -> 0.119 for a content distance 0.453 -> 0.455);
5. `strength` blends the synthesis over the palette-matched photo, and `palette` moves the
   result's chroma from the photo's (0) to the synthesis's (1).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..images import gaussian_blur
from ..synthesis.features import OPPONENT  # orthonormal: its inverse is its transpose
from ..synthesis.guided import GuidedSettings, dark_lines, edge_strength, guides, luminance, match_histogram, synthesize

MAX_SOURCE_PIXELS = 1 << 20  # the painting is never scaled beyond this many pixels
PROGRESS_STEPS = sum(GuidedSettings().rounds(GuidedSettings().levels))  # EM rounds (for the progress bar)
EDGE_GAIN = 4.0  # edge channels against the luminance channel in the guides


# Guidance against colour in the patch distance. Against 3, 6 lets the copied patches keep more
# of the painting's own colour variation (style distance 0.119 -> 0.113 at structure 0.5 on the
# bench's six pairs, content distance 0.455 -> 0.457); 12 gains little more (0.110).
GUIDE_WEIGHT = 6.0
# Content fusion at structure 1 on the photo's strongest edges, capped at 1 (see keep_map and
# synthesis.guided). The default structure 0.5 gives 0.6 there: on the bench's six pairs (with
# GUIDE_WEIGHT 6) fusion 0.3 / 0.45 / 0.6 / 0.9 scores style 0.113 / 0.116 / 0.118 / 0.127 for
# content 0.457 / 0.449 / 0.442 / 0.431.
# With USAGE and the line guide below, fusion 1.2 -> 1.6 buys content back: style / content
# 0.147 / 0.403 -> 0.151 / 0.392 on the bench's ten pairs. With the texture seed (below, 2):
# 1.6 / 2.4 / 2.8 score 0.129 / 0.130 / 0.132 for content 0.407 / 0.396 / 0.392 (seed unclipped).
KEEP = 2.8
# Price on often-used painting patches (synthesis.usage), times the median match distance. Without
# it a smooth sky is painted with the painting's blandest corner again and again. On the bench's
# ten pairs (fusion 1.2, no line guide): 0 / 0.5 / 1.5 score style 0.171 / 0.156 / 0.153 for
# content 0.372 / 0.381 / 0.387; 3 (with the line guide) gains nothing more.
USAGE = 1.5
# The line guide: the painting's dark line work (a black top-hat of its luminance) against the
# photo's edge strength remapped onto that line map's distribution, so the photo's strongest
# edges ask for as many line pixels as the painting has. Where the photo asks for a line, the
# content fusion is lifted (LINE_LIFT): the painting's own line stands for the photo's edge (full
# fusion there blended every copied black line back into the photo). Léger / Kandinsky, fusion
# 1.2, USAGE 1.5: style 0.276 / 0.171 without the guide, 0.261 / 0.170 with it, fully lifted.
# On the ten pairs at fusion 1.6: lift 1 / 0.5 score style 0.151 / 0.154 for content 0.392 /
# 0.387; 0.5 is the default because fully lifted fusion lost the faces (astronaut under
# swirling strokes and under the mosaic in docs/img/stylize_grid.png), half lifted keeps them.
LINE_GAIN = 4.0
# Drawn lines: where the photo asks for the painting's lines (the line guide), the synthesis starts
# from the painting's ink colour (the median colour of its line pixels), so the first matches
# look for line patches there: Mondrian's grid and Léger's black outlines appear round the photo's
# shapes. Only for paintings whose line work is deep (99th percentile of the black top-hat, ramp
# INK_CONTRAST) and lies on a lighter ground (the share of the painting as dark as its ink, ink
# fading out across INK_SHARE: Starry Night's dark strokes and a navy ground are not line work).
# Ink for every painting cost colourful ones with soft lines their colour (Matisse's Woman with a
# Hat: style distance 0.103 -> 0.179; Gauguin 0.130 -> 0.155) and put dark blotches on faces
# under swirling strokes. Gated, twelve pairs outside the bench (7 other paintings, other photos;
# the gates were set looking at them, so they are not a clean hold-out): style / content 0.149 /
# 0.527 -> 0.148 / 0.527 (Mondrian 0.207 -> 0.185, Léger 0.311 -> 0.319, the rest within 0.004);
# the bench's ten pairs 0.154 / 0.387 -> 0.150 / 0.384 (Léger 0.271 -> 0.261, Hokusai 0.118 -> 0.109).
LINE_INK = 1.0
INK_CONTRAST = (0.3, 0.45)
INK_SHARE = (0.3, 0.45)
# Texture seed: where the photo is flat (sky, water, skin), its luminance guide and the start
# carry the painting's own fine luminance detail (its high-pass, SEED_SIGMA, laid at a random
# offset), TEXTURE_SEED times at structure 0.5 (scaled by 2 * (1 - structure)). Without it a
# flat area asks for the painting's flattest patches and gets one big copied blob (Kandinsky's
# orange corner under water, a bare sky under Léger); with it the painting's line work and small
# shapes fill it. Bench's ten pairs (KEEP 1.6): TEXTURE_SEED 0 / 1 / 2 / 3 score style 0.150 /
# 0.141 / 0.129 / 0.106 for content 0.384 / 0.395 / 0.407 / 0.456; seeding only the guide or only
# the start, or holding the fusion to the unseeded start, scored 0.130-0.134 / 0.403-0.420 (seed 3).
# Six other paintings x two other photos, seed 3: 0.121 / 0.518 -> 0.095 / 0.554, each painting lower.
TEXTURE_SEED = 2.0
SEED_SIGMA = 4.0  # px: the painting's detail finer than this is what the seed carries
SEED_MARGIN = 0.04  # of each side of the painting left out of the seed
FLAT_PERCENTILE = 90  # the photo's gradient at this percentile counts as fully textured (no seed)
# Layout fusion: after every vote the estimate's luminance, blurred by LAYOUT_SIGMA px (halved per
# coarser level), moves LAYOUT_KEEP of the way to that of the photo's luminance matched to the
# painting's histogram (the unseeded guide). It holds the layout against the seed: unchecked, a
# high-contrast painting's seed drowns a small picture's layout (tests/test_stylize.py's 64 px scene:
# blurred-luminance correlation 0.64 without the seed, 0.51 with it; the seed clipped to +-0.2
# luminance kept 0.61 but cost style: bench's ten pairs 0.132 / 0.392 unclipped, 0.144 / 0.379
# clipped, Kandinsky 0.133 -> 0.150). With this fusion at 0.4 / 4 px the seed runs unclipped: the
# 64 px scene scores 0.69 and the ten pairs 0.130 / 0.392 (Kandinsky 0.137). Other choices on the ten
# pairs: 0.5 / 4 px 0.130 / 0.393 (Kandinsky 0.139); 0.5 / 8 px 0.128 / 0.399; 1 / 4 px 0.132 / 0.403;
# at 0.5 / 8 px, the luminance held to the colour-matched photo's instead of the histogram-matched one
# 0.146 / 0.377 (the painting's light and dark proportions are part of its style); its colours
# held (all three channels) 0.155 / 0.370.
LAYOUT_KEEP = 0.4
LAYOUT_SIGMA = 4.0
LINE_LIFT = 0.5  # how far the fusion is lifted where the photo asks for a line (1: fully)


def keep_map(lum: np.ndarray, structure: float) -> np.ndarray:
    """How far each pixel is held to the photo after every vote: everywhere a little, on its
    edges most (gradient, normalised), scaled by KEEP * structure and capped at 1."""
    g = np.hypot(*np.gradient(lum))
    edges = np.clip(0.25 + 0.75 * g / (np.percentile(g, 95) + 1e-6), 0, 1)
    return np.clip(KEEP * structure * edges, 0, 1).astype(np.float32)


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == size:
        return rgb
    x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return y[0].permute(1, 2, 0).numpy()


def source_size(style_shape: tuple[int, int], work_pixels: int, stroke_scale: float) -> tuple[int, int]:
    """The painting's size for the synthesis: stroke_scale^2 times as many pixels as the work area."""
    h, w = style_shape
    px = min(MAX_SOURCE_PIXELS, work_pixels * stroke_scale ** 2)
    s = math.sqrt(px / (h * w))
    return max(16, round(h * s)), max(16, round(w * s))


def _ramp(x: float, edges: tuple[float, float]) -> float:
    """0 below edges[0], 1 above edges[1], linear between."""
    return float(np.clip((x - edges[0]) / (edges[1] - edges[0]), 0, 1))


def drawn_lines(img: np.ndarray, t_line: np.ndarray, s_line: np.ndarray, src: np.ndarray) -> np.ndarray:
    """img with the painting's ink colour drawn where the photo asks for its lines (t_line, on the
    scale of the painting's line map s_line), as far as the painting has deep dark lines."""
    top = np.percentile(s_line, 99) + 1e-6
    ink_px = s_line > 0.5 * top
    if ink_px.sum() < 16:
        return img
    ink = np.median(src[ink_px], axis=0)
    src_lum = luminance(src)
    share = float((src_lum <= np.median(src_lum[ink_px])).mean())  # of the painting as dark as its ink
    gate = _ramp(top, INK_CONTRAST) * (1 - _ramp(share, INK_SHARE))
    a = LINE_INK * gate * np.clip(t_line / top, 0, 1)[..., None]
    return (img + a * (ink - img)).astype(np.float32)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
    return gaussian_blur(x, sigma, "reflect")[0, 0].numpy()


def texture_seed(src_lum: np.ndarray, lum: np.ndarray, amount: float, seed: int) -> np.ndarray:
    """(h, w) the painting's fine luminance detail (src_lum minus its blur), tiled from a random
    offset, times `amount` where the photo's luminance `lum` is flat (0 on its edges): added to the
    guide and the start, it makes flat areas ask for the painting's busy patches, not its blandest."""
    h, w = lum.shape
    if amount <= 0:
        return np.zeros((h, w), np.float32)
    hp = src_lum - _blur(src_lum, SEED_SIGMA)
    my, mx = (round(SEED_MARGIN * n) for n in hp.shape)
    hp = hp[my:hp.shape[0] - my, mx:hp.shape[1] - mx]  # a frame or a strip at the edge is no stroke
    rng = np.random.default_rng(seed)
    # a random window inside the painting where it is large enough; where not, mirrored tiles
    # (no seam where its opposite edges meet)
    y0, x0 = (int(rng.integers(0, max(1, n - m + 1))) for n, m in zip(hp.shape, (h, w)))
    tiled = np.pad(hp, ((0, h + hp.shape[0]), (0, w + hp.shape[1])), mode="symmetric")[y0:y0 + h, x0:x0 + w]
    g = _blur(np.hypot(*np.gradient(lum)), 2.0)
    flat = 1 - np.clip(g / (np.percentile(g, FLAT_PERCENTILE) + 1e-6), 0, 1)
    return (amount * flat * tiled).astype(np.float32)


def _opp(x: np.ndarray) -> np.ndarray:
    return x @ OPPONENT.T


def paint(content: np.ndarray, style: np.ndarray, colour_matched: np.ndarray, strength: float, structure: float,
          stroke_scale: float, palette: float, seed: int, progress: Callable[[int, int], None] | None = None,
          rematch: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """content, colour_matched: (h, w, 3) float in [0, 1] at the work size (the photo, and the
    photo in the painting's colours); style: (hs, ws, 3) float in [0, 1]; rematch: moves the
    synthesis's colours part of the way back onto the painting's distribution (the content
    fusion and the sharp votes skew it: some of the painting's colours end up under-used).
    Returns (h, w, 3)."""
    h, w = content.shape[:2]
    src = _resize(style, source_size(style.shape[:2], h * w, stroke_scale))
    src_lum = luminance(src)
    t_lum = match_histogram(luminance(content), src_lum)
    layout = t_lum  # before the texture seed is added below: the photo's own light and dark
    s_line = dark_lines(src_lum)
    t_line = match_histogram(edge_strength(luminance(content)), s_line)
    init = drawn_lines(colour_matched, t_line, s_line, src)
    add = texture_seed(src_lum, luminance(content), TEXTURE_SEED * 2 * (1 - structure), seed)
    t_lum = t_lum + add
    init = np.clip(init + add[..., None], 0, 1).astype(np.float32)
    tg = np.concatenate([guides(t_lum, EDGE_GAIN), LINE_GAIN * t_line[..., None]], -1)
    sg = np.concatenate([guides(src_lum, EDGE_GAIN), LINE_GAIN * s_line[..., None]], -1)
    keep = keep_map(luminance(content), structure) * (1 - LINE_LIFT * np.clip(t_line / (np.percentile(s_line, 99) + 1e-6), 0, 1))
    settings = GuidedSettings(guide_weight=GUIDE_WEIGHT, keep=1.0, usage=USAGE, layout_keep=LAYOUT_KEEP,
                              layout_sigma=LAYOUT_SIGMA)
    synth = synthesize(tg, src, sg, init, seed, settings, progress=progress, keep_map=keep, layout=layout)
    if rematch is not None:
        synth = rematch(synth)
    out = colour_matched + strength * (synth - colour_matched)
    if palette < 1:  # chroma from the photo (palette 0) to the result's own (1); luma stays
        o, c = _opp(out), _opp(content)
        o[..., 1:] = c[..., 1:] + palette * (o[..., 1:] - c[..., 1:])
        out = o @ OPPONENT
    return np.clip(out, 0, 1).astype(np.float32)
