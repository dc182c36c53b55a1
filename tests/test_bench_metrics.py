"""Benchmark metrics and masks against cases with known answers."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from bench import masks, metrics


def _photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth image with some texture, deterministic, no data files needed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 60 * np.sin(x / 9.0), 128 + 60 * np.cos(y / 7.0), 100 + 0.5 * (x + y)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def test_psnr_known_mse() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert metrics.psnr(a, a) == float("inf")


def test_psnr_mask_counts_only_the_hole() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:4] = 20  # error only in the top half
    mask = np.zeros((8, 8), np.uint8)
    mask[4:] = 255
    assert metrics.psnr(a, b, mask) == float("inf")
    mask[:4] = 255
    mask[4:] = 0
    assert metrics.psnr(a, b, mask) == pytest.approx(10 * math.log10(255 ** 2 / 400))


def test_ssim_identity_and_reference_implementation() -> None:
    a = _photo()
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a + np.random.default_rng(1).normal(0, 15, a.shape), 0, 255).astype(np.uint8)
    s = metrics.ssim(a, b)
    assert 0 < s < 1
    skm = pytest.importorskip("skimage.metrics")
    ref = skm.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255)
    assert s == pytest.approx(ref, abs=1e-6)


def test_y_channel_bt601_range() -> None:
    black = np.zeros((1, 1, 3), np.uint8)
    white = np.full((1, 1, 3), 255, np.uint8)
    assert metrics.rgb_to_y(black)[0, 0] == pytest.approx(16.0)
    assert metrics.rgb_to_y(white)[0, 0] == pytest.approx(235.0)


def test_crop_border() -> None:
    assert metrics.crop_border(np.zeros((10, 12, 3)), 2).shape == (6, 8, 3)


def test_psnr_b_penalises_blocking() -> None:
    clean = _photo(128, 128)
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, "JPEG", quality=5)
    blocky = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    y = metrics.rgb_to_y(blocky)
    assert metrics.blocking_effect_factor(y) > 0
    assert metrics.psnr_b(blocky, clean) < metrics.psnr(metrics.rgb_to_y(blocky), metrics.rgb_to_y(clean))
    # a degradation without 8x8 structure has no blocking factor: PSNR-B equals Y-PSNR
    shifted = np.clip(clean.astype(int) + 3, 0, 255).astype(np.uint8)
    assert metrics.psnr_b(shifted, clean) == pytest.approx(
        metrics.psnr(metrics.rgb_to_y(shifted), metrics.rgb_to_y(clean)))


def test_swd_zero_for_identical_and_larger_for_blur() -> None:
    ref = _photo(128, 128)
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 32:96] = 255
    assert metrics.swd([ref], [ref], [mask])["avg"] == pytest.approx(0.0)
    blurred = np.asarray(Image.fromarray(ref).resize((32, 32), Image.Resampling.BILINEAR)
                         .resize((128, 128), Image.Resampling.BILINEAR))
    noisy = np.clip(ref + np.random.default_rng(2).normal(0, 2, ref.shape), 0, 255).astype(np.uint8)
    assert metrics.swd([blurred], [ref], [mask])["avg"] > metrics.swd([noisy], [ref], [mask])["avg"]


def test_masks_are_seeded_and_cover_what_they_say() -> None:
    for kind in masks.KINDS:
        m = masks.make_mask(kind, 321, 481, index=3, seed=0)
        assert m.shape == (321, 481) and m.dtype == np.uint8
        assert np.array_equal(m, masks.make_mask(kind, 321, 481, index=3, seed=0))
        assert not np.array_equal(m, masks.make_mask(kind, 321, 481, index=4, seed=0))
    assert (masks.make_mask("box64", 321, 481) > 0).sum() == 64 * 64
    assert (masks.make_mask("area25", 320, 480) > 0).mean() == pytest.approx(0.25)
    assert 0.07 < (masks.make_mask("strokes_s", 321, 481) > 0).mean() < 0.15
    assert 0.24 < (masks.make_mask("strokes_l", 321, 481) > 0).mean() < 0.35
    assert (masks.make_mask("scratches", 321, 481) > 0).mean() < 0.05
    with pytest.raises(ValueError):
        masks.make_mask("nope", 10, 10)


# --- large-hole fill measures ----------------------------------------------------------------
def _texture(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    """A stationary texture (smooth shading plus grain): any part is like any other."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([120 + 30 * np.sin(x / 11.0), 110 + 30 * np.cos(y / 13.0), np.full((h, w), 100.0)], -1)
    return np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8)


