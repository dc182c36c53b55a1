"""`removal` and `outpaint` quality tasks: large holes, judged by texture as well as PSNR.

PSNR inside a large hole rewards a smooth average of the plausible fills, which is exactly
the smear an artist rejects. These tasks therefore report, per image and method:
- texture ratio (bench/metrics.py): fine detail in the hole relative to the 24-px ring of
  known pixels around it, over the same for the real picture; target 0.8-1.2, a smear is
  below 0.3. Aggregated as a geometric mean, so a ratio of 2 is as far off as one of 0.5;
- patch distance: sliced Wasserstein distance between the 7x7 patches of the filled hole
  and of the real one, on a 3-level Laplacian pyramid, with projections seeded per image
  (every method is measured along the same directions); lower is better;
- hole PSNR, still reported;
- outpaint only: seam ratio at the old edge (target below 1.3), and the real picture's
  own seam ratio for comparison.

removal: CBSD68 with seeded object-shaped masks (2-3 overlapping rotated ellipses covering
4-10 %, bench/masks.py). outpaint: the left three quarters are kept, the right quarter is
the hole. Every method receives the image with the hole's pixels zeroed and the mask. Ours
runs twice (default settings and method=patch), OpenCV Telea and PatchMatch always run on
every image in the same run (`--patchmatch-limit` applies to the inpaint task only).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from . import masks as masklib
from .metrics import patch_distance, psnr, seam_ratio, texture_ratio

if TYPE_CHECKING:
    from .quality import Method, QualityRun

DATASET = "CBSD68"
PEERS = ("OpenCV Telea", "PatchMatch")
OURS_PATCH = "Sfumato (ours), method=patch"
REAL = "Real picture"
SETTINGS = {"removal": "objects", "outpaint": "right 25%"}


def outpaint_edge(width: int) -> int:
    """The first column of the outpainted strip: the left three quarters are kept."""
    return (3 * width) // 4


def outpaint_mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[:, outpaint_edge(w):] = 255
    return m


def _methods(run: "QualityRun", task: str) -> list["Method"]:
    """Ours (default settings, then method=patch) and the two peers, none image-limited."""
    from .quality import Method

    out: list[Method] = []
    ours = run._ours_method(task, "inpaint", run.ours.inpaint if run.ours else None)
    if ours is not None:
        out.append(ours)
        if run.ours.has("inpaint", "method"):
            params = {**run._ours_params(task), "method": "patch"}
            note = ", ".join(f"{k}={v}" for k, v in params.items())
            out.append(Method(OURS_PATCH, "ours", lambda img, m: run.ours.inpaint(img, m, **params), "", note))
    for name in PEERS:
        p = run.peers.get(name)
        if p is None or not p.available:
            run.skipped.append({"task": task, "method": name, "reason": p.reason if p else "unknown peer"})
            continue
        out.append(Method(p.name, "peer", p.fn, p.package, p.note))
    return out


def _scorer(clean: np.ndarray, mask: np.ndarray, seed: int, edge: int | None
            ) -> Callable[["Method", np.ndarray], dict[str, float]]:
    def score(m: "Method", out: np.ndarray) -> dict[str, float]:
        vals = dict(psnr=psnr(out, clean, mask), texture_ratio=texture_ratio(out, clean, mask),
                    patch_distance=patch_distance(out, clean, mask, seed=seed))
        if edge is not None:
            vals["seam_ratio"] = seam_ratio(out, edge)
        return vals
    return score


def _aggregate(run: "QualityRun", task: str) -> None:
    """Set-level figures that a plain mean would get wrong: the ratios' geometric mean, and
    means that skip the images where a ratio is undefined (a flat real ring)."""
    for cell in run.rec.cells.values():
        if cell.task != task:
            continue
        for key in ("texture_ratio", "seam_ratio"):
            v = np.asarray(cell.values.get(key, []), dtype=np.float64)
            v = v[np.isfinite(v) & (v > 0)]
            if len(v):
                cell.extra[key] = float(np.exp(np.log(v).mean()))
        if "texture_ratio" in cell.values:
            v = np.asarray(cell.values["texture_ratio"])
            cell.extra["texture_in_band"] = float(np.mean((v >= 0.8) & (v <= 1.2)))


def run_task(run: "QualityRun", task: str) -> None:
    """One of `removal` or `outpaint` on the first images of CBSD68 (see the module docstring)."""
    from .quality import hole_input, log

    setting = SETTINGS[task]
    methods = _methods(run, task)
    items = run._images(DATASET)
    if run.ours is not None and methods and methods[0].kind == "ours":  # untimed: loads the model
        warm = np.zeros((64, 64), np.uint8)
        warm[24:40, 24:40] = 255
        methods[0].fn(np.full((64, 64, 3), 128, np.uint8), warm)
    for i, item in enumerate(items):
        clean = run._load(item)
        h, w = clean.shape[:2]
        if task == "removal":
            mask, edge = masklib.make_mask("objects", h, w, i, run.cfg.seed), None
        else:
            mask, edge = outpaint_mask(h, w), outpaint_edge(w)
            run.rec.cell(task, DATASET, setting, REAL, "reference", note="the ground truth's own seam").add(
                item.name, 0.0, seam_ratio=seam_ratio(clean, edge))
        inp = hole_input(clean, mask)
        outs = run._run_methods(task, DATASET, setting, methods, i, item.name, (inp, mask),
                                _scorer(clean, mask, run.cfg.seed * 1000 + i, edge))
        run._keep_example(task, setting, i, item.name, inp, outs, clean, mask=mask)
        parts = [f"{m.name}: tex {np.exp(np.nanmean(np.log(c.values['texture_ratio']))):.2f} "
                 f"patch {np.mean(c.values['patch_distance']):.3f} psnr {np.mean(c.values['psnr']):.2f}"
                 for m in methods if (c := run.rec.cells.get((task, DATASET, setting, m.name)))]
        log(f"[{task} {DATASET}] {i + 1}/{len(items)}  " + "; ".join(parts))
    _aggregate(run, task)
