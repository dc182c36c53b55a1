"""The blind estimators behind task=auto: noise sigma and JPEG quality, within 20% of the truth."""
from __future__ import annotations

import numpy as np
import pytest

from degrade import add_noise, clean_scene, jpeg
from engine.tasks.estimate import ijg_table, jpeg_quality, noise_sigma


@pytest.mark.parametrize("sigma, seed", [(5, 0), (15, 1), (30, 2), (50, 3)])
def test_noise_sigma_within_20_percent(sigma, seed):
    img = clean_scene(128, 160, seed)
    unclipped = noise_sigma(add_noise(img, sigma, seed, clip=False))
    stored = noise_sigma(add_noise(img, sigma, seed))  # rounded and clipped to 8 bits, as saved
    assert abs(unclipped - sigma) <= 0.2 * sigma
    assert abs(stored - sigma) <= 0.2 * sigma


def test_noise_sigma_of_a_clean_image_is_small():
    assert noise_sigma(clean_scene(128, 128, 3)) < 1.5


@pytest.mark.parametrize("quality", [10, 20, 30, 50, 70, 90])
def test_jpeg_quality_within_20_percent(quality):
    for seed in (0, 1):
        est = jpeg_quality(jpeg(clean_scene(128, 160, seed), quality))
        assert est.quality is not None and abs(est.quality - quality) <= 0.2 * quality, (seed, est)
        assert est.offset == (0, 0)


def test_jpeg_grid_found_in_a_crop():
    """A selection crop starts anywhere: the block grid origin is measured, not assumed."""
    dec = jpeg(clean_scene(160, 192, 2), 40)
    est = jpeg_quality(dec[5:, 3:])
    assert est.offset == (3, 5) and abs(est.quality - 40) <= 8


def test_uncompressed_or_noisy_images_are_not_jpeg():
    img = clean_scene(128, 128, 4)
    assert jpeg_quality(img).quality is None
    assert jpeg_quality(add_noise(jpeg(img, 30), 4)).quality is None  # noise after saving hides the grid


def test_ijg_tables_match_pil():
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.fromarray(clean_scene(32, 32)).save(buf, "JPEG", quality=37)
    table = np.array(Image.open(buf).quantization[0]).reshape(8, 8)
    assert np.array_equal(table, ijg_table(37))


def test_real_photos_if_available():
    data = pytest.importorskip("skimage.data", reason="scikit-image not installed (bench extra)")
    for img in (data.astronaut()[::3, ::3], data.coffee()[::2, ::2]):
        img = np.ascontiguousarray(img)
        for sigma in (10, 30):
            assert abs(noise_sigma(add_noise(img, sigma)) - sigma) <= 0.2 * sigma
        for q in (15, 60):
            assert abs(jpeg_quality(jpeg(img, q)).quality - q) <= 0.2 * q
