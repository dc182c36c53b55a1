"""`pattern`: textile repeats. Make any image tileable, or put a motif into a standard repeat.

`seamless`: the image is offset by half its size (its edges meet in a cross through the
middle), the cross is re-synthesised from strips of the image itself, cut in where they agree
with their surroundings (synthesis/quilt.py), and the offset is undone: the centre is kept
as it was and the edges now continue into each other. A picture that clearly repeats along a
side is first cut to whole repeats (the tile can only hold whole cycles), so its size may change.
The motif layouts place an RGBA motif (cropped to its opaque pixels) in a cell of the
motif's size plus `spacing`, in the repeat's arrangement, over a ground that is transparent,
a colour or a texture grown seamlessly from the `ground` input. The output is one repeat tile
(exactly one period: tiled edge to edge it is the pattern) and, with `preview N`, N x N tiles.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image

from .. import images
from ..errors import BAD_PARAM, TOO_LARGE, EngineError
from ..synthesis.quilt import make_tileable, whole_repeats
from ..synthesis.texture import synthesize
from .base import InputSpec, JobContext, Operation, ParamSpec
from .jobtools import resolve_seed, variant_outputs

LAYOUTS = ("seamless", "grid", "half-drop", "half-brick", "mirror", "rotate4")
MAX_TILE = 4096  # longest side of one repeat tile
MAX_PREVIEW = 8192  # longest side of the N x N preview
SEAM_BAND = 0.06  # seamless: the cuts run within half this share of each side from each edge (a quarter
# replaced up to 44 % of a painting crop with strips from elsewhere: style distance 1.4-3.9 times plain
# tiling's, against 1.1-2.2 with 0.1; on 42 painting and photo crops of 160 px, at most 1.3 times in 25
# with 0.1, 35 with 0.06, 37 with 0.05 but seam ratios within 0.8-1.25 in 33 instead of 36)
OPAQUE = 0.5  # a motif pixel with alpha above this counts as opaque


def parse_colour(text: str, field: str) -> np.ndarray | None:
    """'#rrggbb' or 'rrggbb' -> RGB floats; '' or 'transparent' -> None."""
    t = text.strip().lower()
    if t in ("", "transparent", "none"):
        return None
    h = t.lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    try:
        if len(h) != 6:
            raise ValueError
        return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], np.float32) / 255
    except ValueError:
        raise EngineError(BAD_PARAM, f"{text!r} is not a colour; use #rrggbb or 'transparent'", field) from None


def seamless(img: np.ndarray) -> tuple[np.ndarray, list[float | None]]:
    """The image made tileable, its middle kept: see synthesis.quilt (a clearly periodic picture is
    first cut to whole repeats, then strips of the image itself are cut into the cross where its
    edges meet, offset by half). Returns the tile and the repeat period found per axis (or None)."""
    fitted, periods = whole_repeats(img)
    return make_tileable(fitted, SEAM_BAND, (periods[0] is None, periods[1] is None)), periods


def prepare_motif(motif: np.ndarray, scale: float, rotation: float) -> np.ndarray:
    """RGBA float motif scaled, rotated (about its centre, growing the canvas) and cropped to its
    opaque pixels; raises bad_param when nothing is opaque."""
    if motif.shape[2] == 3:
        motif = np.concatenate([motif, np.ones(motif.shape[:2] + (1,), np.float32)], axis=2)
    pil = Image.fromarray((np.clip(motif, 0, 1) * 255).round().astype(np.uint8), "RGBA")
    if scale != 1.0:
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.LANCZOS)
    if rotation % 360:
        pil = pil.rotate(rotation, resample=Image.BICUBIC, expand=True)
    arr = np.asarray(pil, np.float32) / 255
    opaque = arr[..., 3] > OPAQUE
    if not opaque.any():
        raise EngineError(BAD_PARAM, "the motif has no opaque pixel (its alpha is empty); give an RGBA image or a "
                          "selection with alpha", "inputs.image")
    ys, xs = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    return arr[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]


def placements(layout: str, mh: int, mw: int, spacing: int) -> tuple[tuple[int, int], list[tuple[int, int, int]]]:
    """The tile period (h, w) and the motif placements (centre y, centre x, variant) in it.

    variant: 0 as is, 1 mirrored left-right, 2 mirrored top-bottom, 3 both (mirror);
    for rotate4 the number of quarter turns."""
    ch, cw = mh + spacing, mw + spacing
    if layout == "grid":
        return (ch, cw), [(ch // 2, cw // 2, 0)]
    if layout == "half-drop":  # every other column drops by half a cell
        return (ch, 2 * cw), [(ch // 2, cw // 2, 0), (ch // 2 + ch // 2, cw + cw // 2, 0)]
    if layout == "half-brick":  # every other row shifts by half a cell
        return (2 * ch, cw), [(ch // 2, cw // 2, 0), (ch + ch // 2, cw // 2 + cw // 2, 0)]
    if layout == "rotate4":
        c = max(ch, cw)
        return (2 * c, 2 * c), [(c // 2, c // 2, 0), (c // 2, c + c // 2, 1), (c + c // 2, c + c // 2, 2),
                                (c + c // 2, c // 2, 3)]
    return (2 * ch, 2 * cw), [(ch // 2, cw // 2, 0), (ch // 2, cw + cw // 2, 1), (ch + ch // 2, cw // 2, 2),
                              (ch + ch // 2, cw + cw // 2, 3)]


def _variant(motif: np.ndarray, layout: str, v: int) -> np.ndarray:
    if layout == "rotate4":
        return np.rot90(motif, -v)
    if v & 1:
        motif = motif[:, ::-1]
    if v & 2:
        motif = motif[::-1]
    return motif


def paste_wrapped(tile: np.ndarray, motif: np.ndarray, cy: int, cx: int) -> None:
    """Composite an RGBA motif over an RGBA tile (in place) centred at (cy, cx), wrapping around."""
    th, tw = tile.shape[:2]
    mh, mw = motif.shape[:2]
    ys = (np.arange(mh) + cy - mh // 2) % th
    xs = (np.arange(mw) + cx - mw // 2) % tw
    under = tile[np.ix_(ys, xs)]
    a = motif[..., 3:4]
    alpha = a + under[..., 3:4] * (1 - a)
    rgb = (motif[..., :3] * a + under[..., :3] * under[..., 3:4] * (1 - a)) / np.maximum(alpha, 1e-6)
    tile[np.ix_(ys, xs)] = np.concatenate([rgb, alpha], axis=2)


def repeat_tile(motif: np.ndarray, layout: str, spacing: int, jitter: float, seed: int,
                ground: np.ndarray | None) -> np.ndarray:
    """One RGBA repeat tile; `ground` (period-sized RGBA) lies under the motifs."""
    (ph, pw), where = placements(layout, *motif.shape[:2], spacing)
    tile = np.zeros((ph, pw, 4), np.float32) if ground is None else ground.copy()
    rng = np.random.default_rng(seed)
    reach = jitter * spacing / 2
    for cy, cx, v in where:
        dy, dx = (rng.uniform(-reach, reach, 2) if reach > 0 else (0.0, 0.0))
        paste_wrapped(tile, _variant(motif, layout, v), cy + round(dy), cx + round(dx))
    return tile


def period_of(layout: str, motif: np.ndarray, spacing: int) -> tuple[int, int]:
    return placements(layout, *motif.shape[:2], spacing)[0]


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    t0 = time.perf_counter()
    layout, seed, n = params["layout"], resolve_seed(params["seed"]), params["preview"]
    src = inputs["image"]
    img = images.to_float(src)
    report = lambda i, total: ctx.progress(i, total, "synthesis")  # noqa: E731
    extra: dict[str, Any] = {}
    if layout == "seamless":
        tile, periods = seamless(img)
        extra["repeat_period"] = [None if p is None else round(p, 3) for p in periods]
    else:
        colour = parse_colour(params["background"], "params.background")
        motif = prepare_motif(img, params["scale"], params["rotation"])
        ph, pw = period_of(layout, motif, params["spacing"])
        if max(ph, pw) > MAX_TILE:
            raise EngineError(BAD_PARAM, f"the repeat tile would be {pw}x{ph}; its sides may be at most {MAX_TILE} "
                              "(use a smaller scale or spacing)", "params.scale")
        ground = None
        if inputs.get("ground") is not None:
            g = synthesize(images.to_float(inputs["ground"])[..., :3], ph, pw, wrap=True, seed=seed,
                           device=ctx.device, progress=report)
            ground = np.concatenate([g, np.ones((ph, pw, 1), np.float32)], axis=2)
        elif colour is not None:
            ground = np.concatenate([np.broadcast_to(colour, (ph, pw, 3)), np.ones((ph, pw, 1))], axis=2)
        tile = repeat_tile(motif, layout, params["spacing"], params["jitter"], seed, ground)
        if ground is not None:
            tile = tile[..., :3]
    if n > 1 and max(tile.shape[:2]) * n > MAX_PREVIEW:
        raise EngineError(TOO_LARGE, f"a {n}x{n} preview of a {tile.shape[1]}x{tile.shape[0]} tile exceeds "
                          f"{MAX_PREVIEW} pixels a side; ask for fewer repeats", "params.preview")
    dtype = src.dtype
    outs = [images.from_float(np.ascontiguousarray(tile.astype(np.float32)), dtype)]
    if n > 1:
        outs.append(np.tile(outs[0], (n, n, 1)))
    ctx.progress(1, 1, "composite")
    meta = {"seed": seed, "layout": layout, "period": [int(tile.shape[0]), int(tile.shape[1])],
            "timings": {"total": round(time.perf_counter() - t0, 3)}, **extra}
    return variant_outputs(outs), meta


OPERATION = Operation(
    name="pattern",
    doc="Textile repeats: layout=seamless makes an image tileable; grid, half-drop, half-brick, mirror and rotate4 "
        "place an RGBA motif in a repeat over a transparent, coloured or textured ground. Output: one repeat tile "
        "(and an N x N preview with preview=N).",
    inputs=(
        InputSpec("image", doc="the picture to make seamless, or the motif (RGBA: its opaque pixels)", min_side=8),
        InputSpec("ground", required=False, doc="optional example texture grown seamlessly under the motifs",
                  min_side=16),
    ),
    params=(
        ParamSpec("layout", "enum", "seamless", "seamless, or the repeat a motif is placed in", choices=LAYOUTS),
        ParamSpec("spacing", "int", 32, "pixels between neighbouring motifs", min=0, max=MAX_TILE),
        ParamSpec("scale", "float", 1.0, "motif scale", min=0.05, max=8.0),
        ParamSpec("rotation", "float", 0.0, "motif rotation in degrees (counter-clockwise)", min=-360.0, max=360.0),
        ParamSpec("jitter", "float", 0.0, "random shift of each motif, as a share of the spacing", min=0.0, max=1.0),
        ParamSpec("background", "str", "transparent", "ground colour #rrggbb, or transparent (a ground input wins)"),
        ParamSpec("preview", "int", 0, "also return an N x N tiling of the tile (0: none)", min=0, max=8),
        ParamSpec("seed", "int", None, "random seed for the jitter and the grown ground (layout=seamless is "
                  "deterministic); null = random (the one used is returned in meta)",
                  min=0, max=2**31 - 1, nullable=True),
    ),
    run=run,
)
