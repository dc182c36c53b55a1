"""A style model's exemplar bank: the painter's strokes and palette, stored beside the weights.

A few minutes of fine-tuning move the denoiser's prior only a little; what makes stylize look
like the painter is copying the painter's own strokes (exemplar synthesis, tasks/stylize_patch).
So `sfumato train --from MODEL` on paintings also stores a mosaic of the most detailed tiles of
the training paintings (round-robin over the paintings, so every one is represented), and
`stylize --style-model NAME` without a reference repaints with that mosaic. Each painting is
scaled so that a tile is a third of its shorter side, and the mosaic is three tiles wide: once
stylize scales the mosaic to the picture's size, the strokes have about the size they would
have with a single whole painting as the reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

BANK_FILE = "exemplars.png"
TILE = 256  # pixels per mosaic tile
GRID = 3  # the mosaic is GRID x GRID tiles


def _detail(tile: np.ndarray) -> float:
    """Mean gradient magnitude of the tile's luminance: how much brushwork it holds."""
    lum = tile.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gy, gx = np.gradient(lum)
    return float(np.hypot(gx, gy).mean())


def _tiles(img: np.ndarray) -> list[np.ndarray]:
    """The painting's tiles (painting scaled so that its shorter side is GRID tiles), most detailed first."""
    im = Image.fromarray(img)
    s = GRID * TILE / min(im.size)
    im = im.resize((max(TILE, round(im.size[0] * s)), max(TILE, round(im.size[1] * s))), Image.Resampling.LANCZOS)
    a = np.asarray(im.convert("RGB"))
    tiles = [a[y:y + TILE, x:x + TILE] for y in range(0, a.shape[0] - TILE + 1, TILE)
             for x in range(0, a.shape[1] - TILE + 1, TILE)]
    return sorted(tiles, key=_detail, reverse=True)


def build(paintings: list[np.ndarray]) -> np.ndarray:
    """The mosaic (GRID * TILE square, uint8 RGB) of paintings' (h, w, 3) uint8 tiles, round-robin."""
    if not paintings:
        raise ValueError("an exemplar bank needs at least one painting")
    per = [_tiles(p) for p in paintings]
    picks: list[np.ndarray] = []
    rank = 0
    while len(picks) < GRID * GRID:
        for tiles in per:
            if len(picks) < GRID * GRID:
                picks.append(tiles[rank % len(tiles)])
        rank += 1
    rows = [np.concatenate(picks[r * GRID:(r + 1) * GRID], 1) for r in range(GRID)]
    return np.concatenate(rows, 0)


def write(paintings: list[np.ndarray], folder: str | Path) -> Path:
    """Build the bank and save it in the model folder; returns its path."""
    path = Path(folder) / BANK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(build(paintings)).save(path, optimize=True)
    return path


def load(folder: str | Path) -> np.ndarray | None:
    """The model folder's bank as (h, w, 3) uint8, or None if it has none (a base model)."""
    path = Path(folder) / BANK_FILE
    if not path.is_file():
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()
