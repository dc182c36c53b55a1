"""Report sections for large-hole fills: the `removal` and `outpaint` quality tables and the
removal speed and memory rows (bench/completion.py, bench/speed_removal.py)."""
from __future__ import annotations

import math
from typing import Callable

from .completion import OURS_PATCH, REAL
from .formatting import number

OURS = "Sfumato (ours)"
TEXTURE_BAND = (0.8, 1.2)
SEAM_MAX = 1.3
TITLES = {"removal": ("Object removal", "CBSD68 with seeded object-shaped masks: 2-3 overlapping rotated ellipses "
                      "covering 4-10 % of the image (`bench/masks.py`, kind `objects`)."),
          "outpaint": ("Outpainting", "CBSD68: the left three quarters are kept, the right quarter is filled.")}
INTRO = ("Every method gets the image with the hole zeroed and the mask; OpenCV Telea and PatchMatch run on every "
         "image of the same run. **Texture ratio**: standard deviation of the Laplacian (luma) inside the hole "
         "over that in the 24-px ring of known pixels around it, divided by the same ratio of the real picture; "
         "geometric mean over images, target 0.8-1.2 (a smear is below 0.3); *in band* is the share of images "
         "inside the target. **Patch distance**: sliced Wasserstein distance between the 7x7 patches of the "
         "filled hole and of the real hole on a 3-level Laplacian pyramid (seeded projections, channels "
         "normalised by the real picture), mean over images, lower is better. **Hole PSNR** in dB. "
         "**Seam ratio** (outpainting): mean absolute difference across the old edge over that between "
         "neighbouring columns in the 24 known columns before it; geometric mean, target below 1.3.")


_f = number


def _label(r: dict) -> str:
    if r["kind"] == "ours":
        return f"**{r['method']}**"
    if r["kind"] == "reference":
        return f"{r['method']} (ground truth)"
    return f"{r['method']} — {r['package']}" if r.get("package") else r["method"]


def _verdicts(rows: list[dict], task: str) -> list[str]:
    """The issue's bars for ours at default settings, checked against this table."""
    ours = next((r for r in rows if r["method"] == OURS), None)
    peers = [r for r in rows if r["kind"] == "peer"]
    if ours is None:
        return []
    out = []
    if peers:
        worst = min(peers, key=lambda r: r.get("patch_distance", math.inf))
        ok = all(ours["patch_distance"] < p["patch_distance"] for p in peers)
        out.append(f"patch distance below both peers' ({_f(ours['patch_distance'], 3)} vs best peer "
                   f"{worst['method']} {_f(worst['patch_distance'], 3)}): {'yes' if ok else 'no'}")
    tr = ours.get("texture_ratio")
    if tr is not None:
        out.append(f"texture ratio in {TEXTURE_BAND[0]}-{TEXTURE_BAND[1]} ({_f(tr)}): "
                   f"{'yes' if TEXTURE_BAND[0] <= tr <= TEXTURE_BAND[1] else 'no'}")
    if task == "outpaint" and ours.get("seam_ratio") is not None:
        out.append(f"seam ratio below {SEAM_MAX} ({_f(ours['seam_ratio'])}): "
                   f"{'yes' if ours['seam_ratio'] < SEAM_MAX else 'no'}")
    return ["Targets for ours (default settings): " + "; ".join(out) + ".", ""]


def quality_sections(rows: dict[str, list[dict]], when: Callable[[str], str]) -> list[str]:
    lines: list[str] = []
    intro = INTRO
    for task in ("removal", "outpaint"):
        r = rows.get(task)
        if not r:
            continue
        title, what = TITLES[task]
        seam = task == "outpaint"
        lines += [f"## {title}", "", when(task), "", what + " " + intro, ""]
        intro = "Measures as for object removal above."
        head = "| Method | texture ratio | in band | patch distance | hole PSNR (dB) |" + (" seam ratio |" if seam else "")
        lines += [head + " s / image | n |", "|---|---|---|---|---|" + ("---|" if seam else "") + "---|---|"]
        order = {OURS: 0, OURS_PATCH: 1, "OpenCV Telea": 2, "PatchMatch": 3, REAL: 9}
        for x in sorted(r, key=lambda x: order.get(x["method"], 5)):
            cells = [_f(x.get("texture_ratio")), _f(x.get("texture_in_band"), 2), _f(x.get("patch_distance"), 3),
                     _f(x.get("psnr"))] + ([_f(x.get("seam_ratio"))] if seam else [])
            secs = "–" if x["kind"] == "reference" else _f(x.get("seconds_per_image"))
            lines.append(f"| {_label(x)} | " + " | ".join(cells) + f" | {secs} | {x.get('n')} |")
        lines += [""] + _verdicts(r, task)
    return lines


def speed_sections(s: dict) -> list[str]:
    rem = s.get("removal")
    if not rem:
        return []
    load = f"; load average at start {rem['load_average']}" if rem.get("load_average") else ""
    lines = ["### Large-hole removal", "", f"_{rem.get('when', '')}{load}_", "",
             "The astronaut sample resized to each size with a seeded object-shaped hole, default settings; "
             "PatchMatch on the same input in the same run. Peak memory is the VmHWM of a fresh process "
             "running one job (`python -m bench.speed_removal probe`); the RSS before the job (imports, "
             "engine, model) is part of it.", "",
             "| case | target | ours | PatchMatch | ours ÷ PatchMatch | met |", "|---|---|---|---|---|---|"]
    for r in rem.get("latency", []):
        ratio = r.get("ours_over_peer")
        lines.append(f"| {r['case']} (measured at {r['size']}²) | < {r['target_s']:.0f} s | {_f(r['ours_s'])} s | "
                     f"{_f(r.get('peer_s'))} s | {_f(ratio)}× | {'yes' if r['ours_s'] < r['target_s'] else 'no'} |")
    m = rem.get("memory")
    if m:
        o, p = m.get("ours", {}), m.get("peer", {})
        peak, theirs = o.get("peak_rss_mb"), p.get("peak_rss_mb")
        ratio = peak / theirs if peak and theirs else None
        met = "–" if peak is None else ("yes" if peak < m["target_mb"] else "no")
        lines.append(f"| {m['case']} (measured at {m['size']}²) | < {m['target_mb'] / 1024:.0f} GiB | "
                     f"{_f(peak, 0)} MiB ({_f(o.get('seconds'))} s; {_f(o.get('rss_before_job_mb'), 0)} MiB "
                     f"before the job) | {_f(theirs, 0)} MiB ({_f(p.get('seconds'))} s) | {_f(ratio)}× | {met} |")
        for who, res in (("ours", o), ("PatchMatch", p)):
            if "error" in res:
                lines.append(f"\n{who}: {res['error']}")
    return lines + [""]
