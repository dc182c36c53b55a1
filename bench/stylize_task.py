"""`stylize` quality task: paintings x photos, judged by style and content distance.

Paintings come from the `style/` folder beside the eval data root (../shared/data/style),
photos are the first CBSD68 images; every method gets the same photo and painting. Per pair
and method (bench/style_metrics.py, a fixed random-weight conv net):
- style distance to the painting (Gram matrices; lower = closer to the painting's texture
  and colours);
- content distance to the photo (relative feature difference; lower = more of the photo's
  layout kept).
Methods, all in the same run: the photo itself, Reinhard colour transfer in Lab, ours at
engine defaults (exemplar synthesis), and ours' diffusion path with the same reference
(`style_model=builtin`: the palette match and guided SDEdit that stylize was before the
exemplar path). Outside quick mode ours is also timed on a 512x512 photo (the speed bar).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from .datasets import DataError
from .peers import package_version
from .style_metrics import content_distance, style_distance

if TYPE_CHECKING:
    from .quality import Method, QualityRun

DATASET = "CBSD68"
SETTING = "paintings x photos"
SPEED_SETTING = "512x512"
# Swirling strokes, a woodcut's lines and flat bands, long wavy bands, Kandinsky's abstract shapes and
# Léger's black outlines round hatched tubes (the last two: line work with distinct shapes).
PAINTINGS = ("starry_night", "great_wave_hokusai", "the_scream", "composition_vii_kandinsky",
             "contrast_of_forms_leger")
PHOTOS = 2  # per painting (the first CBSD68 images)
PAINTING_SIDE = 1024  # paintings are sent at most this large (quick: QUICK_PAINTING_SIDE)
QUICK_PAINTING_SIDE = 256
QUICK_DIFFUSION_STEPS = 4  # the diffusion path's style guidance costs about 0.45 s a step on a 128 px crop
SPEED_SIDE = 512
SPEED_TARGET_S = 20.0
PHOTO = "Photo (unchanged)"
REINHARD = "Reinhard colour transfer (Lab)"
DIFFUSION = "Sfumato, diffusion path (previous stylize)"


def styles_dir(data_root: str | Path) -> Path:
    """The paintings: `style/` beside the eval data root."""
    d = Path(data_root).resolve().parent / "style"
    if not d.is_dir():
        raise DataError(f"no paintings folder {d.name}/ beside the data root (expected ../style next to eval/)")
    return d


def load_painting(path: Path, side: int) -> np.ndarray:
    """RGB uint8, the longest side at most `side` (Lanczos)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        s = side / max(im.size)
        if s < 1:
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.LANCZOS)
        return np.asarray(im).copy()


def reinhard(photo: np.ndarray, painting: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001 colour transfer in CIELAB: each channel's mean and deviation matched."""
    from skimage.color import lab2rgb, rgb2lab

    a, b = rgb2lab(photo / 255.0), rgb2lab(painting / 255.0)
    out = (a - a.mean((0, 1))) / (a.std((0, 1)) + 1e-6) * b.std((0, 1)) + b.mean((0, 1))
    return np.clip(lab2rgb(out), 0, 1) * 255.0


def _methods(run: "QualityRun") -> list["Method"]:
    from .quality import QUICK_CROP, Method

    out = [Method(PHOTO, "baseline", lambda photo, painting: photo.astype(np.float64), "", "no change"),
           Method(REINHARD, "baseline", reinhard, f"scikit-image {package_version('scikit-image')}",
                  "per-channel mean and deviation in CIELAB")]
    # quick mode works at the crop's own size (the defaults would upsample it to the work side)
    quick = {"resolution": QUICK_CROP} if run.cfg.quick else {}
    stylize = (lambda *a, **k: run.ours.stylize(*a, **{**quick, **k})) if run.ours else None
    ours = run._ours_method("stylize", "stylize", stylize)
    if ours is not None:
        out.insert(0, ours)
        few = {"steps": QUICK_DIFFUSION_STEPS} if run.cfg.quick else {}
        params = {**quick, **few, **run._ours_params("stylize"), "style_model": "builtin"}
        out.insert(1, Method(DIFFUSION, "ours", lambda p, s: run.ours.stylize(p, s, **params), "",
                             "palette match + guided SDEdit with the built-in model (style_model=builtin)"))
    return out


def _scorer(photo: np.ndarray, painting: np.ndarray) -> Callable[["Method", np.ndarray], dict[str, float]]:
    ph, pa = photo / 255.0, painting / 255.0

    def score(m: "Method", out: np.ndarray) -> dict[str, float]:
        f = out.astype(np.float32) / 255.0
        return dict(style_distance=style_distance(f, pa), content_distance=content_distance(f, ph))
    return score


def _speed(run: "QualityRun", photo: np.ndarray, painting: np.ndarray) -> None:
    """Ours at defaults on the photo resized to 512x512 (after a warm-up call that loads the model)."""
    from .quality import OURS, log

    big = np.asarray(Image.fromarray(photo).resize((SPEED_SIDE, SPEED_SIDE), Image.Resampling.BICUBIC))
    params = run._ours_params("stylize")
    t0 = time.perf_counter()
    run.ours.stylize(big, painting, **params)
    sec = time.perf_counter() - t0
    run.rec.cell("stylize", DATASET, SPEED_SETTING, OURS, "ours", note=f"target < {SPEED_TARGET_S:.0f} s").add(
        "speed", sec)
    log(f"[stylize] {SPEED_SIDE}x{SPEED_SIDE}: {sec:.1f} s")


def run_task(run: "QualityRun") -> None:
    """Every painting on the first photos; see the module docstring."""
    from .quality import log

    folder = styles_dir(run.cfg.data)
    quick = run.cfg.quick
    names = PAINTINGS[:1] if quick else PAINTINGS
    missing = [n for n in names if not (folder / f"{n}.jpg").is_file()]
    if missing:
        raise DataError(f"paintings missing from {folder.name}/: {', '.join(missing)}")
    paintings = {n: load_painting(folder / f"{n}.jpg", QUICK_PAINTING_SIDE if quick else PAINTING_SIDE)
                 for n in names}
    photos = [(item.name, run._load(item)) for item in run.data.images(DATASET, 1 if quick else PHOTOS)]
    methods = _methods(run)
    if run.ours is not None and methods[0].kind == "ours":  # untimed: loads the model
        run.ours.stylize(np.full((32, 32, 3), 128, np.uint8), paintings[names[0]][:64, :64], resolution=64)
    i = 0
    for pname, painting in paintings.items():
        for name, photo in photos:
            label = f"{name} x {pname}"
            outs = run._run_methods("stylize", DATASET, SETTING, methods, i, label, (photo, painting),
                                    _scorer(photo, painting))
            shown = np.asarray(Image.fromarray(painting).resize(photo.shape[1::-1], Image.Resampling.LANCZOS))
            run._keep_example("stylize", SETTING, i, label, photo, outs, shown)
            parts = [f"{m.name}: style {c.values['style_distance'][-1]:.3f} content {c.values['content_distance'][-1]:.3f}"
                     for m in methods if (c := run.rec.cells.get(("stylize", DATASET, SETTING, m.name)))]
            log(f"[stylize] {i + 1}/{len(paintings) * len(photos)} {label}  " + "; ".join(parts))
            i += 1
    if run.ours is not None and methods[0].kind == "ours" and not quick:
        _speed(run, photos[0][1], paintings[names[0]])
