"""The tiny real models the test suite uses: 62k-parameter UNets trained in seconds.

- `builtin` (tests/fixtures/tiny_models/): 60 steps on dead leaves; the model the suite's engines
  serve. Its quality is not the point, its behaviour through the engine is.
- `smooth_blobs` (tests/fixtures/smooth_blobs/): 150 steps on soft colour blobs, whose opposite
  edges differ: samples show whether circular padding makes them wrap around (test_seamless.py).

Committed so that a test run does not spend seconds training them again (the training itself is
tested in test_training.py). Rerun after a change to the model file format or the UNet:

    .venv/bin/python tests/tiny_model.py [builtin | smooth_blobs]
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.diffusion.trainer import TrainConfig

TINY_ARCH = {"channels": [8, 16, 16, 16], "down_blocks": [1, 1, 1, 1], "up_blocks": [1, 1, 1, 1],
             "emb_dim": 32, "groups": 4}
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tiny_models"
SMOOTH_BLOBS = Path(__file__).resolve().parent / "fixtures" / "smooth_blobs"
FILES = ("model.json", "model.safetensors")  # what a model folder needs; no training state


def tiny_config(out: Path) -> "TrainConfig":
    """The recipe of the committed model."""
    from engine.diffusion.trainer import TrainConfig

    return TrainConfig(folders=[], out=str(out), steps=60, patch=32, batch=8, lr=1e-3, warmup=10,
                       synthetic="dead-leaves", sample_every=0, checkpoint_every=60,
                       architecture=dict(TINY_ARCH), seed=0)


def blobs(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random colour fields (a few soft Gaussian blobs): large-scale structure whose
    opposite edges do not match unless the generator makes them."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3)) + rng.uniform(0.2, 0.8, 3)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(-0.5, 0.5, 3)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def blobs_config(out: Path, data: Path) -> "TrainConfig":
    """The recipe of the smooth-blobs model; `data` is a folder that blob_pictures() filled."""
    from engine.diffusion.trainer import TrainConfig

    return TrainConfig(folders=[str(data)], out=str(out), steps=150, patch=32, batch=8, lr=2e-3, warmup=20,
                       ema=0.99, sample_every=0, checkpoint_every=1000, held_out=0,
                       architecture=dict(TINY_ARCH), device="cpu", mask_weights={"all": 1.0})


def blob_pictures(folder: Path) -> None:
    """The smooth-blobs model's training pictures: ten 64-px blob fields, seed 0."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(blobs(64, rng)).save(folder / f"b{i}.png")


def _train_one_thread(cfg: "TrainConfig") -> None:
    import torch

    from engine.diffusion.trainer import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, log=lambda *_: None)
    finally:
        torch.set_num_threads(before)


def train_tiny(out: Path) -> None:
    """Train the tiny model into `out` (a model folder) with one torch thread."""
    _train_one_thread(tiny_config(out))


def train_smooth_blobs(out: Path) -> None:
    """Train the smooth-blobs model into `out` with one torch thread, from out's parent folder so
    that the card names its data folder without this machine's path."""
    import os

    data = Path("blob_pictures")
    before = Path.cwd()
    os.chdir(out.parent)
    try:
        data.mkdir(exist_ok=True)
        blob_pictures(data)
        _train_one_thread(blobs_config(Path(out.name), data))
    finally:
        os.chdir(before)


def _replace(trainer: Callable[[Path], None], dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trainer(Path(tmp) / dest.name)
        dest.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copy2(Path(tmp) / dest.name / name, dest / name)
    print(f"wrote {dest}")


FIXTURES: dict[str, tuple[Callable[[Path], None], Path]] = {
    "builtin": (train_tiny, FIXTURE / "builtin"), "smooth_blobs": (train_smooth_blobs, SMOOTH_BLOBS)}


def regenerate(names: list[str]) -> None:
    """Train anew and replace the named committed fixtures (all when none is named)."""
    for name in names or list(FIXTURES):
        _replace(*FIXTURES[name])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    regenerate(sys.argv[1:])
