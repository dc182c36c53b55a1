"""`sfumato train --out`: no silent overwrite of a model, never `builtin`, normal file modes (issue 18 D5)."""
from __future__ import annotations

import os
import shutil
import stat

from engine.cli import main

import pytest

TRAIN = ["--synthetic", "dead-leaves", "--steps", "2", "--patch", "16", "--batch", "2", "--sample-every", "0",
         "--device", "cpu"]
BASE: list[str] = []


@pytest.fixture(autouse=True)
def tiny_base(tiny_models_dir):
    """Fine-tune the session's tiny model, so that two training steps take a moment."""
    BASE[:] = ["--from", str(tiny_models_dir / "builtin")]


def train_into(out, *extra: str) -> int:
    return main(["train", *TRAIN, *BASE, "--out", str(out), *extra])


def test_existing_model_is_kept_unless_forced(tmp_path, tiny_models_dir, capsys):
    out = tmp_path / "models" / "mine"
    shutil.copytree(tiny_models_dir / "builtin", out, ignore=shutil.ignore_patterns("train_state"))
    before = (out / "model.safetensors").read_bytes()
    assert train_into(out) == 2
    err = capsys.readouterr().err
    assert "already holds a model" in err and "--force" in err and err.count("\n") == 1, err
    assert (out / "model.safetensors").read_bytes() == before
    assert train_into(out, "--force") == 0
    assert (out / "model.safetensors").read_bytes() != before


def test_builtin_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "models" / "builtin"
    assert train_into(out, "--force") == 2
    assert "builtin" in capsys.readouterr().err
    assert not out.exists()


def test_model_files_get_normal_modes_and_a_training_state_resumes(tmp_path, capsys):
    out = tmp_path / "models" / "modes"
    old = os.umask(0o022)
    try:
        assert train_into(out) == 0
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert train_into(out, "--steps", "3") == 0  # a training state in the folder: more steps continue it
    assert "resumed" in capsys.readouterr().out
