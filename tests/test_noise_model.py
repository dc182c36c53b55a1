"""Real-world noise: the clipped / Poisson-Gaussian model's unbiased inverse, the noise-level
function fit, and `restore` denoising through them (tiny model, loopback engine)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from degrade import add_noise, clean_scene
from engine.client import Client
from engine.tasks.estimate import noise_levels
from engine.tasks.noise_model import DENOISER_RANGE, NoiseModel, in_range, mirrored_mean, squeeze, stabilise, unsqueeze, unstabilise

MODELS = [NoiseModel(25.0, 0.0, True), NoiseModel(5.1, 2.55, True), NoiseModel(5.1, 2.55, False)]


def _draw(model: NoiseModel, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    z = (model.gain * rng.poisson(y / model.gain) if model.gain else y) + rng.normal(0.0, model.sigma, y.shape)
    return np.clip(z, 0.0, 255.0) if model.clipped else z


@pytest.mark.parametrize("model", MODELS, ids=["clipped-gauss", "clipped-pg", "pg"])
def test_inverse_of_the_mean_returns_the_clean_level(model):
    """A perfect denoiser of a flat area returns the mean of the stabilised noisy values; the
    inverse must map it to the clean level, also where clipping moved the mean (black, white)."""
    rng = np.random.default_rng(0)
    for y in (0.0, 3.0, 20.0, 128.0, 240.0, 255.0):
        z = _draw(model, np.full(40000, y), rng)
        g, s = stabilise(torch.from_numpy(z), model)
        back = unstabilise(g.mean().reshape(1), model).item()
        assert abs(back - y) < 0.5, (y, back)
        naive = float(np.clip(z.mean(), 0, 255))
        if model.clipped and y in (0.0, 255.0):
            assert abs(naive - y) > 0.3 * model.sigma  # the correction is needed there
        if model.gain and 20 <= y <= 240 and not model.clipped:
            assert abs((g / s).std().item() - 1.0) < 0.06  # the GAT stabilises the variance


@pytest.mark.parametrize("model", MODELS[:2], ids=["clipped-gauss", "clipped-pg"])
def test_denoiser_sees_black_and_white_away_from_the_ends(model):
    """Clipped black and white land inside the range by the margin, with the sigma scaled alike,
    and squeeze is undone exactly."""
    g, s = stabilise(torch.tensor([0.0, 128.0, 255.0], dtype=torch.float64), model)
    q, qs = squeeze(g, s)
    margin = (1.0 - DENOISER_RANGE) / 2.0 * 255.0
    assert abs(q[0].item() - margin) < 1e-9 and abs(q[2].item() - (255.0 - margin)) < 1e-6
    assert abs(qs - DENOISER_RANGE * s) < 1e-12
    assert torch.allclose(unsqueeze(q), g)


def test_mirrored_mean_maps_each_output_back():
    """A denoiser that returns its column index: each mirrored call is mirrored back, so the
    transpose contributes the row index and the flip the reversed column index."""
    x = torch.zeros(1, 3, 4, 6)
    cols = lambda t, s: torch.arange(t.shape[-1], dtype=t.dtype).expand_as(t)  # noqa: E731
    r, c = torch.meshgrid(torch.arange(4.0), torch.arange(6.0), indexing="ij")
    assert torch.equal(mirrored_mean(cols, x, torch.tensor(0.1), 1)[0, 0], c)
    assert torch.allclose(mirrored_mean(cols, x, torch.tensor(0.1), 2)[0, 1], (c + r) / 2)
    assert torch.allclose(mirrored_mean(cols, x, torch.tensor(0.1), 3)[0, 2], (c + r + 5 - c) / 3)


def test_plain_gaussian_is_untouched():
    m = NoiseModel(25.0, 0.0, False)
    assert m.plain
    d = torch.linspace(-30, 290, 50, dtype=torch.float64)
    assert torch.equal(unstabilise(d, m), d)
    assert in_range(np.array([0.0, 1.0])) and not in_range(np.array([-0.01, 0.5]))


def _pg(img: np.ndarray, gain: float, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = gain * rng.poisson(img / gain) + rng.normal(0.0, sigma, img.shape)
    return np.clip(np.round(z), 0, 255).astype(np.uint8)


def _ramp(h: int = 128, w: int = 192) -> np.ndarray:
    """A scene that spans the levels (the fit needs dark and bright areas)."""
    img = clean_scene(h, w, 4).astype(np.float64)
    ramp = np.linspace(0.1, 1.0, w)[None, :, None]
    return np.clip(img * ramp * 1.4, 0, 255).astype(np.uint8)


def test_noise_level_function_tells_signal_dependent_noise():
    img = _ramp()
    pg = noise_levels(_pg(img, 2.55, 5.1, 0))
    assert 1.8 < pg.gain < 3.3, pg
    gauss = noise_levels(add_noise(img, 20, 1))
    assert gauss.gain * 200 + gauss.sigma ** 2 < 1.5 * (gauss.gain * 30 + gauss.sigma ** 2), gauss
    assert abs(gauss.sigma - 20) < 4


@pytest.fixture(scope="module")
def client(tiny_models_dir):
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as c:
        yield c


def test_restore_measures_and_reports_signal_dependent_noise(client):
    noisy = _pg(_ramp(), 2.55, 5.1, 2)
    res = client.run("restore", {"image": noisy}, {"task": "auto"})
    noise = res.meta["found"]["noise"]
    assert noise["signal_dependent"] and 1.8 < noise["gain"] < 3.3, noise
    assert res.meta["applied"][0]["task"] == "denoise" and res.meta["applied"][0]["gain"] == noise["gain"]
    given = client.run("restore", {"image": noisy}, {"task": "denoise", "sigma": 5.1, "gain": 2.55})
    assert given.meta["sigma"] == 5.1 and given.meta["gain"] == 2.55
    plain = client.run("restore", {"image": add_noise(_ramp(), 20, 3)}, {"task": "auto"})
    assert "signal_dependent" not in plain.meta["found"]["noise"] and "gain" not in plain.meta["applied"][0]

