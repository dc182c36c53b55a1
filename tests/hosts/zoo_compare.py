"""Judge a zoo upscale made inside a host (GIMP or Krita) against the small input it came from.

Run with the engine's Python (numpy, PIL): `python tests/hosts/zoo_compare.py SMALL.png BIG.png 4`
prints one JSON line; exit 0 when BIG is exactly SCALE times SMALL and is not a bicubic copy of
it. A bicubic upscale (PIL) of SMALL is the classical peer: a learned x4 model's output differs
from it clearly and has crisper edges (more gradient energy). Also imported by the GIMP harness.

Also makes the symlinked models folder the host tests serve: the tiny model plus the real
Real-ESRGAN x4plus checkpoint from ../shared/models (`zoo_models`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ZOO_MODEL = "realesrgan-x4plus"
ZOO_FILE = ZOO_MODEL + ".safetensors"
SHARED_MODELS = Path(os.environ.get("SFUMATO_SHARED_MODELS") or Path(__file__).resolve().parents[3] / "shared" / "models")
MIN_DIFF = 2.0  # mean |result - bicubic| in 0..255 grey levels above which it is not a bicubic copy
ZOO_SIZE = 24  # side of the input the host tests upscale: one CPU tile, a few seconds


def zoo_models(diffusion: Path, dest: Path) -> tuple[Path | None, str]:
    """A models folder at `dest`: the diffusion models of `diffusion` and the x4plus checkpoint,
    both as symlinks. Returns (folder, "") or (None, why not) when ../shared/models lacks it."""
    src = SHARED_MODELS / ZOO_FILE
    if not src.is_file():
        return None, f"{ZOO_FILE} not found in {SHARED_MODELS} (set SFUMATO_SHARED_MODELS)"
    dest.mkdir(parents=True, exist_ok=True)
    for entry in diffusion.iterdir():
        if (entry / "model.json").is_file() and not (dest / entry.name).exists():
            (dest / entry.name).symlink_to(entry.resolve())
    if not (dest / ZOO_FILE).exists():
        (dest / ZOO_FILE).symlink_to(src)
    return dest, ""


def gradient_energy(rgb: np.ndarray) -> float:
    g = rgb.astype(np.float64).mean(-1)
    return float(np.mean(np.abs(np.diff(g, axis=0))) + np.mean(np.abs(np.diff(g, axis=1))))


def judge(small_path: str | Path, big_path: str | Path, scale: int) -> dict:
    small = Image.open(small_path).convert("RGB")
    big = Image.open(big_path).convert("RGB")
    want = (small.width * scale, small.height * scale)
    out = {"small": list(small.size), "big": list(big.size), "scaled": big.size == want}
    if not out["scaled"]:
        out["ok"] = False
        return out
    bicubic = np.asarray(small.resize(want, Image.BICUBIC), np.float64)
    got = np.asarray(big, np.float64)
    out["mean_abs_diff_vs_bicubic"] = round(float(np.abs(got - bicubic).mean()), 2)
    out["edge_energy_ratio_vs_bicubic"] = round(gradient_energy(got) / max(gradient_energy(bicubic), 1e-9), 3)
    out["ok"] = out["mean_abs_diff_vs_bicubic"] > MIN_DIFF
    return out


if __name__ == "__main__":
    result = judge(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 4)
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)
