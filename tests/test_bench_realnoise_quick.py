"""`bench quality --quick --tasks realnoise` end to end with the tiny model: the real-world noise
task and its report section never rot (CBM3D, a slow peer, is skipped in quick mode)."""
from __future__ import annotations

import json
from pathlib import Path

from bench.quality import QUICK_IMAGES
from benchrun import run_bench


def test_realnoise_quick(tmp_path: Path, tiny_models_dir: Path, shared_data: Path) -> None:
    out = tmp_path / "report"
    run_bench("quality", "--quick", "--tasks", "realnoise", "--data", str(shared_data / "eval"), "--out", str(out),
              "--models", str(tiny_models_dir), "--no-grids", "--bm3d-limit-pg", "2")
    rows = json.loads((out / "quality.json").read_text())["rows"]["realnoise"]
    got = {(r["setting"], r["method"]) for r in rows}
    for level in ("sigma=25", "poisson-gaussian"):
        for method in ("Sfumato (ours), noise measured", "Sfumato (ours), noise given"):
            assert (level, method) in got, got
    assert all(r["n"] == QUICK_IMAGES and r["psnr"] > 15 for r in rows), rows
    measured = [r for r in rows if r["method"].endswith("measured")]
    assert all(r["sigma_measured"] > 5 for r in measured), measured
    assert "## Real-world noise" in (out / "README.md").read_text()
    assert json.loads((out / "quality.json").read_text())["config"]["bm3d_limit_pg"] == 2
