"""`python -m bench quality --quick --tasks oldphoto` end to end: every row is written and
the report shows the old-photo section with its bars."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_oldphoto_quick(tmp_path: Path, tiny_models_dir: Path, shared_data: Path) -> None:
    out = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench", "quality", "--quick", "--tasks", "oldphoto",
                           "--data", str(shared_data / "eval"), "--out", str(out), "--models", str(tiny_models_dir),
                           "--no-grids", "--no-local-grids", "--ours-params", json.dumps({"oldphoto": {"steps": 2}})],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["setting"]: r for r in json.loads((out / "quality.json").read_text())["rows"]["oldphoto"]}
    for name in ("scratches", "hairs", "dust"):
        assert 0 <= rows[f"detect {name}"]["f1"] <= 1
    assert {"false positives colour", "false positives mono", "repair sepia", "auto chain"} <= set(rows)
    assert rows["repair mono"]["chroma_error"] < 0.5  # a monochrome photo gets no colour
    assert rows["repair colour"]["psnr"] > rows["repair colour"]["psnr_damaged"]
    assert len(rows["auto chain"]["cases"]) == 10
    assert any(s.startswith("deblur motion") for s in rows)
    readme = (out / "README.md").read_text()
    assert "## Old photos" in readme and "bar F1 >= 0.8" in readme
