"""`auto`'s evidence for a repair: marks that stand clearly out of their surroundings count,
texture ridges and noise specks the detector also flags do not."""
from __future__ import annotations

import numpy as np

from degrade import add_noise, clean_scene
from engine.tasks.defect_evidence import AUTO_MIN_CLEAR_MARKS, clear_marks, min_clear_marks


def specks(img: np.ndarray, n: int, level: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` 3x3 specks of grey `level` at random places; (image, mask of the specks)."""
    rng = np.random.default_rng(seed)
    out, mask = img.copy(), np.zeros(img.shape[:2], bool)
    for y, x in rng.integers(8, img.shape[0] - 8, (n, 2)):
        out[y - 1:y + 2, x - 1:x + 2] = level
        mask[y - 1:y + 2, x - 1:x + 2] = True
    return out, mask


def test_bright_specks_on_a_smooth_photo_are_clear():
    img, mask = specks(clean_scene(96, 96, 1), AUTO_MIN_CLEAR_MARKS + 2, 250)
    assert clear_marks(img, mask) >= AUTO_MIN_CLEAR_MARKS


def test_faint_marks_and_noise_specks_are_not():
    base = clean_scene(96, 96, 1)
    faint, mask = specks(base, 10, 0, seed=1)
    faint = (0.85 * base + 0.15 * faint).round().astype(np.uint8)  # a 15 % shade: a smudge of texture
    assert clear_marks(faint, mask) == 0
    noisy = add_noise(base, 25, seed=2)  # the same places, now only noise
    assert clear_marks(noisy, mask) == 0
    assert clear_marks(base, np.zeros(base.shape[:2], bool)) == 0


def test_larger_pictures_need_more_clear_marks_but_not_in_proportion():
    assert min_clear_marks(96, 96) == min_clear_marks(256, 256) == AUTO_MIN_CLEAR_MARKS
    four = min_clear_marks(512, 512)  # four times the area
    assert AUTO_MIN_CLEAR_MARKS < four < 4 * AUTO_MIN_CLEAR_MARKS
