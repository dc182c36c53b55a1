"""Seamless (tileable) generation: circular padding makes generated samples wrap around without a seam."""
from __future__ import annotations


import pytest
import torch

from engine.diffusion.denoiser import Denoiser, make_cond
from engine.diffusion.modelfile import load_model
from engine.diffusion.sampling import sample_heun
from engine.diffusion.schedule import karras_sigmas
from tiny_model import SMOOTH_BLOBS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smooth_model() -> Denoiser:
    """The committed smooth-blobs model (tests/tiny_model.py): trained on soft colour fields
    whose opposite edges differ."""
    model, _ = load_model(SMOOTH_BLOBS)
    return model


def seam_ratio(img: torch.Tensor) -> tuple[float, float]:
    """Edge mismatch (last column vs first, last row vs first) over the median
    neighbouring-interior difference, per axis."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=(0, 1, 2))  # per column pair
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    seam_x = (img[..., :, 0] - img[..., :, -1]).abs().mean()
    seam_y = (img[..., 0, :] - img[..., -1, :]).abs().mean()
    return float(seam_x / dx.median()), float(seam_y / dy.median())


@torch.no_grad()
def generate(model: Denoiser, mode: str, n: int = 6, size: int = 48) -> torch.Tensor:
    model.net.set_padding_mode(mode)
    try:
        g = torch.Generator().manual_seed(0)
        sigmas = karras_sigmas(12, sigma_max=80.0)
        x = torch.randn(n, 3, size, size, generator=g) * sigmas[0]
        cond = make_cond(None, None, x)
        return sample_heun(lambda z, s: model(z, s, cond), x, sigmas)
    finally:
        model.net.set_padding_mode("zeros")


def test_circular_padding_tiles_seamlessly(smooth_model: Denoiser) -> None:
    circ = generate(smooth_model, "circular")
    rx, ry = seam_ratio(circ)
    # opposite edges match as well as neighbouring interior columns / rows do
    assert rx < 1.5 and ry < 1.5, (rx, ry)
    # the control: with zero padding the seams are worse than any interior column pair
    zx, zy = seam_ratio(generate(smooth_model, "zeros"))
    assert min(zx, zy) > 1.2 * max(rx, ry), (zx, zy, rx, ry)


def test_set_padding_mode_switches_every_3x3_conv(smooth_model: Denoiser) -> None:
    net = smooth_model.net
    net.set_padding_mode("circular")
    try:
        modes = {m.padding_mode for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)}
        assert modes == {"circular"}
    finally:
        net.set_padding_mode("zeros")
