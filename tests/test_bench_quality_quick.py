"""The benchmark's quality smoke mode (`python -m bench quality --quick`), end to end, against the real
engine with the tiny test model: the benchmark code never rots. (A module of its own so that
parallel test workers run it beside the quality smoke run.)"""
from __future__ import annotations

import json
from pathlib import Path

from bench.quality import QUICK_IMAGES
from benchrun import run_bench


def test_quality_quick(tmp_path: Path, tiny_models_dir: Path, shared_data: Path) -> None:
    out = tmp_path / "report"
    run_bench("quality", "--quick", "--data", str(shared_data / "eval"), "--out", str(out),
           "--models", str(tiny_models_dir))
    res = json.loads((out / "quality.json").read_text())
    for task in ("denoise", "sr", "inpaint", "jpeg"):
        rows = res["rows"][task]
        assert rows, f"no rows for {task}"
        assert all(r["n"] >= 1 for r in rows)
        assert all(r["psnr"] > 5 for r in rows), rows
    from engine.tasks import OPERATIONS

    op_of = {"denoise": "restore", "sr": "restore", "inpaint": "inpaint", "jpeg": "restore"}
    for task, op in op_of.items():
        if op in OPERATIONS:  # ours must be measured wherever the engine has the op
            assert any(r["kind"] == "ours" for r in res["rows"][task]), f"ours missing from {task}"
    methods = {r["method"] for r in res["rows"]["inpaint"]}
    assert {"OpenCV Telea", "OpenCV NS"} <= methods
    readme = (out / "README.md").read_text()
    assert "(published)" in readme and "## Inpainting" in readme
    for task in ("denoise", "sr", "inpaint", "jpeg"):
        assert (out / f"grid_{task}.png").is_file()
        assert (out / "local" / f"grid_{task}.png").is_file()
    for task, title in (("removal", "## Object removal"), ("outpaint", "## Outpainting")):
        rows = {r["method"]: r for r in res["rows"][task]}
        assert {"Sfumato (ours)", "Sfumato (ours), method=patch", "OpenCV Telea", "PatchMatch"} <= set(rows), rows
        for r in rows.values():
            if r["kind"] != "reference":
                assert r["n"] == QUICK_IMAGES and r["texture_ratio"] > 0 and r["patch_distance"] > 0 and r["psnr"] > 5
        assert ("seam_ratio" in rows["PatchMatch"]) == (task == "outpaint")
        assert title in readme
    from bench.texture import BASELINE, OURS, SHIFTED, TILING

    tex = res["rows"]["texture"]
    by = {(r["dataset"], r["method"]): r for r in tex}
    for ds in ("style", "drawn"):  # painting crops and code-drawn stripes, checks, bricks; ours, baseline, tiling
        assert {m for d, m in by if d == ds} == {OURS, BASELINE, TILING}
        for m in (OURS, BASELINE):
            r = by[(ds, m)]
            assert r["seam_ratio"] > 0 and r["style_distance"] > 0 and r["structure"] > 0, r
    assert by[("drawn", OURS)]["n"] == 3 and "period_error" in by[("drawn", OURS)]
    assert by[("speed", OURS)]["seconds_per_image"] > 0
    seam = {(r["dataset"], r["method"]): r for r in res["rows"]["pattern"]}
    assert seam[("style", OURS)]["seam_ratio"] < seam[("style", TILING)]["seam_ratio"]
    assert seam[("style", SHIFTED)]["structure"] > 0 and ("drawn", SHIFTED) not in seam  # paintings only
    assert "## Textures from a reference" in readme and "## Seamless tiles and repeats" in readme
    assert (out / "grid_texture.png").is_file() and (out / "local" / "grid_pattern.png").is_file()
    rows = {r["method"]: r for r in res["rows"]["stylize"]}
    assert {"Sfumato (ours)", "Sfumato, diffusion path (previous stylize)", "Reinhard colour transfer (Lab)",
            "Photo (unchanged)"} <= set(rows), rows
    assert rows["Photo (unchanged)"]["content_distance"] == 0
    for r in rows.values():  # every other method moves towards the painting
        assert r["n"] == 1 and 0 <= r["style_distance"] < 2
        if r["method"] != "Photo (unchanged)":
            assert r["style_distance"] < rows["Photo (unchanged)"]["style_distance"], rows
            assert r["content_distance"] > 0
    assert "## Style transfer" in readme and (out / "local" / "grid_stylize.png").is_file()
