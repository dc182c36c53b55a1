"""Samplers driven by the exact denoiser of Gaussian data, where every answer is known.

For data x0 ~ N(mu, Sigma) and x = x0 + sigma * n, the ideal denoiser is the posterior mean
    D(x; sigma) = mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu),
and the probability-flow ODE maps x(sigma_max) to
    x(0) = mu + Sigma^1/2 (Sigma + sigma_max^2 I)^-1/2 (x(sigma_max) - mu)
(in Sigma's eigenbasis each coordinate is scaled by sqrt(lambda / (lambda + sigma^2))).
"""
from __future__ import annotations

import pytest
import torch

from engine.diffusion.operators import Identity
from engine.diffusion.sampling import LOOPS, SAMPLERS, sample_euler, sample_heun
from engine.diffusion.schedule import EDM, karras_sigmas

MU = torch.tensor([0.3, -0.5, 0.1], dtype=torch.float64)
_A = torch.tensor([[0.6, 0.0, 0.0], [0.3, 0.4, 0.0], [-0.2, 0.1, 0.25]], dtype=torch.float64)
SIGMA = _A @ _A.T  # a correlated covariance with eigenvalues spread over a decade
EVALS, EVECS = torch.linalg.eigh(SIGMA)


class GaussianDenoiser:
    """The exact denoiser of N(MU, SIGMA); counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        s2 = float(sigma) ** 2
        gain = EVECS @ torch.diag(EVALS / (EVALS + s2)) @ EVECS.T
        return MU + (x - MU) @ gain.T


def exact_flow(x_start: torch.Tensor, sigma_max: float) -> torch.Tensor:
    scale = EVECS @ torch.diag((EVALS / (EVALS + sigma_max**2)).sqrt()) @ EVECS.T
    return MU + (x_start - MU) @ scale.T


def _start(n: int, sigma_max: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64) * sigma_max


def _sigmas(n: int, sigma_max: float = 80.0) -> torch.Tensor:
    return karras_sigmas(n, sigma_min=0.002, sigma_max=sigma_max).double()


def _options(name: str, x: torch.Tensor) -> dict:
    """What a loop needs beyond the common signature: plug-and-play restores an observation."""
    return {"y": x.clone(), "operator": Identity(), "noise_sigma": 0.0} if name == "plug_and_play" else {}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samples_have_the_data_mean_and_covariance(name: str) -> None:
    x = _start(6000, 80.0)
    out = SAMPLERS[name](GaussianDenoiser(), x, _sigmas(64))
    mean = out.mean(0)
    cov = torch.cov(out.T)
    assert torch.allclose(mean, MU, atol=0.03), (mean, MU)
    assert torch.allclose(cov, SIGMA, atol=0.04), (cov, SIGMA)


@pytest.mark.parametrize("name,steps", [("euler", 400), ("heun", 80)])
def test_stochastic_churn_keeps_the_distribution(name: str, steps: int) -> None:
    """Churn trades ODE error for SDE error; first-order Euler needs many more steps."""
    x = _start(6000, 80.0, seed=1)
    g = torch.Generator().manual_seed(2)
    out = SAMPLERS[name](GaussianDenoiser(), x, _sigmas(steps), s_churn=20.0, s_tmin=0.01, s_tmax=50.0,
                         generator=g)
    assert torch.allclose(out.mean(0), MU, atol=0.03)
    assert torch.allclose(torch.cov(out.T), SIGMA, atol=0.04)


@pytest.mark.parametrize("name,tol", [("euler", 0.03), ("heun", 0.004), ("dpmpp_2m", 0.004)])
def test_deterministic_samplers_follow_the_exact_flow(name: str, tol: float) -> None:
    """64 steps: first order lands within a few 1e-2, second order within a few 1e-3 (rms)."""
    x = _start(500, 80.0, seed=3)
    out = SAMPLERS[name](GaussianDenoiser(), x, _sigmas(64))
    assert float((out - exact_flow(x, 80.0)).pow(2).mean().sqrt()) < tol


def test_heun_beats_euler_at_equal_step_count() -> None:
    x = _start(500, 80.0, seed=4)
    truth = exact_flow(x, 80.0)
    for n in (16, 32, 64):
        err_euler = float((sample_euler(GaussianDenoiser(), x, _sigmas(n)) - truth).pow(2).mean().sqrt())
        err_heun = float((sample_heun(GaussianDenoiser(), x, _sigmas(n)) - truth).pow(2).mean().sqrt())
        assert err_heun < 0.5 * err_euler, (n, err_heun, err_euler)


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_seeded_runs_are_deterministic(name: str) -> None:
    """Every loop takes (model, x, sigmas, callback, generator); those that draw noise draw it there."""
    kwargs = {"s_churn": 10.0} if name in ("euler", "heun") else {}
    runs = []
    for seed in (7, 7, 8):
        x = _start(64, 80.0, seed=11)
        runs.append(LOOPS[name](GaussianDenoiser(), x, _sigmas(10), None, torch.Generator().manual_seed(seed),
                                **kwargs, **_options(name, x)))
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0], runs[2]) == (name == "dpmpp_2m")  # only DPM-Solver++(2M) draws no noise


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_callback_reports_every_step_and_cancels_by_raising(name: str) -> None:
    seen: list[dict] = []
    x = _start(8, 80.0)
    LOOPS[name](GaussianDenoiser(), x, _sigmas(6), callback=seen.append, **_options(name, x))
    assert [d["step"] for d in seen] == list(range(1, 7))
    assert all(d["total"] == 6 and d["x"].shape == (8, 3) for d in seen)
    assert seen[0]["sigma"] == pytest.approx(80.0)

    class Stop(Exception):
        pass

    def cancel(d: dict) -> None:
        if d["step"] == 2:
            raise Stop

    den = GaussianDenoiser()
    with pytest.raises(Stop):
        LOOPS[name](den, x, _sigmas(20), callback=cancel, **_options(name, x))
    assert den.calls <= 4  # stopped after two steps, not at the end


def test_karras_sigmas_shape_and_order() -> None:
    s = karras_sigmas(10, sigma_min=0.01, sigma_max=10.0)
    assert s.shape == (11,) and float(s[-1]) == 0.0
    assert float(s[0]) == pytest.approx(10.0) and float(s[-2]) == pytest.approx(0.01, rel=1e-4)
    assert bool((s[:-1] > s[1:]).all())
    with pytest.raises(ValueError):
        karras_sigmas(0)


def test_sigma_range_schedules() -> None:
    """Operations take their schedules from the model's range: full runs start at sigma_max,
    an SDEdit strength maps along the ramp, restoration runs a short ramp between two levels."""
    assert torch.equal(EDM.schedule(12), karras_sigmas(12))
    assert EDM.at_strength(1.0) == pytest.approx(EDM.sigma_max) and EDM.at_strength(0.0) == pytest.approx(EDM.sigma_min)
    assert 2.0 < EDM.at_strength(0.5) < 3.0
    s = EDM.schedule(5, sigma_start=0.5)
    assert float(s[0]) == pytest.approx(0.5) and float(s[-2]) == pytest.approx(EDM.sigma_min, rel=1e-4)
    r = EDM.ramp(4, 0.4, 0.02)
    assert r.shape == (5,) and float(r[0]) == pytest.approx(0.4) and float(r[-2]) == pytest.approx(0.02, rel=1e-4)
