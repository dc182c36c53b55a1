"""Read the report the Krita-side test wrote and the PNGs it exported; exit 0 only if every check held.

The exported images are checked again from outside Krita (with numpy): outside the
selection the result must equal the test image exactly.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main(work: Path) -> int:
    report_path = work / "report.json"
    if not report_path.is_file():
        print("FAIL krita host test: Krita wrote no report (crashed or hung); see krita.log")
        return 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    cfg = json.loads((work / "config.json").read_text(encoding="utf-8"))
    checks = list(report["checks"])
    source = np.asarray(Image.open(cfg["image"]).convert("RGBA"))
    exported = work / "out" / "inpaint.png"
    if exported.is_file():
        got = np.asarray(Image.open(exported).convert("RGBA"))
        x, y, w, h = cfg["selection"]
        f = 13  # the engine's feather grows at most 12 px outwards from the selection
        outside = np.ones(source.shape[:2], bool)
        outside[max(0, y - f):y + h + f, max(0, x - f):x + w + f] = False
        same = bool(np.array_equal(got[outside], source[outside]))
        changed = int(np.any(got[y:y + h, x:x + w] != source[y:y + h, x:x + w], axis=-1).sum())
        checks.append({"name": "exported PNG: unchanged outside the selection box (and feather), changed inside",
                       "ok": same and changed > 0, "detail": f"changed inside: {changed} px"})
        print(f"[krita-host-test] {'ok  ' if same and changed else 'FAIL'} {checks[-1]['name']} {checks[-1]['detail']}")
    big = work / "out" / "zoo-big.png"
    if big.is_file():  # the zoo upscale, judged here: inside the host's chroot there is no numpy
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from zoo_compare import judge  # tests/hosts/zoo_compare.py
        verdict = judge(work / "out" / "zoo-small.png", big, 4)
        checks.append({"name": "zoo upscale: not a bicubic copy of the input", "ok": bool(verdict.get("ok")),
                       "detail": verdict})
        print(f"[krita-host-test] {'ok  ' if verdict.get('ok') else 'FAIL'} {checks[-1]['name']} {verdict}")
    failed = [c for c in checks if not c["ok"]]
    info = report.get("info", {})
    print(f"krita host test: {len(checks) - len(failed)}/{len(checks)} checks passed in Krita {info.get('krita')} "
          f"(Python {info.get('python')}, {info.get('qt_binding')}, transport {info.get('transport')}); "
          f"scenario {report.get('seconds', 0):.1f} s; engine ops {info.get('engine_ops')}")
    for c in failed:
        print(f"  FAILED: {c['name']}: {c['detail']}")
    return 0 if checks and not failed else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
