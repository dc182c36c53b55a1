"""Sort a defect mask into dust specks, hairs and scratches, and count them.

Why: `restore` reports what it found ("23 scratches, 140 dust specks"), and the detector
treats the classes differently (a hair is a curved thin mark, too short or too bent to pass
the straight-line test that scratches do). The classes come from each connected mark's
shape: its extent (the bounding-box diagonal) and its length along the mark (half its rim:
a thin mark has a rim on both sides). A speck is small every way; a scratch runs far and
nearly straight (extent close to length); a hair is a thin mark that curls (extent well
short of length) or stops short of a scratch's reach.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CLASSES = ("dust", "hairs", "scratches")
DUST, HAIR, SCRATCH = (CLASSES.index(c) + 1 for c in CLASSES)  # codes in the class map
DUST_EXTENT = 10.0  # px: marks no larger than this every way are specks (6 px plus the rim)
SCRATCH_EXTENT = 40.0  # px: a scratch runs at least this far
STRAIGHT = 0.7  # extent / length above which a long mark is straight enough for a scratch


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labels 1..n of a boolean mask (0 = background), by max-propagation.

    The engine needs no image library for this: labels spread to neighbours a few steps
    at a time until they settle, which takes as many steps as the longest mark is long."""
    h, w = mask.shape
    if not mask.any():
        return np.zeros((h, w), np.int64), 0
    m = torch.from_numpy(mask)
    lab = torch.where(m, torch.arange(1, h * w + 1, dtype=torch.float64).view(h, w), torch.zeros(h, w, dtype=torch.float64))
    lab = lab[None, None]
    fm = m[None, None]
    while True:
        prev = lab
        for _ in range(8):
            lab = torch.where(fm, F.max_pool2d(lab, 3, stride=1, padding=1), lab)
        if torch.equal(lab, prev):
            break
    out = lab[0, 0].numpy().astype(np.int64)
    uniq, inv = np.unique(out, return_inverse=True)
    relabel = inv.reshape(h, w)
    if uniq[0] != 0:
        relabel = relabel + 1
    return relabel, int(len(uniq) - (1 if uniq[0] == 0 else 0))


def component_kinds(mask: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """(n + 1,) class of each connected mark 1..n: index in CLASSES + 1 (0 for index 0)."""
    kind = np.zeros(n + 1, np.uint8)
    if n == 0:
        return kind
    extent = extents(labels, n)
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    rim = np.bincount(labels[mask & ~inner], minlength=n + 1)
    length = np.maximum(rim / 2.0, 1.0)
    for k in range(1, n + 1):
        if extent[k] <= DUST_EXTENT:
            kind[k] = DUST
        elif extent[k] >= SCRATCH_EXTENT and extent[k] >= STRAIGHT * length[k]:
            kind[k] = SCRATCH
        else:
            kind[k] = HAIR
    return kind


def classify(mask: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """(class map with 0 = none and 1.. = index in CLASSES + 1, counts per class)."""
    labels, n = label_components(mask)
    kind = component_kinds(mask, labels, n)
    counts = {c: int((kind[1:] == i + 1).sum()) for i, c in enumerate(CLASSES)}
    cls = kind[labels]
    cls[labels == 0] = 0
    return cls, counts


def extents(labels: np.ndarray, n: int) -> np.ndarray:
    """(n + 1,) bounding-box diagonal of each label 1..n (index 0 unused)."""
    idx = labels.ravel()
    ys, xs = np.divmod(np.arange(idx.size), labels.shape[1])
    sel = idx > 0
    big = np.iinfo(np.int64).max
    y0, x0 = np.full(n + 1, big), np.full(n + 1, big)
    y1, x1 = np.full(n + 1, -1), np.full(n + 1, -1)
    np.minimum.at(y0, idx[sel], ys[sel])
    np.minimum.at(x0, idx[sel], xs[sel])
    np.maximum.at(y1, idx[sel], ys[sel])
    np.maximum.at(x1, idx[sel], xs[sel])
    return np.hypot(y1 - y0 + 1.0, x1 - x0 + 1.0)
