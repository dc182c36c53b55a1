"""Report sections for the model zoo (bench/zoo_task.py quality rows, bench/speed_zoo.py speed rows)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .formatting import number
from .published import ROWS as PUBLISHED
from .zoo_task import (BICUBIC, DENOISE_SETTING, GREY_DATASET, OURS, SCALE, SR_SETS, SR_SETTING)

INTRO = (
    "Other projects' checkpoints run through the engine (`restore --model NAME`, the engine's tiling and "
    "compositing), read from the zoo models folder (`--zoo-models`, default `../shared/models`). "
    f"**x{SCALE} super-resolution**: the protocol and LR files of the super-resolution section (MATLAB-bicubic LR, "
    f"Y-PSNR / SSIM on BT.601 Y after shaving {SCALE} px), plus two distances of the fixed random-weight conv net of "
    "`bench/style_metrics.py` computed at full resolution on the shaved RGB images: **feature distance** to the HR "
    "image (squared feature difference over the HR's feature energy; lower = closer) and **Gram distance** (unit-norm "
    "Gram matrices; lower = closer texture statistics, which blur does not have). They are not LPIPS (no learned "
    "weights with a clear licence are available offline) and have not been validated against human judgement.")
NOTES = (
    "Honest notes: Real-ESRGAN is **GAN-trained** on synthetic real-world degradations: it draws crisp edges and "
    "invents detail, so its PSNR is lower than bicubic's on these clean bicubic-downscaled inputs while it looks "
    "sharper; the random-feature distances penalise its misplaced edges more than they reward sharpness. The "
    "**Compact model is trained on anime video**, not photos. Our built-in model and the published SR rows are "
    "PSNR-oriented. Bicubic and ours are measured again here because the feature distances need their outputs; "
    "their Y-PSNR uses the same code as the super-resolution section (the line below each table compares them).")
DENOISE_INTRO = (
    "CBSD68 converted to grey (Pillow `L`, ITU-R 601-2 luma), with the denoising section's seeded white Gaussian "
    "noise of σ 25, unclipped; PSNR / SSIM of the 8-bit grey result. The engine takes RGB: each method gets the grey "
    "image on all three channels (a one-channel zoo model runs once on such a grey picture) and the result's channel mean "
    "is scored. The zoo path clips its input to [0, 1] before the network; the direct-forward row (the network on "
    "the unclipped image, outside the engine) shows what that costs under this protocol. The published rows are on "
    "BSD68 grey, the same 68 scenes from their own grey files, so they compare closely, not exactly.")


def _f(x: Any, nd: int = 2) -> str:
    return number(x, nd)


def _mib(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f} MiB"


def _n(row: dict) -> str:
    of = row.get("of")
    return f"{row.get('n')} of {of}" if of and row.get("n") != of else str(row.get("n"))


def _name(row: dict) -> str:
    if row.get("kind") == "ours":
        return f"**{row['method']}**"
    if row.get("kind") == "published":
        return f"{row['method']} (published)"
    tag = " (reference)" if row.get("kind") == "reference" else ""
    return f"{row['method']}{tag}" + (f" — {row['package']}" if row.get("package") else "")


def _subset(row: dict, images: list[str], metric: str) -> float | None:
    per = row.get("per_image", {})
    look = dict(zip(per.get("images", []), per.get(metric, [])))
    vals = [look[i] for i in images if i in look]
    return float(np.mean(vals)) if vals and len(vals) == len(images) else None


def _cross_check(zoo_rows: list[dict], sr_rows: list[dict], dataset: str) -> str:
    """How the zoo task's bicubic and ours Y-PSNR compare with the `sr` section's on shared images."""
    bits = []
    for method in (BICUBIC, OURS):
        z = next((r for r in zoo_rows if r["dataset"] == dataset and r["method"] == method), None)
        s = next((r for r in sr_rows if r["dataset"] == dataset and r["setting"] == SR_SETTING
                  and r["method"] == method), None)
        if not z or not s:
            continue
        zi = dict(zip(z["per_image"]["images"], z["per_image"]["psnr"]))
        si = dict(zip(s["per_image"]["images"], s["per_image"]["psnr"]))
        common = [i for i in zi if i in si]
        if common:
            d = max(abs(zi[i] - si[i]) for i in common)
            bits.append(f"{method}: largest difference {d:.3f} dB over {len(common)} shared images")
    return ("Against the super-resolution section's rows (measured " + "; ".join(bits) + ").") if bits else ""


def _sr_table(rows: list[dict], dataset: str) -> list[str]:
    r = [x for x in rows if x["dataset"] == dataset and x["setting"] == SR_SETTING]
    if not r:
        return []
    order = {BICUBIC: 0, OURS: 1}
    lines = [f"**{dataset} x{SCALE}**", "",
             "| Method | Y-PSNR (dB) | SSIM (Y) | feature distance | Gram distance | s / image | n |",
             "|---|---|---|---|---|---|---|"]
    full = max(x["n"] for x in r)
    for x in sorted(r, key=lambda x: order.get(x["method"], 2)):
        lines.append(f"| {_name(x)} | {_f(x.get('psnr'))} | {_f(x.get('ssim'), 4)} | "
                     f"{_f(x.get('feature_distance'), 3)} | {_f(x.get('gram_distance'), 4)} | "
                     f"{_f(x.get('seconds_per_image'))} | {_n(x)} |")
    short = [x for x in r if x["n"] < full]
    if short:
        lines += ["", "Rows with fewer images cover the first ones only."]
    return lines + [""]


def _denoise_table(rows: list[dict]) -> list[str]:
    r = [x for x in rows if x["dataset"] == GREY_DATASET and x["setting"] == DENOISE_SETTING]
    if not r:
        return []
    lines = [f"**{GREY_DATASET}, σ 25**", "", "| Method | PSNR (dB) | SSIM | s / image | n |", "|---|---|---|---|---|"]
    full = max(x["n"] for x in r)
    zoo = next((x for x in r if x["kind"] == "zoo"), None)
    order = {"zoo": 0, "reference": 1, "ours": 2, "peer": 3}
    for x in sorted(r, key=lambda x: order.get(x["kind"], 4)):
        cell = _f(x.get("psnr"))
        if x["n"] < full and zoo is not None:
            same = _subset(zoo, x["per_image"]["images"], "psnr")
            if same is not None:
                cell += f" (first {x['n']}; {zoo['method']} on them: {_f(same)})"
        lines.append(f"| {_name(x)} | {cell} | {_f(x.get('ssim'), 4)} | {_f(x.get('seconds_per_image'))} | {_n(x)} |")
    for p in PUBLISHED:
        if p.task == "zoo" and p.setting == DENOISE_SETTING:
            lines.append(f"| {p.method} (published, {p.dataset}) | {_f(p.psnr)} | – | – | 68 |")
    return lines + [""]


def _checkpoints(meta: dict) -> list[str]:
    cks = meta.get("checkpoints") or []
    if not cks:
        return []
    lines = ["| Checkpoint | architecture | purpose | scale | parameters | file size | stored as |",
             "|---|---|---|---|---|---|---|"]
    for c in cks:
        if c.get("error"):
            lines.append(f"| `{c['name']}` | unusable: {c['error']} | | | | | |")
            continue
        lines.append(f"| `{c['name']}` | {c.get('architecture')} | {c.get('purpose')} | {c.get('scale')} | "
                     f"{c.get('parameters', 0) / 1e6:.2f} M | {c.get('size', 0) / 1e6:.1f} MB | {c.get('dtype')} |")
    return lines + [""]


def quality_sections(rows: dict[str, list[dict]], meta: dict, when: Callable[[str], str]) -> list[str]:
    r = rows.get("zoo")
    if not r:
        return []
    m = meta.get("zoo", {})
    lines = ["## Model zoo: other projects' checkpoints", "", when("zoo"), "", INTRO, ""]
    if m.get("stopped"):
        lines += [f"**Partial run**: {m['stopped']}; the n column says how many images each row covers.", ""]
    lines += _checkpoints(m) + [NOTES, ""]
    for ds in SR_SETS:
        t = _sr_table(r, ds)
        if t:
            check = _cross_check(r, rows.get("sr", []), ds)
            lines += t + ([check, ""] if check else [])
    t = _denoise_table(r)
    if t:
        lines += ["### Grey denoising, σ 25", "", DENOISE_INTRO, ""] + t
    return lines


def speed_sections(s: dict) -> list[str]:
    z = s.get("zoo")
    if not z:
        return []
    if z.get("skipped"):
        return ["### Zoo checkpoints", "", f"Not measured: {z['skipped']}", ""]
    threads = z.get("torch_threads")
    lines = ["### Zoo checkpoints", "",
             f"_{z.get('when', '')}; load average at start {z.get('load_at_start')}, at end {z.get('load_at_end')}_", "",
             f"x{z['scale']} of a {z['size']}×{z['size']} photo (the astronaut sample) through the engine on "
             f"{z.get('device')} with {threads} torch threads; each model warmed up on a 32² image first. "
             "**These are loaded figures**: the machine was shared with other work (the load average is per call "
             "below), so the wall time is inflated; the process CPU time is far less sensitive to load. On an idle "
             f"machine with {threads} threads the wall time lies between CPU time ÷ {threads} and the CPU time. "
             f"Tile side in this run: {z.get('tile_in')} input pixels ({z.get('tiles')} tile for this image); the "
             "engine picks the largest side whose working memory fits in half of the free memory (CPU: 256, 128 "
             "or 64 from the available memory; GPU: 1024, 512 or 256 from free GPU memory; "
             "`engine/tasks/restore_zoo.py` tile_side, read at each job).", "",
             "| Method | wall (median) | CPU time (median) | runs | load (1 min) | peak RSS after | target on 2 idle cores | met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in z.get("rows", []):
        target, met = r.get("target_s"), ""
        if target:
            cpu, per = r["cpu_s"], r["cpu_s"] / max(1, threads or 1)
            met = ("yes, by CPU time (wall not measured idle)" if cpu < target else
                   f"likely (CPU time ÷ {threads} = {per:.1f} s)" if per < target else "no")
        loads = sorted({x.get("load_1min") for x in r["runs"] if x.get("load_1min") is not None})
        name = f"**{r['method']}**" if r["kind"] == "ours" else r["method"]
        lines.append(f"| {name} | {_f(r['wall_s'])} s | {_f(r['cpu_s'])} s | {len(r['runs'])} | "
                     f"{', '.join(_f(x, 1) for x in loads) or '–'} | {_mib(r.get('peak_rss_mb_after'))} | "
                     f"{'< ' + _f(target, 0) + ' s' if target else '–'} | "
                     f"{met or '–'} |")
    if z.get("missing"):
        lines += ["", f"Not measured (checkpoint absent): {', '.join(z['missing'])}."]
    return lines + [""]
