"""`python -m bench quality --quick --tasks oldphoto` end to end: every row is written and
the report shows the old-photo section with its bars."""
from __future__ import annotations

import json
from pathlib import Path

from benchrun import run_bench


def test_oldphoto_quick(tmp_path: Path, tiny_models_dir: Path, shared_data: Path) -> None:
    out = tmp_path / "report"
    run_bench("quality", "--quick", "--tasks", "oldphoto", "--data", str(shared_data / "eval"), "--out", str(out),
              "--models", str(tiny_models_dir), "--no-grids", "--no-local-grids", params={"oldphoto": {"steps": 2}})
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
