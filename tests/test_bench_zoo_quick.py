"""The benchmark's zoo task (`python -m bench quality --tasks zoo`) in smoke mode, end to end: one Set5 and
one BSD100 image (quick-mode centre crops), the real Real-ESRGAN Compact checkpoint from ../shared/models
and the tiny test model as the built-in one, through the real engine. Checks the code paths, the rows, the
report section and the resume from the per-image progress file; the figures are not a result."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchrun import run_bench

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
COMPACT = "realesr-animevideov3-x4.pth"


def _zoo_rows(out: Path) -> dict[tuple[str, str], dict]:
    res = json.loads((out / "quality.json").read_text())
    return {(r["dataset"], r["method"]): r for r in res["rows"]["zoo"]}


def test_zoo_quality_quick(tmp_path: Path, tiny_models_dir: Path, shared_data: Path) -> None:
    from engine.zoo.backend import available

    if not available():
        pytest.skip("the zoo extra (spandrel) is not installed")
    if not (SHARED_MODELS / COMPACT).is_file():
        pytest.skip(f"real checkpoint {COMPACT} not found in {SHARED_MODELS}")
    out = tmp_path / "report"
    args = ("quality", "--quick", "--limit", "1", "--tasks", "zoo", "--zoo-parts", "sr",
            "--zoo-checkpoints", "realesr-animevideov3-x4", "--zoo-models", str(SHARED_MODELS),
            "--data", str(shared_data / "eval"), "--out", str(out), "--models", str(tiny_models_dir),
            "--no-grids", "--no-local-grids")
    run_bench(*args)
    rows = _zoo_rows(out)
    compact = "Real-ESRGAN Compact (animevideov3)"
    assert set(rows) == {(ds, m) for ds in ("Set5", "BSD100") for m in ("Bicubic", "Sfumato (ours)", compact)}, rows
    for r in rows.values():
        assert r["n"] == 1 and r["setting"] == "x4"
        assert 15 < r["psnr"] < 50 and 0 < r["ssim"] <= 1, r
        assert r["feature_distance"] > 0 and r["gram_distance"] > 0, r
    # A real x4 model is far closer to the HR image than noise would be, and not identical to bicubic.
    for ds in ("Set5", "BSD100"):
        assert abs(rows[(ds, compact)]["psnr"] - rows[(ds, "Bicubic")]["psnr"]) < 6
        assert rows[(ds, compact)]["per_image"]["psnr"] != rows[(ds, "Bicubic")]["per_image"]["psnr"]
    progress = (out / "zoo_progress.jsonl").read_text().splitlines()
    assert len(progress) == 6
    readme = (out / "README.md").read_text()
    assert "## Model zoo" in readme and "Real-ESRGAN Compact" in readme

    run_bench(*args, "--zoo-resume")  # every figure comes from the progress file: nothing measured again
    assert (out / "zoo_progress.jsonl").read_text().splitlines() == progress
    again = _zoo_rows(out)
    assert {k: r["per_image"] for k, r in again.items()} == {k: r["per_image"] for k, r in rows.items()}


def test_zoo_speed_without_checkpoints(tmp_path: Path) -> None:
    """No checkpoint in the zoo folder: the speed section says so (and starts no engine) instead of failing."""
    from bench.report_zoo import speed_sections
    from bench.speed_zoo import run_zoo_speed

    zoo = run_zoo_speed(str(tmp_path), None, "cpu", quick=True, repeats=1)
    assert "realesrgan-x4plus.safetensors" in zoo["skipped"] and tmp_path.name in zoo["skipped"]
    assert "Not measured: no checkpoint" in "\n".join(speed_sections({"zoo": zoo}))
