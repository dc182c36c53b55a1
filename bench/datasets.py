"""Evaluation sets from a data root laid out like ../shared/data/eval.

Any folder with the same layout works (PNG files; names only have to match between an
HR folder and its LR folders):

    ROOT/CBSD68/*.png                       colour denoising, inpainting, JPEG
    ROOT/McMaster/*.png                     colour denoising
    ROOT/Set5/*.png, ROOT/BSD100/*.png      super-resolution HR images
    ROOT/sr_lr_bicubic/<set>/X<s>/*.png     MATLAB-bicubic LR inputs, named like the HR files

Images are loaded as (h, w, 3) uint8 RGB (alpha dropped, grey expanded).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "eval"
SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


class DataError(Exception):
    """The data root lacks something a task needs; the message says what and where."""


@dataclass(frozen=True)
class Item:
    """One evaluation image: HR/clean path and, for SR, its LR input."""

    set: str
    name: str
    path: Path
    lr_path: Path | None = None

    def load(self) -> np.ndarray:
        return load_rgb(self.path)

    def load_lr(self) -> np.ndarray:
        if self.lr_path is None:
            raise DataError(f"{self.set}/{self.name} has no LR file")
        return load_rgb(self.lr_path)


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


class DataRoot:
    """A folder of evaluation sets (see the module docstring for the layout)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else DEFAULT_ROOT

    def exists(self) -> bool:
        return self.root.is_dir()

    def has(self, name: str) -> bool:
        return (self.root / name).is_dir()

    def images(self, name: str, limit: int | None = None) -> list[Item]:
        """The images of a set, sorted by file name; the first `limit` when given."""
        folder = self.root / name
        if not folder.is_dir():
            raise DataError(f"set {name!r} not found: expected PNG files in {folder}")
        files = _images(folder)
        if not files:
            raise DataError(f"set {name!r} at {folder} has no images")
        return [Item(name, p.stem, p) for p in files[:limit]]

    def sr_pairs(self, name: str, scale: int, limit: int | None = None) -> list[Item]:
        """HR images of `name` with their LR inputs in sr_lr_bicubic/<name>/X<scale>/."""
        lr_dir = self.root / "sr_lr_bicubic" / name / f"X{scale}"
        if not lr_dir.is_dir():
            raise DataError(f"LR inputs for {name} x{scale} not found: expected {lr_dir}")
        lr_by_stem = {p.stem: p for p in _images(lr_dir)}
        items = []
        for item in self.images(name):
            lr = lr_by_stem.get(item.name)
            if lr is None:
                raise DataError(f"no LR file for {name}/{item.path.name} in {lr_dir}")
            items.append(Item(name, item.name, item.path, lr))
        return items[:limit]


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of scale (the SR protocol)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
