"""The real trainer on a tiny network and synthetic data: it learns, it inpaints, it resumes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_ARCH
from engine.diffusion.denoiser import make_cond
from engine.diffusion.modelfile import load_model, read_card
from engine.diffusion.recipes import FINETUNE, finetune_defaults
from engine.diffusion.sampling import sample_heun
from engine.diffusion.schedule import karras_sigmas
from engine.diffusion.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gradient_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth linear colour ramp in a random direction: the 'simple pattern'."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy  # in about [-0.7, 0.7]
    a, b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    img = a[None, None] + t[..., None] * (b - a)[None, None] * 1.4
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def ramp_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ramps")
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(gradient_image(48, rng)).save(root / f"ramp_{i:02d}.png")
    return root


def _cfg(folder: Path, out: Path, steps: int) -> TrainConfig:
    return TrainConfig(folders=[str(folder)], out=str(out), steps=steps, patch=32, batch=16, lr=5e-3, warmup=20,
                       decay_fraction=0.2, ema=0.99, sample_every=0, checkpoint_every=1000, held_out=2,
                       architecture=dict(TINY_ARCH), seed=0, device="cpu",
                       mask_weights={"box": 0.6, "strokes": 0.2, "all": 0.2})


# The ramp model's training: 200 steps with the noise levels centred low (p_mean -2.5, sigma
# about 0.08, where the refine check below works) pass the check with seeds 0, 1 and 2 (error
# ratio 0.68-0.73 against the 0.85 bar); the default p_mean needed 300 steps and still failed
# with seed 1 (0.91), and 150 steps at the default fail (1.14). 24-px patches (a third less
# work than 32) pass it with seeds 0 to 5; 120 steps, or batch 8, fail it with some seed.
RAMP_STEPS = 200
RAMP_P_MEAN = -2.5
RAMP_PATCH = 24


@pytest.fixture(scope="module")
def trained(ramp_folder: Path, tmp_path_factory) -> Trainer:
    import dataclasses

    out = tmp_path_factory.mktemp("run") / "ramps"
    cfg = dataclasses.replace(_cfg(ramp_folder, out, RAMP_STEPS), p_mean=RAMP_P_MEAN, patch=RAMP_PATCH)
    trainer = Trainer(cfg, log=lambda *_: None)
    trainer.run()
    return trainer


def test_loss_goes_down(trained: Trainer) -> None:
    losses = np.asarray(trained.losses)
    assert len(losses) == RAMP_STEPS
    assert losses[-50:].mean() < 0.6 * losses[:20].mean(), (losses[:20].mean(), losses[-50:].mean())
    card = read_card(trained.out)
    assert card["steps"] == RAMP_STEPS and card["final_loss"] is not None
    assert (trained.out / "loss.png").is_file()


@torch.no_grad()
def test_inpaints_a_ramp_better_than_the_mean_colour(trained: Trainer) -> None:
    """Refine-style inpainting (the op's strength < 1): start from the hole filled with the
    mean colour of the known pixels plus noise, denoise with the known pixels as conditioning.
    A few hundred steps teach a tiny network to continue the ramp into the hole; generating
    from pure noise needs far longer training, so that is left to the shipped model."""
    model, _ = load_model(trained.out)
    rng = np.random.default_rng(123)
    clean = torch.from_numpy(np.stack([gradient_image(32, rng) for _ in range(8)])).permute(0, 3, 1, 2).float()
    clean = clean / 127.5 - 1
    mask = torch.zeros(8, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    hole = mask.expand_as(clean).bool()
    known = ~hole
    mean_colour = torch.stack([clean[i][known[i]].view(3, -1).mean(1) for i in range(8)])[:, :, None, None]
    start = clean * (1 - mask) + mean_colour * mask
    g = torch.Generator().manual_seed(1)
    sigmas = karras_sigmas(6, sigma_max=0.2)
    x = start + torch.randn(clean.shape, generator=g) * sigmas[0]
    cond = make_cond(clean, mask, x)
    out = sample_heun(lambda z, s: model(z, s, cond), x, sigmas)
    err_model = ((out - clean) ** 2)[hole].mean()
    err_mean = ((start - clean) ** 2)[hole].mean()
    assert err_model < 0.85 * err_mean, (float(err_model), float(err_mean))


def test_resume_continues_the_step_count(ramp_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumable"
    first = Trainer(_cfg(ramp_folder, out, 12), log=lambda *_: None)
    first.run()
    assert first.step == 12
    messages: list[str] = []
    second = Trainer(_cfg(ramp_folder, out, 20), log=messages.append)
    assert second.step == 12 and len(second.losses) == 12
    assert any("resumed" in m for m in messages)
    # the optimiser state came back too
    assert all(len(s) for s in second.opt.state_dict()["state"].values())
    second.run()
    assert second.step == 20 and len(second.losses) == 20
    assert read_card(out)["steps"] == 20


def test_worker_processes_feed_the_same_training(ramp_folder: Path, tmp_path: Path) -> None:
    """Batches made by a DataLoader worker train the same network; a resume restarts the workers."""
    import dataclasses

    out = tmp_path / "workers"
    cfg = dataclasses.replace(_cfg(ramp_folder, out, 6), workers=1, checkpoint_every=3)
    first = Trainer(cfg, log=lambda *_: None)
    x0, mask, start, prefilled = first.make_batch()  # in-loop batch before the workers start
    assert x0.shape == (16, 3, 32, 32) and mask.shape == (16, 1, 32, 32)
    assert torch.equal(start, x0) and not prefilled.any()  # prefill_fraction is off by default
    first.run()
    assert first.step == 6 and all(np.isfinite(first.losses))
    second = Trainer(dataclasses.replace(cfg, steps=9), log=lambda *_: None)
    second.run()
    assert second.step == 9 and read_card(out)["steps"] == 9


def test_prefilled_holes_start_from_the_border_fill(ramp_folder: Path, tmp_path: Path) -> None:
    """With prefill_fraction, partly masked samples start from a smooth fill of the hole
    (known pixels untouched) and train at the prefill noise levels."""
    import dataclasses

    cfg = dataclasses.replace(_cfg(ramp_folder, tmp_path / "prefill", 3), prefill_fraction=1.0,
                              mask_weights={"strokes": 1.0, "all": 1.0})
    t = Trainer(cfg, log=lambda *_: None)
    x0, mask, start, prefilled = t.make_batch()
    partial = torch.tensor([0 < float(m.mean()) < 1 for m in mask])
    assert prefilled.any() and torch.equal(prefilled, partial)
    known = (mask == 0).expand_as(x0)
    assert torch.equal(start[known], x0[known])
    hole = (mask > 0).expand_as(x0) & prefilled[:, None, None, None]
    assert not torch.equal(start[hole], x0[hole])
    # the ramps are smooth, so a spline fill stays close to the truth and within the data's range
    assert float((start[hole] - x0[hole]).abs().mean()) < 0.1
    assert float(start[hole].min()) >= float(x0.min()) - 0.05
    t.run()
    assert t.step == 3 and all(np.isfinite(t.losses))


def test_finetune_defaults_from_a_model_folder(trained: Trainer, ramp_folder: Path, tmp_path: Path) -> None:
    cfg = finetune_defaults([str(ramp_folder)], str(tmp_path / "style"), str(trained.out), steps=8,
                            batch=None, patch=32, sample_every=4)
    assert cfg.from_model == str(trained.out) and cfg.steps == 8 and cfg.batch == FINETUNE["batch"]
    cfg.batch = 4
    t = Trainer(cfg, log=lambda *_: None)
    t.run()
    card = read_card(tmp_path / "style")
    assert card["base_model"] == "ramps" and card["steps"] == 8
    assert card["config"]["channels"] == TINY_ARCH["channels"]
    assert (tmp_path / "style" / "samples.png").is_file()
    with pytest.raises(TypeError):
        finetune_defaults([], "x", str(trained.out), no_such_field=1)


def test_recolour_keeps_luma_and_scales_chroma() -> None:
    from engine.diffusion.data import PatchSampler, recolour
    from engine.images import luma as bt601
    rng = np.random.default_rng(3)
    crop = torch.from_numpy(rng.uniform(60, 190, (3, 16, 16)).astype(np.float32))
    out = recolour(crop, (2, 0, 1), 1.5)
    assert torch.allclose(recolour(crop, (0, 1, 2), 1.0), crop, atol=1e-3)
    # Nothing clips in this range: chroma about the luma grows by exactly the factor.
    permuted = crop[[2, 0, 1]]
    luma = bt601(permuted)
    assert torch.allclose(bt601(out), luma, atol=1e-3)
    assert torch.allclose(out - luma, 1.5 * (permuted - luma), atol=1e-3)
    # A greyscale picture stays grey whatever the draw; colour crops come back recoloured.
    grey = torch.full((3, 40, 40), 128, dtype=torch.uint8)
    assert PatchSampler([grey], 32, colour_fraction=1.0).batch(4).std(dim=1).max() < 1e-5
    red = torch.zeros((3, 40, 40), dtype=torch.uint8)
    red[0] = 200
    batch = PatchSampler([red], 32, seed=1, colour_fraction=1.0).batch(12)
    assert len({int(b.mean(dim=(1, 2)).argmax()) for b in batch}) > 1
    assert batch.min() >= -1 and batch.max() <= 1


def test_gpu_script_trains_a_new_width_from_scratch(ramp_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """tools/train_builtin.py --channels: the path to a wider built-in model on a lent GPU. Run as
    `python tools/train_builtin.py ...` would, in this process (one torch thread, no second torch import)."""
    import runpy
    import sys
    script = Path(__file__).resolve().parents[1] / "tools" / "train_builtin.py"
    out = tmp_path / "wide"
    monkeypatch.setattr(sys, "argv", [str(script), "--data", str(ramp_folder), "--out", str(out), "--steps", "2",
                                      "--device", "cpu", "--channels", "8,16,16,16"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    assert exited.value.code == 0
    card = read_card(out)
    assert card["config"]["channels"] == [8, 16, 16, 16]
    assert card["base_model"] is None and card["steps"] == 2
