"""Report sections for the `texture` and `pattern` quality tasks (bench/texture.py): per reference
seam ratio, structure kept and stripe errors, the 512x512 tile's time, and the issue's targets."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .formatting import number
from .texture import BASELINE, OURS, SEAM_BAND, SEEDS, SHIFTED, STRIPE_TOL, STRUCTURE_MAX, TILING

SPEED_MAX = 10.0  # seconds for one 512x512 tile on 2 CPU cores
INTRO = ("References: centre crops of paintings (`../shared/data/style`, resized to 512 px on the longest side) "
         "and code-drawn stripes, checks and bricks (`bench/texture.py`). **Seam ratio**: mean absolute "
         "difference across the wrap-around edges over that between neighbouring pixels inside; target "
         f"{SEAM_BAND[0]}-{SEAM_BAND[1]}. **Style distance**: Gram distance of random-filter features "
         "(`bench/style_metrics.py`) between the result and the reference crop; **structure** is that over the "
         f"distance of plain tiling of the crop (target at most {STRUCTURE_MAX}). **Stripes**: the dominant "
         "orientation (error as a share of a quarter turn) and period of the result tiled 2x2 against the "
         f"reference's; target within {STRIPE_TOL:.0%}. Ours is grown with seeds {', '.join(map(str, SEEDS))} (quick "
         "runs: one) and averaged: a single wrap-around line of a painting varies by itself. A tile grown from "
         "the checks or bricks holds whole repeats and stays in phase with them (engine/synthesis/lattice.py), "
         "so its wrap-around line is a line of the pattern: 0.00 where it runs through the middle of the squares, "
         "as plain tiling's does; the band is for irregular textures.")
TITLES = {"texture": ("Textures from a reference", "`generate` with the crop as `reference`, `tileable`, default "
                      f"settings; `{BASELINE}` (the model redraws the grown texture) runs in the same run."),
          "pattern": ("Seamless tiles and repeats", "`pattern layout=seamless` on the crops; structure and style "
                      "distance are measured on the tile repeated 2x2, against the crop repeated 2x2 as is. "
                      "Last row: a half-drop repeat of a drawn leaf over a ground grown from the bricks. "
                      f"`{SHIFTED}`: the same painting cropped a few pixels further down and right and tiled as "
                      "is, for scale: plain tiling's distance is that of the crop to itself (its edges are all "
                      "that differ), while any seamless tile has to change its edges. The drawn stripes do not "
                      "fit a 160 px tile (11.5 periods across it, 6.7 down): plain tiling of the crop keeps "
                      "that error, while ours cuts the tile to whole cycles first (11 across, 6 down: a "
                      "152 x 144 tile; the tile of a picture that clearly repeats may differ in size).")}


_f = number


def _per_image(rows: list[dict]) -> list[tuple[str, str, dict[str, dict[str, float]]]]:
    """(reference, setting, {method: {metric: value}}) in the order the references ran. The stripe
    errors are measured on the stripes alone: one value per cell, the cell's mean."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for r in rows:
        pi = r.get("per_image", {})
        seeds: dict[str, list[int]] = {}  # "NAME seed K" samples: one reference grown with several seeds
        for i, sample in enumerate(pi.get("images", [])):
            seeds.setdefault(sample.split(" seed ")[0], []).append(i)
        for name, at in seeds.items():
            vals = {k: float(np.mean([pi[k][i] for i in at])) for k in ("seam_ratio", "style_distance", "structure")
                    if k in pi}
            if name == "stripes" and "period_error" in r:
                vals.update(orientation_error=r["orientation_error"], period_error=r["period_error"])
            out.setdefault((name, r["setting"]), {})[r["method"]] = {**vals, "seconds": r.get("seconds_per_image")}
    return [(k[0], k[1], v) for k, v in out.items()]


def _verdicts(task: str, refs: list[tuple[str, str, dict]], rows: list[dict]) -> list[str]:
    ours = [(n, m[OURS]) for n, _, m in refs if OURS in m and "structure" in m[OURS]]
    if not ours:
        return []
    seam = [n for n, v in ours if not SEAM_BAND[0] <= v["seam_ratio"] <= SEAM_BAND[1]]
    struct = [n for n, v in ours if v["structure"] > STRUCTURE_MAX]
    bits = [f"seam ratio in {SEAM_BAND[0]}-{SEAM_BAND[1]}: {len(ours) - len(seam)}/{len(ours)}"
            + (f" (not: {', '.join(seam)})" if seam else ""),
            f"structure at most {STRUCTURE_MAX}: {len(ours) - len(struct)}/{len(ours)}"
            + (f" (not: {', '.join(struct)})" if struct else "")]
    st = next((v for n, v in ours if n == "stripes" and "period_error" in v), None)
    if st:
        ok = st["orientation_error"] <= STRIPE_TOL and st["period_error"] <= STRIPE_TOL
        bits.append(f"stripes within {STRIPE_TOL:.0%} (orientation {st['orientation_error']:.1%}, period "
                    f"{st['period_error']:.1%}): {'yes' if ok else 'no'}")
    speed = next((r for r in rows if r["dataset"] == "speed"), None)
    if task == "texture" and speed:
        sec = speed["seconds_per_image"]
        bits.append(f"{speed['setting']} under {SPEED_MAX:.0f} s ({sec:.1f} s): {'yes' if sec < SPEED_MAX else 'no'}")
    return ["Targets for ours (default settings): " + "; ".join(bits) + ".", ""]


def quality_sections(rows: dict[str, list[dict]], when: Callable[[str], str], out: Path) -> list[str]:
    lines: list[str] = []
    intro = INTRO
    for task in ("texture", "pattern"):
        r = rows.get(task)
        if not r:
            continue
        title, what = TITLES[task]
        lines += [f"## {title}", "", when(task), "", what + " " + intro, ""]
        intro = "Measures as for textures above."
        refs = _per_image([x for x in r if x["dataset"] != "speed"])
        lines += ["| Reference | setting | method | seam ratio | style distance | structure | stripes: orientation "
                  "/ period error | s / image (mean) |", "|---|---|---|---|---|---|---|---|"]
        for name, setting, methods in refs:
            for m in (OURS, BASELINE, TILING, SHIFTED):
                v = methods.get(m)
                if v is None:
                    continue
                stripe = (f"{v['orientation_error']:.1%} / {v['period_error']:.1%}" if "period_error" in v else "–")
                label = f"**{m}**" if m == OURS else m
                secs = _f(v.get("seconds")) if m not in (TILING, SHIFTED) else "–"
                lines.append(f"| {name} | {setting} | {label} | {_f(v.get('seam_ratio'))} | "
                             f"{_f(v.get('style_distance'), 3)} | {_f(v.get('structure'))} | {stripe} | {secs} |")
        speed = next((x for x in r if x["dataset"] == "speed"), None)
        if speed:
            lines += ["", f"Speed: one {speed['setting']} grown from a painting crop, default settings, through the "
                          f"engine: {_f(speed['seconds_per_image'], 1)} s."]
        lines += [""] + _verdicts(task, refs, r)
        if (out / f"grid_{task}.png").is_file():
            lines += [f"![{task}: the code-drawn references](grid_{task}.png)", "",
                      "(The painting crops' grid is in `local/`, git-ignored: those images are not ours to publish.)", ""]
    return lines
