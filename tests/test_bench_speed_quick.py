"""The benchmark's speed smoke mode (`python -m bench speed --quick`), end to end, against the real
engine with the tiny test model: the benchmark code never rots. (A module of its own so that
parallel test workers run it beside the quality smoke run.)"""
from __future__ import annotations

import json
from pathlib import Path

from bench.speed_removal import QUICK_SIDE
from benchrun import run_bench


def test_speed_quick(tmp_path: Path, tiny_models_dir: Path) -> None:
    out = tmp_path / "report"
    run_bench("speed", "--quick", "--out", str(out), "--models", str(tiny_models_dir), "--no-gpu")
    res = json.loads((out / "speed.json").read_text())
    assert res["latency"], "no latency rows"
    assert res["startup"]["ready_s"] > 0
    assert res["startup"]["peak_rss_mb"] and res["startup"]["peak_rss_mb"] > 10
    assert "## Speed" in (out / "README.md").read_text()
    removal = res["removal"]
    assert [r["size"] for r in removal["latency"]] == [QUICK_SIDE, QUICK_SIDE] and all(r["ours_s"] > 0 for r in removal["latency"])
    assert removal["memory"]["ours"]["peak_rss_mb"] >= removal["memory"]["ours"]["rss_before_job_mb"] > 10
    assert "Large-hole removal" in (out / "README.md").read_text()
