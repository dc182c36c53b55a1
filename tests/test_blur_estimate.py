"""Blind blur estimate over the deblur bar's range: Gaussian sigma 1-3 (the small end was read
far too low from lines and texture), motion 5-15 px at oblique angles (the trough of a short
motion was lost in the image's own), sharp stripes that must not pass for motion, and noise."""
from __future__ import annotations

import numpy as np
import pytest

from degrade import add_noise
from engine.diffusion.operators import gaussian_kernel, motion_kernel
from engine.tasks.blur_estimate import estimate_blur
from test_oldphoto_auto import blurred, sharp_scene

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # FFTs this small crawl on a busy CPU with more


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return sharp_scene(192, 192, seed=11)


def _angle_error(a: float, b: float) -> float:
    return abs((a - b + 90.0) % 180.0 - 90.0)


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_gaussian_sigma_at_both_ends(scene, sigma):
    est = estimate_blur(blurred(scene, gaussian_kernel(sigma)))
    assert est.kind == "gaussian" and abs(est.sigma - sigma) < 0.15 * sigma, est


@pytest.mark.parametrize("length,angle", [(5.0, 20.0), (15.0, 140.0), (9.0, -35.0)])
def test_motion_length_and_angle(scene, length, angle):
    est = estimate_blur(blurred(scene, motion_kernel(length, angle)))
    assert est.kind == "motion" and abs(est.length - length) <= 1.0, est
    assert _angle_error(est.angle, angle) <= 6.0, est


def test_sharp_stripes_are_not_motion(scene):
    """Stripes 8 px apart put a far trough across them; their edges are sharp, so no motion."""
    img = scene.astype(np.float32)
    xs = np.arange(img.shape[1])[None, :, None]
    img[40:150] = np.where((xs // 4) % 2 == 0, img[40:150] * 0.5, img[40:150])
    est = estimate_blur(img.round().astype(np.uint8))
    assert est.kind == "none", est


def test_noisy_motion_is_read_when_the_noise_is_known(scene):
    """Sigma 4 on this mostly flat scene hides the motion unless the estimate smooths it away."""
    img = add_noise(blurred(scene, motion_kernel(9.0, 60.0)), 4.0, seed=3)
    est = estimate_blur(img, noise=4.0)
    assert est.kind == "motion" and abs(est.length - 9.0) <= 1.5 and _angle_error(est.angle, 60.0) <= 8.0, est
