"""The benchmark's smoke mode, end to end, so the benchmark code never rots.

Runs `python -m bench quality --quick` (and `speed --quick`) as a user would, against the
real engine with the tiny test model, and checks the report and JSON they write.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("skimage", reason="the bench extra is not installed (pip install -e .[bench])")
pytest.importorskip("cv2", reason="the bench extra is not installed (pip install -e .[bench])")


# Smoke settings: few sampler steps, and one torch thread in the benchmark and the engine it
# spawns (tiny networks gain nothing from more, and spinning threads crawl on a busy CPU);
# every code path still runs.
SMOKE = ("--ours-params", json.dumps({"inpaint": {"steps": 4}, "stylize": {"steps": 4}, "sr": {"steps": 2}}))


def _bench(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench", *args, *SMOKE], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"bench {args[0]} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def test_quality_quick(tmp_path: Path, tiny_models_dir: Path, shared_data: Path) -> None:
    out = tmp_path / "report"
    _bench("quality", "--quick", "--data", str(shared_data / "eval"), "--out", str(out),
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
                assert r["n"] == 3 and r["texture_ratio"] > 0 and r["patch_distance"] > 0 and r["psnr"] > 5
        assert ("seam_ratio" in rows["PatchMatch"]) == (task == "outpaint")
        assert title in readme


def test_speed_quick(tmp_path: Path, tiny_models_dir: Path) -> None:
    out = tmp_path / "report"
    _bench("speed", "--quick", "--out", str(out), "--models", str(tiny_models_dir), "--no-gpu")
    res = json.loads((out / "speed.json").read_text())
    assert res["latency"], "no latency rows"
    assert res["startup"]["ready_s"] > 0
    assert res["startup"]["peak_rss_mb"] and res["startup"]["peak_rss_mb"] > 10
    assert "## Speed" in (out / "README.md").read_text()
    removal = res["removal"]
    assert [r["size"] for r in removal["latency"]] == [256, 256] and all(r["ours_s"] > 0 for r in removal["latency"])
    assert removal["memory"]["ours"]["peak_rss_mb"] >= removal["memory"]["ours"]["rss_before_job_mb"] > 10
    assert "Large-hole removal" in (out / "README.md").read_text()
