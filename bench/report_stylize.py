"""Report section for the `stylize` quality task (bench/stylize_task.py): the distance table,
the 512x512 time and the issue's bars checked against them."""
from __future__ import annotations

from typing import Any, Callable

from .formatting import number
from .stylize_task import (DIFFUSION, PAINTINGS, PHOTO, PHOTOS, REINHARD, SETTING, SPEED_SETTING,
                           SPEED_TARGET_S)

OURS = "Sfumato (ours)"
INTRO = (f"Paintings from `style/` beside the eval data ({', '.join(PAINTINGS)}) times the first {PHOTOS} CBSD68 "
         "photos; every method gets the same photo and painting, seed 0. Distances use a fixed random-weight "
         "three-stage conv net (`bench/style_metrics.py`; random filters capture texture statistics, "
         "Ustyuzhaninov et al. 2017), images measured at 256 px on the longest side. **Style distance**: mean "
         "over stages of the Frobenius distance between the unit-norm Gram matrices of the result's and the "
         "painting's features (lower = closer to the painting's texture and colours). **Content distance**: "
         "squared feature difference between result and photo over the photo's feature energy (lower = more "
         "of the photo kept). The previous stylize is ours' diffusion path with the same reference "
         "(`style_model=builtin`).")


def _f(x: Any, nd: int = 3) -> str:
    return number(x, nd)


def _verdicts(rows: list[dict]) -> list[str]:
    by = {r["method"]: r for r in rows if r["setting"] == SETTING}
    ours = by.get(OURS)
    if ours is None:
        return []
    out = []
    others = [by[m] for m in (PHOTO, REINHARD, DIFFUSION) if m in by]
    if others:
        ok = all(ours["style_distance"] < o["style_distance"] for o in others)
        best = min(others, key=lambda o: o["style_distance"])
        out.append(f"style distance below all baselines' ({_f(ours['style_distance'])} vs best baseline "
                   f"{best['method']} {_f(best['style_distance'])}): {'yes' if ok else 'no'}")
    if DIFFUSION in by:
        c, d = ours["content_distance"], by[DIFFUSION]["content_distance"]
        out.append(f"content distance no worse than the previous stylize's ({_f(c)} vs {_f(d)}): "
                   f"{'yes' if c <= d else 'no'}")
    speed = next((r for r in rows if r["setting"] == SPEED_SETTING and r["method"] == OURS), None)
    if speed and speed.get("seconds_per_image") is not None:
        s = speed["seconds_per_image"]
        out.append(f"512x512 under {SPEED_TARGET_S:.0f} s ({s:.1f} s): {'yes' if s < SPEED_TARGET_S else 'no'}")
    return ["Targets for ours (default settings): " + "; ".join(out) + ".", ""]


def _per_painting(rows: list[dict]) -> list[str]:
    """Style / content distance per painting (mean over its photos), one column per method: where
    ours wins and loses, which the mean over all pairs hides."""
    order = [m for m in (OURS, DIFFUSION, REINHARD) if any(r["method"] == m for r in rows)]
    by = {r["method"]: r.get("per_image") or {} for r in rows if r["setting"] == SETTING}
    if not order or not by.get(order[0], {}).get("images"):
        return []
    names = [x.split(" x ", 1)[1] for x in by[order[0]]["images"]]
    lines = ["Per painting, style / content distance (mean over its photos):", "",
             "| painting | " + " | ".join(order) + " |", "|---" * (len(order) + 1) + "|"]
    for painting in dict.fromkeys(names):
        cells = []
        for m in order:
            pi = by.get(m, {})
            idx = [i for i, x in enumerate(pi.get("images", [])) if x.split(" x ", 1)[1] == painting]
            s = [pi["style_distance"][i] for i in idx]
            c = [pi["content_distance"][i] for i in idx]
            cells.append(f"{_f(sum(s) / len(s))} / {_f(sum(c) / len(c))}" if idx else "–")
        lines.append(f"| {painting} | " + " | ".join(cells) + " |")
    return lines + [""]


def quality_sections(rows: dict[str, list[dict]], when: Callable[[str], str]) -> list[str]:
    r = rows.get("stylize")
    if not r:
        return []
    lines = ["## Style transfer", "", when("stylize"), "", INTRO, "",
             "| Method | style distance | content distance | s / image | n |", "|---|---|---|---|---|"]
    order = {OURS: 0, DIFFUSION: 1, REINHARD: 2, PHOTO: 3}
    for x in sorted((x for x in r if x["setting"] == SETTING), key=lambda x: order.get(x["method"], 5)):
        name = f"**{x['method']}**" if x["method"] == OURS else x["method"]
        if x.get("package"):
            name += f" — {x['package']}"
        lines.append(f"| {name} | {_f(x.get('style_distance'))} | {_f(x.get('content_distance'))} | "
                     f"{_f(x.get('seconds_per_image'), 2)} | {x.get('n')} |")
    speed = next((x for x in r if x["setting"] == SPEED_SETTING), None)
    if speed:
        lines += ["", f"Ours at defaults on the first photo resized to 512x512 (Starry Night): "
                      f"{_f(speed.get('seconds_per_image'), 1)} s."]
    return lines + [""] + _per_painting(r) + _verdicts(r)
