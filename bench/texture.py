"""`texture` and `pattern` quality tasks: textures grown from a reference, and tiles made seamless.

References: centre crops of paintings (../shared/data/style, beside the eval root) and code-drawn
stripes, checks and bricks. Per reference and method:
- seam ratio (bench/metrics.wrap_seam_ratio): the wrap-around edge against the inside; 0.8-1.25;
- style distance (bench/style_metrics.py) between the result and the reference crop, and the
  *structure* figure: that distance over the distance of plain tiling of the crop to the same
  size (the crop repeated as is keeps all of its structure, only its seams and cut copies
  differ); target at most 1.3;
- stripes only: dominant orientation and period of the result (tiled 2x2, so the wrap joins
  count) against the reference's; within 5 %.
texture: `generate` with the reference and `tileable`, default settings (ours); the same with
`variation` 1.5 (the model redraws the grown texture, as the reference path did before it was
grown from patches; 8 sampler steps to keep a run within minutes) as the baseline; plain tiling
as the reference row. Then one 512x512 tile is timed (the speed target, < 10 s on 2 CPU cores).
pattern: `pattern layout=seamless` on the crops (the crop tiled as is is the baseline), and a
half-drop repeat of a code-drawn leaf motif over a ground grown from the bricks.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image, ImageDraw

from .datasets import DataError
from .metrics import dominant_frequency, quantize, wrap_seam_ratio
from .style_metrics import style_distance

if TYPE_CHECKING:
    from .quality import QualityRun

PAINTINGS = ("starry_night", "composition_vii_kandinsky", "great_wave_hokusai", "wheat_field_with_cypresses_van_gogh")
# (four: a full run stays within a few minutes on 2 cores)
PAINTING_SIDE = 512  # paintings are resized to this longest side before the crop
CROP, TILE, SPEED_SIDE = 160, 256, 512  # reference crop, grown tile, timed tile (sides in pixels)
QUICK = {"crop": 48, "tile": 64, "speed": 96, "paintings": 1}
STRIPE = (12.0, 30.0)  # period (px) and direction across the stripes (degrees) of the drawn stripes
# (the checks' and bricks' periods divide the tile's side: a tile can only hold whole repeats)
VARIATION = 1.5
BASELINE_STEPS = 8  # the baseline's sampler steps (default 24: about a minute per 256 px tile on 2 cores)
OURS = "Sfumato (ours)"
BASELINE = f"generate, variation={VARIATION}, steps={BASELINE_STEPS}"
TILING = "Plain tiling of the crop"
SHIFT = 0.05  # pattern: the painting crop framed this share of its side further down and right, tiled as is
SHIFTED = f"Plain tiling of the crop moved {SHIFT:.0%}"  # (a reference row: the style distance of the same
# picture framed a little differently; a seamless tile must change its edges at least this much)
SEAM_BAND, STRUCTURE_MAX, STRIPE_TOL = (0.8, 1.25), 1.3, 0.05
SEEDS = (0, 1, 2)  # ours grows each texture this many times (quick: once): one wrap-around line of a painting
# varies by itself (the same statistic across lines inside one Great Wave tile spans 0.73-1.30, 10th-90th percentile)


# ---- references ------------------------------------------------------------------------------
def stripes(side: int, period: float = STRIPE[0], angle: float = STRIPE[1]) -> np.ndarray:
    """Cream and dark stripes; `angle` is the direction across them, in degrees."""
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    a = np.radians(angle)
    on = (np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period) > 0)[..., None]
    return np.where(on, np.float32([0.9, 0.85, 0.7]), np.float32([0.15, 0.1, 0.1]))


def checks(side: int, period: int = 16) -> np.ndarray:
    """A two-colour gingham-like check with a darker crossing; the crop's edges run through the
    middle of the squares (on a colour boundary even a perfect tile's seam ratio is the period)."""
    yy, xx = np.mgrid[:side, :side] + period // 4
    a, b = (yy // (period // 2)) % 2, (xx // (period // 2)) % 2
    base = np.float32([0.95, 0.93, 0.88])
    band = np.float32([0.75, 0.2, 0.2])
    out = np.where((a + b)[..., None] == 2, band * 0.7, np.where((a + b)[..., None] == 1, band, base))
    return out.astype(np.float32)


def bricks(side: int, h: int = 16, w: int = 32, mortar: int = 2, seed: int = 0) -> np.ndarray:
    """Running-bond bricks in varied reds with grey mortar; the crop's edges run through the bricks."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (side, side), (170, 165, 155))
    d = ImageDraw.Draw(img)
    for row in range(-1, side // h + 1):
        off = (w // 2) * (row % 2) + w // 4
        for col in range(-1, side // w + 2):
            x0, y0 = col * w - off, row * h - h // 2
            c = (np.array([150, 60, 45]) * rng.uniform(0.75, 1.15)).clip(0, 255).astype(int)
            d.rectangle([x0 + mortar, y0 + mortar, x0 + w - 1, y0 + h - 1], fill=tuple(int(v) for v in c))
    return np.asarray(img, np.float32) / 255


def leaf(side: int = 40) -> np.ndarray:
    """An RGBA leaf motif: a green blade with a darker midrib, transparent around."""
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    t = np.linspace(0, 1, 20)
    right = [(side / 2 + side * 0.3 * np.sin(np.pi * s), side * (0.05 + 0.9 * s)) for s in t]
    left = [(side / 2 - side * 0.3 * np.sin(np.pi * s), side * (0.05 + 0.9 * s)) for s in t[::-1]]
    d.polygon(right + left, fill=(64, 128, 60, 255))
    d.line([(side / 2, side * 0.05), (side / 2, side * 0.95)], fill=(30, 70, 32, 255), width=2)
    return np.asarray(im)


def painting_crop(path: Path, crop: int, shift: int = 0) -> np.ndarray:
    """The centre crop of the painting resized to PAINTING_SIDE on its longest side (moved `shift`
    pixels down and right)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        s = PAINTING_SIDE / max(im.size)
        im = im.resize((max(crop, round(im.width * s)), max(crop, round(im.height * s))), Image.LANCZOS)
        a = np.asarray(im, np.float32) / 255
    y0, x0 = (a.shape[0] - crop) // 2 + shift, (a.shape[1] - crop) // 2 + shift
    return np.ascontiguousarray(a[y0:y0 + crop, x0:x0 + crop])


def references(run: "QualityRun", crop: int) -> list[tuple[str, str, np.ndarray]]:
    """(dataset, name, float image) for every reference of this run."""
    style = Path(run.cfg.data).parent / "style"
    n = QUICK["paintings"] if run.cfg.quick else len(PAINTINGS)
    found = [p for p in (style / f"{name}.jpg" for name in PAINTINGS[:n]) if p.is_file()]
    if not found:
        raise DataError(f"no paintings in {style} (expected {PAINTINGS[0]}.jpg, ...)")
    out = [("style", p.stem, painting_crop(p, crop)) for p in found]
    drawn = (("stripes", stripes), ("checks", checks), ("bricks", bricks))
    return out + [("drawn", name, draw(crop)) for name, draw in drawn]


# ---- measures --------------------------------------------------------------------------------
def u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def tiled(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """`img` repeated edge to edge and cut to h x w."""
    return np.tile(img, (-(-h // img.shape[0]), -(-w // img.shape[1]), 1))[:h, :w]


def stripe_errors(result: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Relative errors of orientation (of a quarter turn, as the tests) and period of the result tiled 2x2."""
    ang_r, per_r = dominant_frequency(ref)
    ang_o, per_o = dominant_frequency(np.tile(result, (2, 2, 1)))
    return {"orientation_error": abs((ang_o - ang_r + 90) % 180 - 90) / 45.0,
            "period_error": abs(per_o - per_r) / per_r}


def measures(result: np.ndarray, ref: np.ndarray, tiling_distance: float, name: str) -> dict[str, float]:
    """Seam ratio, style distance and structure (over plain tiling's distance); stripes: their errors."""
    x = result.astype(np.float32) / 255
    d = style_distance(x, ref)
    vals = {"seam_ratio": wrap_seam_ratio(result), "style_distance": d,
            "structure": d / max(tiling_distance, 1e-6)}
    if name == "stripes":
        vals.update(stripe_errors(x, ref))
    return vals


# ---- tasks -----------------------------------------------------------------------------------
def _record(run: "QualityRun", task: str, dataset: str, setting: str, method: str, kind: str, note: str,
            name: str, seconds: float, vals: dict[str, float]) -> None:
    run.rec.cell(task, dataset, setting, method, kind, note=note).add(name, seconds, **vals)


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """The engine's image as uint8 (as a saved result) and the wall time of the call."""
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    return (out if out.dtype == np.uint8 else quantize(out.astype(np.float64) * 255)), sec


def run_texture(run: "QualityRun") -> None:
    """Grow tileable textures from every reference; then time one SPEED_SIDE tile."""
    from .quality import log

    q = run.cfg.quick
    crop, tile = (QUICK["crop"], QUICK["tile"]) if q else (CROP, TILE)
    setting = f"{tile}px tile from a {crop}px crop"
    ours = run._ours_method("texture", "generate", None)
    if ours is None:
        return
    params = run._ours_params("texture")
    gen = lambda ref, side, **kw: run.ours.run("generate", {"reference": u8(ref)},  # noqa: E731
                                                {"width": side, "height": side, "tileable": True, **params, **kw})
    shown: list[list[np.ndarray]] = []
    for dataset, name, ref in references(run, crop):
        plain = u8(tiled(ref, tile, tile))
        d0 = style_distance(plain.astype(np.float32) / 255, ref)
        _record(run, "texture", dataset, setting, TILING, "reference", "the crop repeated as is", name, 0.0,
                measures(plain, ref, d0, name))
        grown = []
        for seed in SEEDS[:1] if q else SEEDS:
            out, sec = _timed(lambda: gen(ref, tile, seed=seed))
            _record(run, "texture", dataset, setting, OURS, "ours", ours.note, f"{name} seed {seed}", sec,
                    measures(out, ref, d0, name))
            grown.append(out)
        out = grown[0]
        base, bsec = _timed(lambda: gen(ref, tile, variation=VARIATION, steps=BASELINE_STEPS))
        _record(run, "texture", dataset, setting, BASELINE, "baseline", "the model redraws the grown texture",
                name, bsec, measures(base, ref, d0, name))
        shown.append([u8(tiled(ref, 2 * tile, 2 * tile)), np.tile(out, (2, 2, 1)),
                      np.tile(base, (2, 2, 1)), dataset])
        c, b = (run.rec.cells[("texture", dataset, setting, m)].values for m in (OURS, BASELINE))
        k = len(grown)
        log(f"[texture {name}] ours ({k} seeds): seam {np.mean(c['seam_ratio'][-k:]):.2f} structure "
            f"{np.mean(c['structure'][-k:]):.2f} {sec:.1f} s; baseline structure {b['structure'][-1]:.2f}")
    side = QUICK["speed"] if q else SPEED_SIDE
    ref = references(run, crop)[0][2]
    _, sec = _timed(lambda: gen(ref, side))
    _record(run, "texture", "speed", f"{side}x{side} tile", OURS, "ours", ours.note, "painting crop", sec, {})
    log(f"[texture speed] {side}x{side} tile: {sec:.1f} s")
    _grids(run, "texture", shown, ("reference tiled 2x2", "ours 2x2", BASELINE + " 2x2"))


def run_pattern(run: "QualityRun") -> None:
    """`pattern layout=seamless` on every crop; a half-drop leaf repeat over a grown brick ground."""
    from .quality import log

    q = run.cfg.quick
    crop = QUICK["crop"] if q else CROP
    setting = f"seamless, {crop}px crop, tiled 2x2"
    ours = run._ours_method("pattern", "pattern", None)
    if ours is None:
        return
    params = run._ours_params("pattern")
    shown: list[list] = []
    for dataset, name, ref in references(run, crop):
        plain = u8(ref)
        d0 = style_distance(np.tile(ref, (2, 2, 1)), ref)
        vals = {"seam_ratio": wrap_seam_ratio(plain), "style_distance": d0, "structure": 1.0}  # its own yardstick
        if name == "stripes":  # what a tile of this side can reach (it holds whole cycles only)
            vals.update(stripe_errors(ref, ref))
        _record(run, "pattern", dataset, setting, TILING, "reference", "the crop as a tile, as is", name, 0.0, vals)
        if dataset == "style":
            moved = painting_crop(Path(run.cfg.data).parent / "style" / f"{name}.jpg", crop, round(SHIFT * crop))
            d = style_distance(np.tile(moved, (2, 2, 1)), ref)
            _record(run, "pattern", dataset, setting, SHIFTED, "reference", "the same painting framed a little "
                    "further down and right", name, 0.0,
                    {"seam_ratio": wrap_seam_ratio(u8(moved)), "style_distance": d, "structure": d / max(d0, 1e-6)})
        t, sec = _timed(lambda: run.ours.run("pattern", {"image": plain}, {"layout": "seamless", **params}))
        d = style_distance(np.tile(t, (2, 2, 1)).astype(np.float32) / 255, ref)
        vals = {"seam_ratio": wrap_seam_ratio(t), "style_distance": d, "structure": d / max(d0, 1e-6)}
        if name == "stripes":
            vals.update(stripe_errors(t.astype(np.float32) / 255, ref))
        _record(run, "pattern", dataset, setting, OURS, "ours", ours.note, name, sec, vals)
        shown.append([u8(np.tile(ref, (2, 2, 1))), np.tile(t, (2, 2, 1)), dataset])
        log(f"[pattern {name}] seamless: seam {vals['seam_ratio']:.2f} (as is {wrap_seam_ratio(plain):.2f}), "
            f"structure {vals['structure']:.2f}, {sec:.1f} s")
    ground = u8(bricks(crop))
    motif = leaf(24 if q else 40)
    t, sec = _timed(lambda: run.ours.run("pattern", {"image": motif, "ground": ground},
                                         {"layout": "half-drop", "spacing": 8, "rotation": -20, **params}))
    _record(run, "pattern", "drawn", "half-drop leaf over grown bricks", OURS, "ours", ours.note, "leaf", sec,
            {"seam_ratio": wrap_seam_ratio(t)})
    log(f"[pattern half-drop] seam {wrap_seam_ratio(t):.2f}, {sec:.1f} s")
    _grids(run, "pattern", shown, ("crop tiled 2x2 as is", "seamless, 2x2"))


def _grids(run: "QualityRun", task: str, rows: list[list], columns: tuple[str, ...]) -> None:
    """The code-drawn rows into OUT/grid_TASK.png (committable); every row into OUT/local/."""
    from .grids import compose

    out = Path(run.cfg.out)
    for folder, wanted, keep in ((out, run.cfg.grids, "drawn"), (out / "local", run.cfg.local_grids, None)):
        chosen = [r[:-1] for r in rows if keep is None or r[-1] == keep]
        if wanted and chosen:
            folder.mkdir(parents=True, exist_ok=True)
            which = "code-drawn references" if keep else "all references, not for committing"
            title = f"bench quality: {task} ({which})"
            compose(list(columns), chosen, title, tile=256).save(folder / f"grid_{task}.png")
