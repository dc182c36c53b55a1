"""What `restore` found and what it did, for meta and for people.

Why one module: the engine answers every restore with `found` (each measured degradation
with its count or estimate), `applied` (the chain it ran, with parameters) and `summary`,
one line of text built here. The CLI prints `summary` and the plug-ins show it in their
status message, so the wording lives in one place and every client says the same.
"""
from __future__ import annotations

from typing import Any

NOTHING = "found nothing to restore"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def found_phrases(found: dict[str, Any], weak: bool = False) -> list[str]:
    """Short phrases for the degradations worth mentioning, in chain order; with `weak`,
    only those measured below the thresholds that make auto act."""
    out = []
    for key, word, many in (("scratches", "scratch", "scratches"), ("hairs", "hair", None),
                            ("dust", "dust speck", None)):
        n = int(found.get(key, {}).get("count", 0) or 0)
        if n and found[key].get("significant", True) != weak:
            out.append(_plural(n, word, many))
    if weak:
        return out
    q = found.get("jpeg", {}).get("quality")
    if q is not None and found.get("jpeg", {}).get("significant", True):
        out.append(f"JPEG q~{q}")
    noise = found.get("noise", {})
    if noise.get("significant"):
        out.append(f"noise sigma~{noise['sigma']:g}")
    blur = found.get("blur", {})
    if blur.get("kind") == "gaussian":
        out.append(f"blur sigma~{blur['sigma']:g}")
    elif blur.get("kind") == "motion":
        out.append(f"motion blur {blur['length']:g} px at {blur['angle']:g} deg")
    return out


def applied_phrase(step: dict[str, Any]) -> str:
    """'repair', 'jpeg q35', 'denoise sigma 24.8', 'deblur sigma 2.1', 'upscale x2'."""
    task = step["task"]
    detail = {k: v for k, v in step.items() if k != "task"}
    if task == "jpeg" and "quality" in detail:
        return f"jpeg q{detail['quality']}"
    if task == "denoise" and "sigma" in detail:
        return f"denoise sigma {detail['sigma']:g}"
    if task == "deblur" and "blur_sigma" in detail:
        return f"deblur sigma {detail['blur_sigma']:g}"
    if task == "deblur" and "motion_length" in detail:
        return f"deblur motion {detail['motion_length']:g} px at {detail['motion_angle']:g} deg"
    if task == "upscale" and "scale" in detail:
        return f"upscale x{detail['scale']}"
    return task


def summary(found: dict[str, Any], applied: list[dict[str, Any]]) -> str:
    """'found: 23 scratches, 140 dust specks, JPEG q~35; applied: repair, jpeg q35', or
    'found nothing to restore' when nothing was found and nothing run."""
    phrases = found_phrases(found)
    if not applied:
        weak = phrases + found_phrases(found, weak=True)
        return NOTHING + (f" ({', '.join(weak)} below the thresholds)" if weak else "")
    text = f"found: {', '.join(phrases)}; " if phrases else ""
    return text + "applied: " + ", ".join(applied_phrase(s) for s in applied)
