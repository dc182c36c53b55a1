"""The old-photo section of the benchmark report (rows of `bench quality --tasks oldphoto`)."""
from __future__ import annotations

from .formatting import number

BARS = {"f1": 0.8, "fp_percent": 0.1, "deblur_gap_db": 1.0, "auto_right": 0.9}


_f = number


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def oldphoto_section(rows: list[dict], when: str) -> list[str]:
    """Markdown lines: detector, false positives, repair, deblur and auto tables with the bars."""
    by = {r["setting"]: r for r in rows}
    if not by:
        return []
    lines = ["## Old photos: scratches, dust, hairs, blur (`--tasks oldphoto`)", "", when, "",
             "Damage drawn by bench/oldphoto_damage.py (seeded) over CBSD68 in colour, monochrome and sepia "
             "versions; a mark counts where it changes the pixel by 16 grey levels or more. See "
             "bench/oldphoto.py for the exact protocol.", "",
             "| Detector class | images | precision | recall | F1 | bar F1 >= 0.8 |", "|---|---|---|---|---|---|"]
    for name in ("scratches", "hairs", "dust"):
        r = by.get(f"detect {name}")
        if r:
            lines.append(f"| {name} ({r['note']}) | {r['per_image']['images'][0]} | {_f(r['precision'], 3)} | "
                         f"{_f(r['recall'], 3)} | {_f(r['f1'], 3)} | {_met(r['f1'] >= BARS['f1'])} |")
    lines += ["", "| Undamaged photos | flagged pixels (%) | bar < 0.1 % |", "|---|---|---|"]
    for tone in ("colour", "mono", "sepia"):
        r = by.get(f"false positives {tone}")
        if r:
            lines.append(f"| {tone} | {_f(r['fp_percent'], 3)} | {_met(r['fp_percent'] < BARS['fp_percent'])} |")
    lines += ["", "| Repair (task=repair) | n | damaged PSNR | repaired PSNR | 5x5 median PSNR | chroma error |",
              "|---|---|---|---|---|---|"]
    for tone in ("colour", "mono", "sepia"):
        r = by.get(f"repair {tone}")
        if r:
            lines.append(f"| {tone} | {r['n']} | {_f(r['psnr_damaged'])} | {_f(r['psnr'])} | "
                         f"{_f(r['psnr_median5'])} | {_f(r['chroma_error'])} |")
    lines += ["", "Chroma error: mean |Cb| + |Cr| difference from the clean photo over the marks' pixels "
              "(0..255 scale); on mono it is the false colour added.", "",
              "| Deblur | n | blurred PSNR | blind PSNR | known-kernel PSNR | gap (dB) | mean estimate | bar gap <= 1 dB |",
              "|---|---|---|---|---|---|---|---|"]
    for setting, r in by.items():
        if setting.startswith("deblur "):
            gap = r["psnr_known"] - r["psnr_blind"]
            lines.append(f"| {setting[7:]} | {r['n']} | {_f(r['psnr_blurred'])} | {_f(r['psnr_blind'])} | "
                         f"{_f(r['psnr_known'])} | {_f(gap)} | {_f(r['estimate'])} | "
                         f"{_met(gap <= BARS['deblur_gap_db'])} |")
    r = by.get("auto chain")
    if r:
        lines += ["", f"`task=auto` picked exactly the expected chain in {_f(100 * r['right'], 0)} % of "
                  f"{r['n']} cases (bar 90 %: {_met(r['right'] >= BARS['auto_right'])}).", "",
                  "| case | expected | chosen | summary |", "|---|---|---|---|"]
        for c in r.get("cases", []):
            lines.append(f"| {c['image']} {c['kind']} | {', '.join(c['expected']) or '–'} | "
                         f"{', '.join(c['chain']) or '–'} | {c['summary']} |")
    return lines + [""]
