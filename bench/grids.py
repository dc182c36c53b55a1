"""Visual grids: input | peers | ours | ground truth, one row per image.

Committed grids (OUT/grid_<task>.png) are made only from scikit-image's bundled sample
photos (astronaut: public domain, NASA; chelsea and coffee: CC0), degraded here, so the
repository never holds pixels from ../shared/data. Grids of the evaluation images go to
OUT/local/ (git-ignored) for looking at, never for committing.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import masks as masklib
from .metrics import psnr, quantize
from .peers import all_peers

TILE = 160
HOLE_COLOUR = (255, 0, 255)
# (sample name, top, left) of a detailed 160x160 region in each bundled photo
SAMPLES = (("astronaut", 60, 180), ("chelsea", 60, 150), ("coffee", 120, 200))
SAMPLE_TERMS = "scikit-image samples: astronaut (public domain, NASA), chelsea and coffee (CC0)"


def _font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def compose(columns: list[str], rows: list[list[np.ndarray]], title: str,
            captions: list[list[str]] | None = None, tile: int = TILE) -> Image.Image:
    """A grid image: a title line, a header of column names, tiles with optional captions."""
    pad, head, cap_h = 4, 34, 16 if captions else 0
    w = len(columns) * (tile + pad) + pad
    h = head + len(rows) * (tile + cap_h + pad) + pad
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 2), title, fill=(0, 0, 0), font=_font(13))
    for c, name in enumerate(columns):
        draw.text((pad + c * (tile + pad), 18), name, fill=(40, 40, 40), font=_font(12))
    for r, row in enumerate(rows):
        y = head + r * (tile + cap_h + pad)
        for c, img in enumerate(row):
            im = Image.fromarray(quantize(img))
            if im.size != (tile, tile):
                im = im.resize((tile, tile), Image.Resampling.NEAREST)
            canvas.paste(im, (pad + c * (tile + pad), y))
            if captions and captions[r][c]:
                draw.text((pad + c * (tile + pad), y + tile + 1), captions[r][c], fill=(60, 60, 60), font=_font(11))
    return canvas


def _save(img: Image.Image, path: Path) -> None:
    """PNG at Pillow's default level: optimize=True made these grids only ~1 % smaller for
    3-10x the encoding time (seconds per run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    print(f"wrote {path}", file=sys.stderr)


def show_hole(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = quantize(img).copy()
    out[np.asarray(mask) > 127] = HOLE_COLOUR
    return out


def sample_crops(size: int = TILE) -> list[tuple[str, np.ndarray]]:
    from skimage import data

    out = []
    for name, top, left in SAMPLES:
        img = getattr(data, name)()
        out.append((name, np.ascontiguousarray(img[top:top + size, left:left + size, :3])))
    return out


def _peer(name: str) -> Callable[..., np.ndarray] | None:
    for p in all_peers():
        if p.name == name and p.available:
            return p.fn
    return None


def _db(out: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> str:
    return f"{psnr(quantize(out), ref, mask):.2f} dB"


def _run_row(methods: list[tuple[str, Callable[..., np.ndarray] | None]], args: tuple,
             ref: np.ndarray, mask: np.ndarray | None = None) -> tuple[list[np.ndarray], list[str], list[str]]:
    imgs, caps, names = [], [], []
    for name, fn in methods:
        if fn is None:
            continue
        out = quantize(fn(*args))
        imgs.append(out)
        caps.append(_db(out, ref, mask))
        names.append(name)
    return imgs, caps, names


def sample_grids(ours: Any, out: Path, quick: bool = False, seed: int = 0,
                 tasks: tuple[str, ...] = ("denoise", "sr", "inpaint", "jpeg")) -> list[Path]:
    """The committed grids, from the bundled sample photos; ours through the engine."""
    from .quality import hole_input, jpeg_roundtrip, noisy_image

    crops = sample_crops()[:1] if quick else sample_crops()  # quick: one row checks the code path
    written = []
    has = (lambda op: ours is not None and ours.has(op))
    if "denoise" in tasks:
        sigma = 25
        methods = [("CBM3D", None if quick else _peer("CBM3D")), ("OpenCV NLM", _peer("OpenCV NLM")),
                   ("Ours", (lambda n, s: ours.denoise(n, s)) if has("restore") else None)]
        rows, caps, cols = [], [], []
        for i, (name, gt) in enumerate(crops):
            noisy = noisy_image(gt, sigma, seed, "sample", i)
            imgs, c, names = _run_row(methods, (noisy, sigma), gt)
            rows.append([quantize(noisy)] + imgs + [gt])
            caps.append([_db(noisy, gt)] + c + [""])
            cols = [f"Noisy (sigma {sigma})"] + names + ["Ground truth"]
        written.append(out / "grid_denoise.png")
        _save(compose(cols, rows, f"Colour denoising, sigma = {sigma} ({SAMPLE_TERMS})", caps), written[-1])
    if "sr" in tasks:
        scale = 4
        methods = [("Bicubic", _peer("Bicubic")), ("Lanczos", _peer("Lanczos")),
                   ("Ours", (lambda lr, s: ours.upscale(lr, s)) if has("restore") else None)]
        rows, caps, cols = [], [], []
        for name, gt in crops:
            lr = np.asarray(Image.fromarray(gt).resize((TILE // scale, TILE // scale), Image.Resampling.BICUBIC))
            y_ref = gt
            imgs, c, names = _run_row(methods, (lr, scale), y_ref)
            rows.append([lr] + imgs + [gt])
            caps.append(["(nearest)"] + c + [""])
            cols = [f"Low-res (1/{scale})"] + names + ["Ground truth"]
        written.append(out / "grid_sr.png")
        _save(compose(cols, rows, f"Super-resolution x{scale}, RGB PSNR ({SAMPLE_TERMS})", caps), written[-1])
    if "inpaint" in tasks:
        kinds = ("strokes_m", "box64", "scratches")
        methods = [("Telea", _peer("OpenCV Telea")), ("Navier-Stokes", _peer("OpenCV NS")),
                   ("PatchMatch", _peer("PatchMatch")),
                   ("Ours", (lambda im, m: ours.inpaint(im, m)) if has("inpaint") else None)]
        rows, caps, cols = [], [], []
        for i, ((name, gt), kind) in enumerate(zip(crops, kinds)):
            mask = masklib.make_mask(kind, TILE, TILE, i, seed)
            inp = hole_input(gt, mask)
            imgs, c, names = _run_row(methods, (inp, mask), gt, mask)
            rows.append([show_hole(gt, mask)] + imgs + [gt])
            caps.append([masklib.LABELS[kind]] + c + [""])
            cols = ["Input (hole)"] + names + ["Ground truth"]
        written.append(out / "grid_inpaint.png")
        _save(compose(cols, rows, f"Inpainting, PSNR inside the hole ({SAMPLE_TERMS})", caps), written[-1])
    if "jpeg" in tasks:
        q = 10
        methods = [("Ours", (lambda d, qq: ours.dejpeg(d, qq)) if has("restore") else None)]
        rows, caps, cols = [], [], []
        for name, gt in crops:
            dec = jpeg_roundtrip(gt, q)
            imgs, c, names = _run_row(methods, (dec, q), gt)
            rows.append([dec] + imgs + [gt])
            caps.append([_db(dec, gt)] + c + [""])
            cols = [f"JPEG q{q}"] + names + ["Ground truth"]
        written.append(out / "grid_jpeg.png")
        _save(compose(cols, rows, f"JPEG artefact removal, quality {q} ({SAMPLE_TERMS})", caps), written[-1])
    return written


def _crop_box(shape: tuple[int, ...], size: int, centre: tuple[int, int] | None = None) -> tuple[slice, slice]:
    h, w = shape[:2]
    cy, cx = centre if centre is not None else (h // 2, w // 2)
    size = min(size, h, w)
    y0 = int(np.clip(cy - size // 2, 0, h - size))
    x0 = int(np.clip(cx - size // 2, 0, w - size))
    return slice(y0, y0 + size), slice(x0, x0 + size)


def local_grids(examples: dict[str, list[dict]], folder: Path, size: int = 192) -> list[Path]:
    """Grids of the evaluation images kept by a quality run (not for committing)."""
    written = []
    for task, items in examples.items():
        if not items:
            continue
        names = list(items[0]["outputs"])
        rows, caps = [], []
        for ex in items:
            gt, mask = ex["gt"], ex.get("mask")
            centre = None
            if mask is not None:
                ys, xs = np.nonzero(mask > 127)
                centre = (int(ys.mean()), int(xs.mean())) if len(ys) else None
            sl = _crop_box(gt.shape, size, centre)
            inp = ex["input"]
            if task == "sr":
                s = gt.shape[0] // inp.shape[0]
                inp = np.repeat(np.repeat(inp, s, 0), s, 1)
            shown = show_hole(inp, mask) if mask is not None else inp
            blank = np.full_like(gt[sl], 200)  # a method that skipped this image (limited slow peer)
            row = [shown[sl]] + [ex["outputs"][n][sl] if n in ex["outputs"] else blank for n in names] + [gt[sl]]
            rows.append(row)
            cap = [f"{ex['name']} {ex['setting']}"]
            cap += [_db(ex["outputs"][n], gt, mask) if n in ex["outputs"] else "not run" for n in names] + [""]
            caps.append(cap)
        cols = ["Input"] + names + ["Ground truth"]
        written.append(folder / f"grid_{task}.png")
        _save(compose(cols, rows, f"{task}: evaluation images (local only, do not commit)", caps, tile=size),
              written[-1])
    return written
