"""Style models: `train --from` on code-drawn "paintings" stores an exemplar bank, and stylize with
that model alone moves the picture towards the folder's strokes (real trainer, real engine)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.style_metrics import style_distance
from degrade import clean_scene
from engine import images
from engine.client import Client
from engine.diffusion import style_bank
from engine.diffusion.recipes import finetune_defaults
from engine.diffusion.trainer import train


def striped(h: int, w: int, seed: int) -> np.ndarray:
    """A code-drawn 'painting': diagonal red and black bands with a little jitter in width."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    period = 14 + rng.integers(0, 6)
    band = ((xx + yy + rng.integers(0, period)) % period) < period // 2
    img = np.where(band[..., None], [200, 30, 20], [15, 10, 10]) + rng.integers(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def stripes_model(tiny_models_dir: Path, tmp_path_factory) -> tuple[Path, list[str], list[np.ndarray]]:
    """A models folder with the tiny builtin and 'stripes', fine-tuned briefly on four striped images."""
    root = tmp_path_factory.mktemp("style_model")
    folder = root / "paintings"
    folder.mkdir()
    paintings = [striped(180, 240, s) for s in range(4)]
    for i, p in enumerate(paintings):
        Image.fromarray(p).save(folder / f"stripes_{i}.png")
    models = root / "models"
    shutil.copytree(tiny_models_dir / "builtin", models / "builtin")
    log: list[str] = []
    cfg = finetune_defaults([str(folder)], str(models / "stripes"), str(models / "builtin"), steps=3, patch=32,
                            batch=2, sample_every=0, device="cpu")
    train(cfg, log=log.append)
    return models, log, paintings


def test_training_stores_a_bank_of_the_training_paintings(stripes_model) -> None:
    models, log, paintings = stripes_model
    bank = style_bank.load(models / "stripes")
    assert bank is not None and bank.shape == (style_bank.GRID * style_bank.TILE,) * 2 + (3,)
    assert style_bank.load(models / "builtin") is None
    assert any("held out" in line and "stripes_3.png" in line for line in log), log  # named on screen
    # the bank holds the paintings' colours: red and near-black, nothing else
    assert np.abs(bank.reshape(-1, 3).mean(0) - np.mean([p.reshape(-1, 3).mean(0) for p in paintings], 0)).max() < 25


def test_style_model_alone_moves_stylize_towards_the_folder(stripes_model) -> None:
    models, _, paintings = stripes_model
    photo = images.from_float(images.to_float(clean_scene(96, 128, 3)), np.uint8)
    with Client.in_process(models_dir=str(models), device="cpu", timeout=120) as c:
        styled = c.run("stylize", {"image": photo}, {"style_model": "stripes", "seed": 1})
        base = c.run("stylize", {"image": photo}, {"style_model": "builtin", "seed": 1, "steps": 3})
    assert styled.meta.get("exemplar_bank") and styled.meta["method"] == "exemplar"
    assert base.meta["method"] == "diffusion"
    ref = paintings[0] / 255.0
    d_style = style_distance(styled.image / 255.0, ref)
    d_base = style_distance(base.image / 255.0, ref)
    assert d_style < 0.7 * d_base, (d_style, d_base)


def test_minutes_is_the_training_time(tiny_models_dir: Path, tmp_path: Path) -> None:
    """With fill_minutes the steps are re-planned from the measured speed: training lasts the time given."""
    folder = tmp_path / "p"
    folder.mkdir()
    Image.fromarray(striped(96, 96, 0)).save(folder / "a.png")
    minutes = 0.05  # three seconds: three steps fit well inside it on a loaded machine
    cfg = finetune_defaults([str(folder)], str(tmp_path / "m"), str(tiny_models_dir / "builtin"), patch=32, batch=2,
                            sample_every=0, device="cpu", max_minutes=minutes, fill_minutes=True, steps=3)
    t0 = time.perf_counter()
    train(cfg, log=lambda *_: None)
    took = time.perf_counter() - t0
    assert cfg.steps > 3  # three steps of a tiny network take far less than three seconds
    assert took > 0.8 * minutes * 60, took
