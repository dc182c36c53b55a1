"""Pixel plumbing: bit depths, selection to work area, feathering, seam matching, compositing."""
from __future__ import annotations

import numpy as np
import pytest

from engine import images

DTYPES = [np.uint8, np.uint16, np.float32]


def random_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [3, 4])
def test_depth_round_trip_is_exact(dtype, channels):
    img = random_image((17, 23, channels), dtype)
    back = images.from_float(images.to_float(img), dtype)
    assert back.dtype == img.dtype and np.array_equal(back, img)


def test_masks_of_any_depth_become_unit_floats():
    assert images.mask_to_float(np.full((2, 3, 1), 255, np.uint8)).tolist() == [[1.0] * 3] * 2
    assert images.mask_to_float(np.full((2, 3), 65535, np.uint16)).max() == 1.0
    assert images.mask_to_float(np.zeros((2, 3, 1), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [3, 4])
def test_composite_keeps_pixels_outside_the_feathered_mask_bit_for_bit(dtype, channels):
    img = random_image((64, 80, channels), dtype)
    mask = np.zeros((64, 80, 1), np.uint8)
    mask[20:40, 30:55] = 255
    mask[45:47, 5:70] = 128  # a soft scratch
    generated = np.random.default_rng(1).random((64, 80, 3), dtype=np.float32)
    out = images.composite(img, generated, mask)
    assert out.dtype == img.dtype and out.shape == img.shape
    outside = images.feather_mask(mask, images.auto_feather(mask)) == 0
    assert outside.sum() > 0.6 * outside.size
    assert np.array_equal(out[outside], img[outside])
    if channels == 4:  # a 3-channel result keeps the layer's alpha everywhere
        assert np.array_equal(out[..., 3], img[..., 3])
    assert not np.array_equal(out[25:35, 35:50], img[25:35, 35:50])


def test_hard_composite_is_exactly_the_mask():
    img = random_image((32, 32, 4), np.uint16)
    mask = np.zeros((32, 32), np.float32)
    mask[8:20, 10:30] = 1.0
    gen = random_image((32, 32, 4), np.uint16, seed=3)
    out = images.composite(img, gen, mask, feather=0, match_colors=False)
    inside = mask > 0
    assert np.array_equal(out[~inside], img[~inside])
    assert np.array_equal(out[inside], gen[inside])  # alpha too: a 4-channel result brings its own


def test_feather_grows_outwards_only_and_has_compact_support():
    mask = np.zeros((40, 40), np.float32)
    mask[15:25, 15:25] = 1
    f = images.feather_mask(mask, 4)
    assert np.all(f[15:25, 15:25] == 1)
    assert 0 < f[20, 12] < 1 and f[20, 10] == 0 and f[20, 5] == 0
    assert np.all(np.diff(f[20, 8:16]) >= 0)


def test_seam_correction_removes_a_low_frequency_offset():
    yy, xx = np.mgrid[:96, :96] / 96.0
    orig = np.stack([yy, xx, 0.5 + 0 * xx], -1).astype(np.float32) * 0.8
    mask = np.zeros((96, 96), np.float32)
    mask[30:70, 30:70] = 1
    gen = orig + np.array([0.1, -0.08, 0.05], np.float32)  # right content, wrong colour cast
    fixed = gen + images.seam_correction(orig, gen, mask)
    hole = mask > 0
    assert np.abs(fixed[hole] - orig[hole]).mean() < 0.2 * np.abs(gen[hole] - orig[hole]).mean()


def test_work_area_has_context_and_the_network_stride():
    mask = np.zeros((300, 500), np.float32)
    mask[100:140, 200:230] = 1
    box = images.work_area(mask, stride=8)
    assert box.h % 8 == 0 and box.w % 8 == 0
    assert box.y0 <= 100 - 17 and box.y1 >= 140 + 17 and box.x0 <= 200 - 17 and box.x1 >= 230 + 17
    assert box.y0 >= 0 and box.x0 >= 0 and box.y1 <= 300 and box.x1 <= 500
    big = np.zeros((300, 500), np.float32)
    big[50:250, 100:400] = 1
    assert images.work_area(big, stride=8).h == 296 or images.work_area(big, stride=8).h == 300  # clamped to the image
    assert images.work_area(mask, context=0, stride=8).h == 40
    assert images.work_area(np.zeros((10, 10)), stride=8) is None


def test_work_size_caps_the_longest_side():
    assert images.work_size(200, 120, 256, 8) == (200, 120)
    h, w = images.work_size(600, 1000, 256, 8)
    assert w == 256 and h % 8 == 0 and abs(h - 154) <= 8
    assert images.work_cap("cpu") < images.work_cap("cuda")


def test_preview_is_small_u8_rgb():
    p = images.preview(random_image((300, 700, 4), np.uint16))
    assert p.dtype == np.uint8 and p.shape[2] == 3 and max(p.shape[:2]) <= 128
