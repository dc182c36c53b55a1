"""Scratch and dust detection for `restore task=repair`: precision and recall above 0.8 on
synthetic marks drawn on clean images, and the repair raises PSNR."""
from __future__ import annotations

import numpy as np
import pytest

from degrade import add_scratches, clean_scene, precision_recall, psnr
from engine.client import Client
from engine.tasks.defects import DefectParams, detect_defects


def test_finds_synthetic_scratches_and_dust():
    found_all, truth_all = [], []
    for seed in range(4):
        damaged, truth = add_scratches(clean_scene(96, 128, seed), seed=seed, lines=4, dust=6)
        found = detect_defects(damaged)
        p, r = precision_recall(found, truth)
        assert p > 0.8 and r > 0.8, (seed, p, r)
        found_all.append(found)
        truth_all.append(truth)
    p, r = precision_recall(np.concatenate(found_all), np.concatenate(truth_all))
    assert p > 0.9 and r > 0.9


def test_clean_images_have_no_defects():
    for seed in range(3):
        assert detect_defects(clean_scene(96, 128, seed)).mean() < 0.002


def test_lines_one_to_three_pixels_at_any_angle():
    from PIL import Image, ImageDraw

    for angle in np.linspace(0, np.pi, 12, endpoint=False) + np.radians(5):
        for width in (1, 2, 3):
            label = Image.new("L", (96, 96))
            c, d = 48, 38
            ImageDraw.Draw(label).line([(c - d * np.cos(angle), c - d * np.sin(angle)),
                                        (c + d * np.cos(angle), c + d * np.sin(angle))], fill=1, width=width)
            truth = np.asarray(label) > 0
            img = np.full((96, 96, 3), 110, np.uint8)
            img[truth] = 230
            p, r = precision_recall(detect_defects(img, DefectParams(dilate=0)), truth)
            assert p > 0.95 and r > 0.9, (angle, width, p, r)


def test_region_limits_detection():
    damaged, truth = add_scratches(clean_scene(96, 128, 1), seed=1)
    region = np.zeros(truth.shape, bool)
    region[:, :64] = True
    found = detect_defects(damaged, region=region)
    assert found.any() and not found[:, 64:].any()


def test_sensitivity_is_monotonic():
    damaged, _ = add_scratches(clean_scene(96, 128, 2), seed=2)
    counts = [detect_defects(damaged, DefectParams(sensitivity=s)).sum() for s in (0.1, 0.5, 0.9)]
    assert counts[0] <= counts[1] <= counts[2]


def test_repair_raises_psnr_through_the_engine(tiny_models_dir):
    clean = clean_scene(96, 128, 6)
    damaged, truth = add_scratches(clean, seed=6, lines=4, dust=6)
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as client:
        res = client.run("restore", {"image": damaged}, {"task": "repair", "seed": 0})
    assert res.meta["defect_pixels"] >= truth.sum()
    assert psnr(res.image, clean) > psnr(damaged, clean) + 5


def test_real_photo_if_available():
    data = pytest.importorskip("skimage.data", reason="scikit-image not installed (bench extra)")
    clean = np.ascontiguousarray(data.chelsea()[::2, ::2])
    damaged, truth = add_scratches(clean, seed=0)
    p, r = precision_recall(detect_defects(damaged), truth)
    assert p > 0.8 and r > 0.8
