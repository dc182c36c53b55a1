"""Labelled panels and grids for the documentation figures (shared by the make_*.py scripts)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def label(panel: np.ndarray, text: str) -> np.ndarray:
    """White text on a black tab in the panel's top-left corner."""
    im = Image.fromarray(np.ascontiguousarray(panel[..., :3]))
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(0, 0, 0))
    draw.text((4, 1), text, fill=(255, 255, 255))
    return np.asarray(im)


def grid(rows: list[list[np.ndarray | None]], gap: int = 4) -> np.ndarray:
    """Panels on a white page, each column as wide and each row as tall as its largest panel;
    None leaves a cell empty."""
    heights = [max((p.shape[0] for p in row if p is not None), default=0) for row in rows]
    n_cols = max(len(row) for row in rows)
    widths = [max((row[j].shape[1] for row in rows if j < len(row) and row[j] is not None), default=0)
              for j in range(n_cols)]
    out = np.full((sum(heights) + gap * (len(rows) - 1), sum(widths) + gap * (n_cols - 1), 3), 255, np.uint8)
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for j, p in enumerate(row):
            if p is not None:
                out[y:y + p.shape[0], x:x + p.shape[1]] = p[..., :3]
            x += widths[j] + gap
        y += h + gap
    return out


ROOT = Path(__file__).resolve().parents[2]


def figure_options(doc: str) -> argparse.ArgumentParser:
    """The options every engine-backed figure script takes: the models folder and the output folder."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    return ap
