"""`make demo` / `sfumato demo`: one real inpainting request end to end.

The default picture is drawn here (sky, sun, hills, a striped field), so the demo needs no
image files; `--image` uses the user's own picture instead. Writes before.png, mask.png
and after.png into the output folder.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def scene(width: int = 384, height: int = 256, seed: int = 0) -> np.ndarray:
    """A small procedural landscape, [h, w, 3] uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([120 + 80 * y / height, 170 + 50 * y / height, 235 - 20 * y / height], -1)
    img = sky
    sun = (x - width * 0.75) ** 2 + (y - height * 0.25) ** 2 < (height * 0.1) ** 2
    img[sun] = (250, 220, 120)
    for i, (base, amp, colour) in enumerate([(0.55, 0.08, (70, 120, 80)), (0.7, 0.05, (50, 100, 50))]):
        ridge = height * (base + amp * np.sin(x / width * (5 + 3 * i) + i * 1.3))
        img[y > ridge] = colour
    field = y > height * 0.8
    stripes = (np.sin(x / 6 + y / 3) > 0)[field]
    img[field] = np.where(stripes[:, None], (190, 160, 60), (160, 130, 40))
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def centre_mask(height: int, width: int) -> np.ndarray:
    """An ellipse in the middle with a soft edge, [h, w, 1] uint8 (255 = regenerate)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.sqrt(((x - width / 2) / (width * 0.16)) ** 2 + ((y - height / 2) / (height * 0.2)) ** 2)
    return (np.clip((1.15 - r) / 0.15, 0, 1) * 255).astype(np.uint8)[:, :, None]


def run_demo(args: argparse.Namespace) -> int:
    from .cli import ProgressBar, connect, fail, load_image, save_image
    from .client import EngineClientError

    image = load_image(args.image) if args.image else scene()
    mask = centre_mask(*image.shape[:2])
    out: Path = args.out
    save_image(image, out / "before.png")
    save_image(mask, out / "mask.png")
    bar = ProgressBar("inpaint")
    t0 = time.perf_counter()
    try:
        with connect(args) as client:
            if "inpaint" not in client.hello()["ops"]:
                return fail("this engine has no inpaint operation yet (unknown_op); nothing to demonstrate")
            result = client.run("inpaint", {"image": image, "mask": mask}, {"seed": 0}, on_progress=bar)
    except EngineClientError as exc:
        bar.close()
        return fail(f"inpaint failed: [{exc.code}] {exc.message}")
    bar.close()
    save_image(result.image, out / "after.png")
    print(f"inpainted {image.shape[1]}x{image.shape[0]} in {time.perf_counter() - t0:.1f} s: "
          f"{out / 'before.png'} -> {out / 'after.png'} (mask {out / 'mask.png'})")
    return 0
