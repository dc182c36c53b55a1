"""The old-print defect detector and repair: hairs found, stripes and coloured highlights left
alone, and monochrome or sepia photos repaired without false colour. Marks are drawn here."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from degrade import add_scratches, clean_scene
from engine.client import Client
from engine.tasks.defect_classes import classify
from engine.tasks.defects import detect_defects


def curly_hair(img: np.ndarray, seed: int, level: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A 1-2 px curled dark strand about 70 px long; (damaged, truth)."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    p, a, turn, pts = np.array([w * 0.3, h * 0.5]), rng.uniform(0, 6.28), 0.0, []
    for _ in range(24):
        turn = 0.8 * turn + rng.normal(0, 0.3)
        a += turn
        p = p + 3 * np.array([np.cos(a), np.sin(a)])
        pts.append(tuple(p))
    lab = Image.new("L", (w, h))
    ImageDraw.Draw(lab).line(pts, fill=255, width=int(rng.integers(1, 3)))
    truth = np.asarray(lab) > 0
    out = img.copy()
    out[truth] = level
    return out, truth


def tone(img: np.ndarray, sepia: bool) -> np.ndarray:
    y = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    rgb = y[..., None] * (np.array([1.12, 0.98, 0.78], np.float32) if sepia else 1.0) * np.ones(3, np.float32)
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def test_curled_hairs_are_found_and_counted():
    for seed in range(3):
        damaged, truth = curly_hair(clean_scene(128, 160, seed), seed)
        found = detect_defects(damaged)
        assert (found & truth).sum() > 0.7 * truth.sum(), seed
        counts = classify(found)[1]  # one mark: a hair, or a scratch where it hardly curls
        assert counts["hairs"] + counts["scratches"] == 1 and counts["dust"] == 0, (seed, counts)


def test_stripes_are_texture_not_scratches():
    img = clean_scene(128, 160, 4)
    stripes = img.copy()
    for x0 in range(20, 140, 7):  # a kimono-like run of parallel 2 px dark stripes
        stripes[10:118, x0:x0 + 2] = 30
    assert detect_defects(stripes)[10:118, 18:142].mean() < 0.01
    one = img.copy()
    one[10:118, 80:82] = 30  # the same stripe alone is a scratch
    assert detect_defects(one)[10:118, 80:82].mean() > 0.8


def text_page(size: int) -> np.ndarray:
    """Lines of dark printed words at `size` px on light paper with a blank right margin,
    (160, 540, 3) u8."""
    page = Image.new("L", (540, 160), 225)
    font = ImageFont.load_default(size=size)
    for y in range(8, 150 - size, int(size * 1.5)):
        ImageDraw.Draw(page).text((8, y), "The quick brown fox jumps over the lazy dog 1927", fill=30, font=font)
    return np.stack([np.asarray(page)] * 3, -1)


@pytest.mark.parametrize("size", [12, 20, 32])
def test_printed_text_is_not_taken_for_marks(size):
    assert detect_defects(text_page(size)).mean() < 0.01


@pytest.mark.parametrize("size", [12, 20])
def test_a_scratch_beside_text_is_found(size):
    line = Image.new("L", (540, 160))
    ImageDraw.Draw(line).line([(505, 10), (515, 150)], fill=255, width=2)
    truth = np.asarray(line) > 0
    page = text_page(size)
    page[truth] = 90
    assert detect_defects(page)[truth].mean() > 0.8


def test_coloured_highlights_are_not_dust():
    rng = np.random.default_rng(0)
    img = np.full((96, 128, 3), (40, 90, 40), np.uint8)  # dark foliage
    grey = img.copy()
    for y, x in rng.integers(8, 88, (12, 2)):
        img[y:y + 3, x:x + 3] = (230, 220, 60)  # sunlit yellow leaves
        grey[y:y + 3, x:x + 3] = 235  # dust
    assert detect_defects(img).sum() == 0
    assert detect_defects(grey).sum() >= 12 * 9


def test_a_line_in_texture_as_strong_as_itself_is_texture():
    rng = np.random.default_rng(1)
    flat = np.full((96, 128, 3), 120, np.uint8)
    busy = np.clip(120 + rng.normal(0, 45, (96, 128, 1)), 0, 255).repeat(3, -1).astype(np.uint8)
    for img in (flat, busy):
        img[10:86, 60] = 190  # a 1 px bright line, 70 grey levels above its surround
    assert detect_defects(flat)[10:86, 60].mean() > 0.8  # a scratch on a flat print
    assert detect_defects(busy)[10:86, 60].mean() < 0.2  # no outlier in grain this coarse


def test_a_faded_coloured_line_is_no_grey_mark():
    img = np.full((96, 128, 3), (160, 60, 60), np.uint8)  # a red wall
    tinted, grey = img.copy(), img.copy()
    tinted[10:86, 60] = (240, 150, 150)  # a pink highlight keeps the wall's hue
    grey[10:86, 60] = 200  # a scratch shows the grey paper
    assert detect_defects(tinted).sum() == 0
    assert detect_defects(grey)[10:86, 60].mean() > 0.8


@pytest.mark.parametrize("sepia", [False, True])
def test_repair_adds_no_colour_to_mono_and_sepia(tiny_models_dir, sepia):
    clean = tone(clean_scene(96, 128, 5), sepia)
    damaged, truth = add_scratches(clean, seed=5, lines=4, dust=8)
    damaged = tone(damaged, sepia)  # the marks are grey on the print too
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as client:
        out = client.run("restore", {"image": damaged}, {"task": "repair", "seed": 0}).image
    f = out.astype(np.float32)
    if not sepia:
        assert np.abs(f - f.mean(-1, keepdims=True)).max() <= 1.0
    else:
        ratio = (f[..., 0] + 1) / (f[..., 2] + 1)
        ref = (clean[..., 0].astype(np.float32) + 1) / (clean[..., 2] + 1)
        assert np.abs(ratio - ref)[truth].mean() < 0.08
