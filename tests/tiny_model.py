"""The tiny real model the test suite serves: a 62k-parameter UNet trained 60 steps on dead leaves.

Committed under tests/fixtures/tiny_models/ so that a test run does not spend seconds training it
again (the training itself is tested in test_training.py). Its quality is not the point, its
behaviour through the engine is. Rerun after a change to the model file format or the UNet:

    .venv/bin/python tests/tiny_model.py
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.diffusion.trainer import TrainConfig

TINY_ARCH = {"channels": [8, 16, 16, 16], "down_blocks": [1, 1, 1, 1], "up_blocks": [1, 1, 1, 1],
             "emb_dim": 32, "groups": 4}
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tiny_models"
FILES = ("model.json", "model.safetensors")  # what a model folder needs; no training state


def tiny_config(out: Path) -> "TrainConfig":
    """The recipe of the committed model."""
    from engine.diffusion.trainer import TrainConfig

    return TrainConfig(folders=[], out=str(out), steps=60, patch=32, batch=8, lr=1e-3, warmup=10,
                       synthetic="dead-leaves", sample_every=0, checkpoint_every=60,
                       architecture=dict(TINY_ARCH), seed=0)


def train_tiny(out: Path) -> None:
    """Train the tiny model into `out` (a model folder) with one torch thread."""
    import torch

    from engine.diffusion.trainer import train

    cfg = tiny_config(out)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, log=lambda *_: None)
    finally:
        torch.set_num_threads(before)


def regenerate() -> None:
    """Train anew and replace the committed fixture."""
    with tempfile.TemporaryDirectory() as tmp:
        train_tiny(Path(tmp) / "builtin")
        dest = FIXTURE / "builtin"
        dest.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copy2(Path(tmp) / "builtin" / name, dest / name)
    print(f"wrote {dest}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    regenerate()
