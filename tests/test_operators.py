"""Measurement operators, their proximal steps, the JPEG projection, plug-and-play restoration
and the style loss."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from engine.diffusion import jpeg as J
from engine.diffusion import operators as O
from engine.diffusion import style
from engine.diffusion.pnp import plug_and_play
from engine.diffusion.schedule import EDM


def _smooth_image(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A synthetic photo-like image in [-1, 1]: gradients, a disk and a little texture."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    r = 0.6 * xx + 0.2 * torch.sin(3 * yy)
    gr = 0.5 * yy - 0.3 * xx ** 2
    b = torch.where(xx**2 + yy**2 < 0.3, 0.7, -0.4) + 0.0 * xx
    img = torch.stack([r, gr, b])[None] + 0.05 * torch.randn(1, 3, h, w, generator=g)
    return img.clamp(-1, 1)


def _linear_operators() -> list[tuple[str, O.Operator]]:
    return [
        ("identity", O.Identity()),
        ("down2-bicubic", O.Downsample(2)),
        ("down4-bicubic", O.Downsample(4)),
        ("down2-bilinear", O.Downsample(2, "bilinear")),
        ("down4-box", O.Downsample(4, "box")),
        ("gauss-circular", O.Blur(O.gaussian_kernel(1.6), "circular")),
        ("gauss-reflect", O.Blur(O.gaussian_kernel(1.6), "reflect")),
        ("motion-circular", O.Blur(O.motion_kernel(9, 30), "circular")),
        ("motion-reflect", O.Blur(O.motion_kernel(9, 30), "reflect", cg_iters=400)),
    ]


@pytest.mark.parametrize("name,op", _linear_operators(), ids=[n for n, _ in _linear_operators()])
def test_adjoint_identity(name: str, op: O.Operator) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 32, 48, generator=g)
    y = torch.randn(op.forward(x).shape, generator=g)
    lhs = (op.forward(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-3), (float(lhs), float(rhs))


@pytest.mark.parametrize("rho", [1e-3, 0.1, 5.0])
@pytest.mark.parametrize("name,op", _linear_operators(), ids=[n for n, _ in _linear_operators()])
def test_prox_solves_its_subproblem(name: str, op: O.Operator, rho: float) -> None:
    """grad_x ( ||A x - y||^2 + rho ||x - z||^2 ) vanishes at x = prox(z, y, rho)."""
    if name == "motion-reflect" and rho < 0.01:
        pytest.skip("non-separable kernels with a reflect boundary use CG, slow to converge at tiny rho")
    g = torch.Generator().manual_seed(3)
    truth = torch.randn(1, 3, 32, 48, generator=g)
    y = op.forward(truth) + 0.05 * torch.randn(op.forward(truth).shape, generator=g)
    z = torch.randn(1, 3, 32, 48, generator=g)
    x = op.prox(z, y, rho)

    def grad(v: torch.Tensor) -> torch.Tensor:
        return op.adjoint(op.forward(v) - y) + rho * (v - z)

    ref = grad(z).norm()
    assert grad(x).norm() <= 1e-3 * ref + 1e-5, float(grad(x).norm() / ref)


def test_bicubic_taps_match_matlab() -> None:
    """imresize(.., 0.5, 'bicubic') weights: Keys a=-0.5 stretched by 2, normalised."""
    taps, lo, hi = O.downsample_taps(2)
    expected = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
    assert np.allclose(taps.numpy(), expected + expected[::-1])
    assert (lo, hi) == (3, 3)
    taps4, lo4, hi4 = O.downsample_taps(4)
    assert len(taps4) == 16 and (lo4, hi4) == (6, 6)
    assert abs(float(taps4.sum()) - 1) < 1e-12 and np.allclose(taps4.numpy(), taps4.flip(0).numpy())


def test_downsample_reproduces_matlab_lr_files(shared_data) -> None:
    """The SR benchmark's MATLAB-bicubic LR images are reproduced up to 8-bit rounding
    (MATLAB rounds to uint8 between its two 1-D passes; our operator stays linear)."""
    hr_path = shared_data / "eval" / "Set5" / "baby.png"
    if not hr_path.is_file():
        pytest.skip("Set5 not present")
    hr = np.asarray(Image.open(hr_path).convert("RGB"), np.float64)
    for s in (2, 4):
        lr = np.asarray(Image.open(shared_data / "eval" / "sr_lr_bicubic" / "Set5" / f"X{s}" / "baby.png")
                        .convert("RGB"), np.float64)
        h, w = hr.shape[0] // s * s, hr.shape[1] // s * s
        x = torch.from_numpy(hr[:h, :w] / 127.5 - 1).permute(2, 0, 1)[None]
        out = O.Downsample(s).forward(x)[0].permute(1, 2, 0).numpy()
        out = np.clip(np.round((out + 1) * 127.5), 0, 255)
        assert out.shape == lr.shape
        assert np.mean(np.abs(out - lr) <= 1) > 0.97


def test_downsample_init_and_shape_errors() -> None:
    op = O.Downsample(4)
    y = torch.zeros(1, 3, 8, 10)
    assert op.init(y).shape == (1, 3, 32, 40)
    with pytest.raises(ValueError):
        op.forward(torch.zeros(1, 3, 30, 40))


def test_kernels_are_normalised() -> None:
    for k in (O.gaussian_kernel(0.7), O.gaussian_kernel(3.0), O.motion_kernel(1, 0), O.motion_kernel(12.5, 37)):
        assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
        assert abs(float(k.sum()) - 1) < 1e-5 and float(k.min()) >= 0
    # a horizontal motion blur is a centred row
    k = O.motion_kernel(7, 0)
    assert float(k[k.shape[0] // 2].sum()) > 0.99


def _jpeg_roundtrip(img: torch.Tensor, quality: int, subsampling: int) -> tuple[torch.Tensor, Image.Image]:
    arr = ((img[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    jpg = Image.open(buf)
    dec = torch.from_numpy(np.asarray(jpg.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    return dec, jpg


def jpeg_info(path_or_image) -> dict:
    """Quantisation tables and chroma subsampling of a JPEG file (or open PIL JPEG image), as
    PIL reads them: what the engine's tables must equal.

    Returns {"tables": (luma 8x8, chroma 8x8) tensors, "subsampling": "4:2:0"|"4:2:2"|"4:4:4"|None}.
    PIL exposes the tables in natural (row-major) order as `im.quantization`.
    """
    im = Image.open(path_or_image) if isinstance(path_or_image, (str, Path)) else path_or_image
    q = getattr(im, "quantization", None)
    if not q:
        raise ValueError("not a JPEG image (no quantisation tables)")
    luma = torch.tensor(list(q[0]), dtype=torch.float32).view(8, 8)
    chroma = torch.tensor(list(q.get(1, q[0])), dtype=torch.float32).view(8, 8)
    code = JpegImagePlugin.get_sampling(im)
    sub = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(code)
    return {"tables": (luma, chroma), "subsampling": sub}



@pytest.mark.parametrize("quality,sub,name", [(20, 2, "4:2:0"), (50, 0, "4:4:4"), (85, 1, "4:2:2")])
def test_jpeg_projection_lands_in_intervals(quality: int, sub: int, name: str) -> None:
    clean = _smooth_image(48, 64)
    dec, jpg = _jpeg_roundtrip(clean, quality, sub)
    info = jpeg_info(jpg)
    assert info["subsampling"] == name
    luma, chroma = J.quality_tables(quality)
    assert torch.equal(info["tables"][0], luma) and torch.equal(info["tables"][1], chroma)
    con = J.JPEGConstraint(dec, tables=info["tables"], subsampling=name)
    assert con.violation(dec) == 0.0
    g = torch.Generator().manual_seed(4)
    x = clean + 0.2 * torch.randn(clean.shape, generator=g)
    assert con.violation(x) > 0.1
    p = con.project(x)
    assert con.violation(p) < 1e-3
    assert torch.allclose(con.project(p), p, atol=1e-4)  # idempotent
    # a projection moves a point no further than any other member of the set, e.g. dec
    assert float((p - x).norm()) <= float((dec - x).norm()) + 1e-4
    # the prox interface of plug_and_play is the projection
    assert torch.allclose(con.prox(x, dec, 0.1), p)


def test_quality_tables_match_libjpeg() -> None:
    img = _smooth_image(16, 16)
    for q in (5, 10, 30, 50, 75, 95, 100):
        _, jpg = _jpeg_roundtrip(img, q, 2)
        luma, chroma = J.quality_tables(q)
        assert torch.equal(jpeg_info(jpg)["tables"][0], luma), q
        assert torch.equal(jpeg_info(jpg)["tables"][1], chroma), q


def test_ycbcr_roundtrip() -> None:
    x = _smooth_image(16, 24)
    assert torch.allclose(J.ycbcr_to_rgb(J.rgb_to_ycbcr(x)), x, atol=1e-4)


def test_style_loss_prefers_reference_and_gradient_descends() -> None:
    n = 40
    ref = _smooth_image(n, n, seed=0)
    # a different "style": stripes with another palette
    xx = torch.linspace(0, 12, n)
    other = torch.stack([torch.sin(xx)[None].expand(n, n), torch.cos(2 * xx)[:, None].expand(n, n),
                         torch.full((n, n), -0.8)])[None] * 0.8
    guide = style.StyleGuide(ref, widths=(16, 32, 32))
    shifted = torch.roll(ref, shifts=(7, 11), dims=(2, 3))  # same statistics, other layout
    assert float(guide.loss(shifted)) < 0.2 * float(guide.loss(other))
    with torch.inference_mode():  # as inside a sampler
        x = other.clone()
        before = float(guide.loss(x))
        for _ in range(6):
            g = guide.grad(x)
            x = x - 0.05 * g / g.pow(2).mean().sqrt()
        assert float(guide.loss(x)) < 0.7 * before


def test_style_steered_wrapper_moves_estimate() -> None:
    ref = _smooth_image(32, 32)
    guide = style.StyleGuide(ref, widths=(16, 32))

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    x = torch.zeros(1, 3, 32, 32)
    assert torch.equal(style.style_steered(denoise, guide, 0.0)(x, torch.tensor(1.0)), x)
    moved = style.style_steered(denoise, guide, 1.0)(x, torch.tensor(1.0))
    assert float(moved.abs().mean()) > 0
    assert float(guide.loss(moved)) < float(guide.loss(x))
    # below sigma_min the estimate is left alone; split guidance takes ceil(scale) smaller steps
    assert torch.equal(style.style_steered(denoise, guide, 1.0, sigma_min=2.0)(x, torch.tensor(1.0)), x)
    one = style.style_steered(denoise, guide, 2.5, split=False)(x, torch.tensor(1.0))
    three = style.style_steered(denoise, guide, 2.5)(x, torch.tensor(1.0))
    assert float(guide.loss(three)) < float(guide.loss(x)) and not torch.equal(one, three)


def test_plug_and_play_is_data_consistent_and_cancellable() -> None:
    """With a crude prior (a blur as 'denoiser'), the result still honours the observation."""
    clean = _smooth_image(32, 32)
    op = O.Downsample(2)
    y = op.forward(clean)
    blur = O.Blur(O.gaussian_kernel(1.0), "circular")

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return blur.forward(x) / (1 + float(sigma) ** 2) ** 0.5

    sigmas = EDM.ramp(8, 1.0, EDM.sigma_min)
    observed = {"y": y, "operator": op, "noise_sigma": 0.0}
    steps: list[int] = []
    out = plug_and_play(denoise, op.init(y), sigmas, lambda d: steps.append(d["step"]),
                        torch.Generator().manual_seed(0), min_noise_sigma=1e-3, **observed)
    assert steps == list(range(1, 9))
    assert float((op.forward(out) - y).abs().mean()) < 0.02
    seeded = [plug_and_play(denoise, op.init(y), sigmas, generator=torch.Generator().manual_seed(5), **observed)
              for _ in range(2)]
    assert torch.equal(seeded[0], seeded[1])

    def cancel(d: dict) -> None:
        if d["step"] == 3:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        plug_and_play(denoise, op.init(y), sigmas, cancel, **observed)
