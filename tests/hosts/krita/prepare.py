"""Inputs for the Krita host test: a generated test image, a tiny real model, the test config.

Run with the engine's Python: `python tests/hosts/krita/prepare.py WORKDIR --address ADDR ...`.
The model is trained here in seconds by the project's own trainer (as tests/conftest.py
does), so the test needs no shipped weights; its quality is not the point.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HOSTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HOSTS))
import zoo_compare  # noqa: E402  (tests/hosts/zoo_compare.py)

TINY_ARCH = {"channels": [8, 16, 16, 16], "down_blocks": [1, 1, 1, 1], "up_blocks": [1, 1, 1, 1],
             "emb_dim": 32, "groups": 4}


def test_image(width: int = 256, height: int = 192) -> np.ndarray:
    """Gradients, discs and stripes: structure an inpainting result visibly differs from."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 4), np.float32)
    img[..., 0] = 40 + 180 * x / width
    img[..., 1] = 60 + 120 * y / height
    img[..., 2] = 120 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)
    for cx, cy, r, col in ((70, 60, 30, (230, 200, 40)), (180, 120, 40, (40, 90, 200)), (128, 96, 18, (200, 40, 60))):
        disc = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[disc, :3] = col
    img[(x.astype(int) // 6) % 5 == 0, 1] *= 0.6
    img[..., 3] = 255
    return np.clip(img, 0, 255).astype(np.uint8)


def photo() -> np.ndarray:
    """scikit-image's bundled cat photo (for the documentation screenshot), as RGBA."""
    from skimage import data

    rgb = data.chelsea()
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


def tiny_model(models: Path) -> None:
    from engine.diffusion.trainer import TrainConfig, train

    if (models / "builtin" / "model.json").is_file():
        return
    cfg = TrainConfig(folders=[], out=str(models / "builtin"), steps=60, patch=32, batch=8, lr=1e-3, warmup=10,
                      synthetic="dead-leaves", sample_every=0, checkpoint_every=60,
                      architecture=dict(TINY_ARCH), seed=0)
    train(cfg, log=lambda *_: None)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("--address", required=True)
    p.add_argument("--dead-address", required=True)
    p.add_argument("--models", type=Path, help="use this models folder instead of training a tiny model")
    p.add_argument("--screenshot", default="")
    p.add_argument("--allow-missing-ops", action="store_true")
    p.add_argument("--photo", action="store_true", help="scikit-image's cat photo instead of the generated image")
    args = p.parse_args()
    work = args.work.resolve()
    (work / "out").mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo() if args.photo else test_image(), "RGBA").save(work / "image.png")
    style = np.asarray(Image.fromarray(test_image(96, 96)).convert("RGB"))[:, ::-1].copy()  # any other picture
    Image.fromarray(style, "RGB").save(work / "style.png")
    if args.models is None:
        tiny_model(work / "models")
        # the zoo checkpoint beside the tiny model, for the model picker and the zoo upscale
        served, zoo_skip = zoo_compare.zoo_models(work / "models", work / "models")
    else:  # a folder of the caller's: used as it is
        has = any((args.models / (zoo_compare.ZOO_MODEL + s)).exists() for s in (".safetensors", ".pth"))
        zoo_skip = "" if has else f"{args.models} holds no {zoo_compare.ZOO_MODEL} checkpoint"
    cfg = {"image": str(work / "image.png"), "style": str(work / "style.png"), "out": str(work / "out"),
           "report": str(work / "report.json"),
           "address": args.address, "dead_address": args.dead_address, "screenshot": args.screenshot,
           "allow_missing_ops": args.allow_missing_ops, "steps": 6, "slow_steps": 150,
           "selection": [200, 120, 90, 70] if args.photo else [96, 64, 64, 56],
           "restore_selection": [24, 24, 80, 60], "deadline": 720,
           "job_timeout": 240, "window": [1440, 900],
           "zoo_model": "" if zoo_skip else zoo_compare.ZOO_MODEL, "zoo_skip": zoo_skip, "zoo_size": zoo_compare.ZOO_SIZE}
    (work / "config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    print(f"prepared {work} (models: {args.models or work / 'models'}; pid {os.getpid()})")


if __name__ == "__main__":
    main()
