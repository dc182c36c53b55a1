"""`recolor`: colourways. The image's main colours are found (k-means), matched to a palette
by lightness, and every pixel moves by the soft-weighted shift of the colours near it: the
difference between a pixel and its colour's centre (shading, line work, grain) is kept, only
the colours change. The palette is a list of hex colours or is taken from a reference image;
`variants` gives further colourways that assign the palette's colours in other orders.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import images
from ..errors import BAD_PARAM, TOO_LARGE, EngineError
from .base import InputSpec, JobContext, Operation, ParamSpec
from .jobtools import resolve_seed, variant_outputs
from .pattern import parse_colour
from .specs import Require

SAMPLE = 20000  # pixels the k-means sees
ROUNDS = 20
SOFTNESS = 0.08  # colour distance over which a pixel's weight between two centres fades (RGB, 0-1)


def kmeans(pixels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k colour centres (k, 3) of (n, 3) pixels, sorted dark to light (k-means++ start)."""
    x = pixels[rng.choice(len(pixels), min(SAMPLE, len(pixels)), replace=False)]
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
    c = np.array(centres)
    for _ in range(ROUNDS):
        lab = np.argmin(((x[:, None] - c[None]) ** 2).sum(2), axis=1)
        c = np.array([x[lab == i].mean(0) if (lab == i).any() else c[i] for i in range(k)])
    return c[np.argsort(c @ images.LUMA)].astype(np.float32)


def parse_palette(text: str) -> np.ndarray:
    items = [t for t in text.replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    if not items:
        raise EngineError(BAD_PARAM, "the palette is empty; give hex colours such as #1b3a4b,#e9c46a", "params.palette")
    cols = []
    for t in items:
        try:
            c = parse_colour(t, "params.palette")
        except EngineError:
            c = None
        if c is None:
            raise EngineError(BAD_PARAM, f"palette colour {t.strip()!r} does not parse; give hex colours such as "
                              "#1b3a4b,#e9c46a", "params.palette")
        cols.append(c)
    return np.array(cols, np.float32)


def recolour(rgb: np.ndarray, centres: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Each pixel shifted by its centres' palette offsets, weighted by nearness (soft assignment)."""
    flat = rgb.reshape(-1, 3)
    d2 = ((flat[:, None] - centres[None]) ** 2).sum(2)
    w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * SOFTNESS ** 2))
    w /= w.sum(1, keepdims=True)
    return np.clip(flat + w @ (palette - centres), 0, 1).reshape(rgb.shape)


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    t0 = time.perf_counter()
    seed = resolve_seed(params["seed"])
    rng = np.random.default_rng(seed)
    img = images.to_float(inputs["image"])
    rgb = img[..., :3]
    if params["palette"]:
        palette = parse_palette(params["palette"])
    else:
        ref = images.to_float(inputs["reference"])[..., :3].reshape(-1, 3)
        palette = kmeans(ref, params["colors"], rng)
    palette = palette[np.argsort(palette @ images.LUMA)]
    centres = kmeans(rgb.reshape(-1, 3), len(palette), rng)
    outs = []
    for v in range(params["variants"]):
        order = np.arange(len(palette)) if v == 0 else rng.permutation(len(palette))
        out = recolour(rgb, centres, palette[order])
        if img.shape[2] == 4:
            out = np.concatenate([out, img[..., 3:]], axis=2)
        outs.append(images.from_float(np.ascontiguousarray(out, np.float32), inputs["image"].dtype))
        ctx.progress(v + 1, params["variants"], "recolor")
    meta = {"seed": seed, "palette": ["#%02x%02x%02x" % tuple(int(round(c * 255)) for c in p) for p in palette],
            "variants": params["variants"], "timings": {"total": round(time.perf_counter() - t0, 3)}}
    return variant_outputs(outs), meta


OPERATION = Operation(
    name="recolor",
    doc="Colourways: recolour an image or pattern to a palette (hex colours, or k colours from a reference image), "
        "keeping shading and line work; variants give other assignments of the palette.",
    inputs=(
        InputSpec("image", doc="the picture or pattern tile to recolour (alpha is kept)"),
        InputSpec("reference", required=False, doc="take the palette from this image instead of `palette`"),
    ),
    params=(
        ParamSpec("palette", "str", None, "comma-separated hex colours, e.g. #1b3a4b,#e9c46a,#f4a261",
                  nullable=True),
        ParamSpec("colors", "int", 5, "colours taken from the reference", min=2, max=16),
        ParamSpec("variants", "int", 1, "number of colourways", min=1, limit_code=TOO_LARGE, cap="max_variants"),
        ParamSpec("seed", "int", None, "random seed; null = random (the one used is returned in meta)",
                  min=0, max=2**31 - 1, nullable=True),
    ),
    rules=(
        Require(("params.palette", "inputs.reference"), "give a palette or a reference image to take it from",
                most=1),
    ),
    run=run,
)