def _hole(h: int = 128, w: int = 160) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[40:88, 50:110] = 255
    return m


def _smear(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The hole replaced by a heavily blurred copy: what a diffusion-only fill of a big hole looks like."""
    h, w = img.shape[:2]
    blur = np.asarray(Image.fromarray(img).resize((w // 16, h // 16), Image.Resampling.BILINEAR)
                      .resize((w, h), Image.Resampling.BILINEAR))
    out = img.copy()
    out[mask > 127] = blur[mask > 127]
    return out


def _other_realisation(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The hole filled with the same texture from another seed: a perfect synthetic fill."""
    out = img.copy()
    out[mask > 127] = _texture(*img.shape[:2], seed=7)[mask > 127]
    return out


def test_texture_ratio_known_answers() -> None:
    ref, mask = _texture(), _hole()
    assert metrics.texture_ratio(ref, ref, mask) == pytest.approx(1.0)
    assert metrics.texture_ratio(_smear(ref, mask), ref, mask) < 0.3
    assert 0.8 < metrics.texture_ratio(_other_realisation(ref, mask), ref, mask) < 1.2
    noisy = ref.copy()
    noisy[mask > 127] = np.clip(ref[mask > 127] + np.random.default_rng(3).normal(0, 40, ref[mask > 127].shape), 0, 255)
    assert metrics.texture_ratio(noisy, ref, mask) > 1.5
    with pytest.raises(ValueError):
        metrics.texture_ratio(ref, ref, np.zeros_like(mask))


def test_ring_is_the_band_around_the_hole() -> None:
    hole = np.zeros((80, 80), bool)
    hole[40, 40] = True
    grown = metrics.dilate(hole, metrics.RING)
    assert grown[40, 40 - metrics.RING] and grown[40 + metrics.RING, 40]
    assert not grown[40, 40 - metrics.RING - 1] and not grown[40 - 24, 40 - 24]  # an octagon, not a square


def test_patch_distance_known_answers() -> None:
    ref, mask = _texture(), _hole()
    assert metrics.patch_distance(ref, ref, mask) == 0.0
    same_kind = metrics.patch_distance(_other_realisation(ref, mask), ref, mask)
    smear = metrics.patch_distance(_smear(ref, mask), ref, mask)
    assert smear > 3 * same_kind > 0
    assert metrics.patch_distance(_smear(ref, mask), ref, mask, seed=1) == pytest.approx(smear, rel=0.2)
    assert metrics.patch_distance(_smear(ref, mask), ref, mask, seed=1) == metrics.patch_distance(
        _smear(ref, mask), ref, mask, seed=1)  # seeded projections: the same figure every run


def test_seam_ratio_known_answers() -> None:
    ref = _texture()
    edge = 120
    assert 0.8 < metrics.seam_ratio(ref, edge) < 1.2  # a seamless picture
    seam = ref.copy()
    seam[:, edge:] = np.clip(seam[:, edge:].astype(int) + 60, 0, 255)
    assert metrics.seam_ratio(seam, edge) > 2.0
    flat = np.full((8, 40, 3), 100, np.uint8)
    assert math.isnan(metrics.seam_ratio(flat, 20))
    with pytest.raises(ValueError):
        metrics.seam_ratio(ref, 0)


def test_object_masks_are_seeded_overlapping_ellipses_of_4_to_10_percent() -> None:
    for h, w in ((321, 481), (481, 321), (192, 192)):
        for i in range(12):
            m = masks.make_mask("objects", h, w, i, seed=0)
            assert np.array_equal(m, masks.make_mask("objects", h, w, i, seed=0))
            assert 0.04 <= (m > 0).mean() <= 0.10
            ys, xs = np.nonzero(m)
            margin = min(h, w) // 8
            assert ys.min() >= margin and xs.min() >= margin and ys.max() < h - margin and xs.max() < w - margin
    assert not np.array_equal(masks.make_mask("objects", 321, 481, 0), masks.make_mask("objects", 321, 481, 1))
    assert (masks.object_mask(512, 512, cover=0.10) > 0).mean() == pytest.approx(0.10, abs=0.003)
    assert (masks.object_mask(2048, 2048, cover=0.05) > 0).mean() == pytest.approx(0.05, abs=0.003)
