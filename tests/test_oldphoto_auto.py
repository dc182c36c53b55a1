"""`restore task=auto` on old-photo damage: it finds, reports and runs the right chain, and
says so when there is nothing to do (never a silent no-op). Real engine, tiny test model."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from degrade import add_noise, add_scratches, clean_scene, jpeg
from engine.cli import main
from engine.client import Client
from engine.diffusion.operators import gaussian_kernel, motion_kernel
from engine.tasks.blur_estimate import estimate_blur
from engine.tasks.restore_report import NOTHING, summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "common"))
import sfumato_link as link  # noqa: E402  (the plug-ins' shared code shows the same line)


def sharp_scene(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    """Hard-edged (antialiased) rectangles and disks over a gentle gradient, with a faint grain
    (sigma 1.5, below what auto denoises): a sharp photo's edges."""
    rng = np.random.default_rng(seed)
    big = Image.new("RGB", (4 * w, 4 * h), tuple(int(v) for v in rng.integers(90, 160, 3)))
    draw = ImageDraw.Draw(big)
    for _ in range(14):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * (4 * w, 4 * h)
        sx, sy = rng.uniform(0.1, 0.45, 2) * (4 * w, 4 * h)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x0, y0, x0 + sx, y0 + sy], fill=tuple(int(v) for v in rng.integers(30, 225, 3)))
    img = np.asarray(big.resize((w, h), Image.BOX), dtype=np.float32)
    yy = np.linspace(-12, 12, h, dtype=np.float32)[:, None, None]
    grain = rng.normal(0, 1.5, img.shape).astype(np.float32)
    return np.clip(img + yy + grain, 0, 255).round().astype(np.uint8)


def blurred(img: np.ndarray, kernel: torch.Tensor) -> np.ndarray:
    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[:, None]
    p = kernel.shape[-1] // 2
    out = F.conv2d(F.pad(t, (p, p, p, p), mode="reflect"), kernel[None, None].float())
    return out[:, 0].permute(1, 2, 0).numpy().clip(0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def client(tiny_models_dir):
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=120) as c:
        yield c


def test_clean_photo_says_it_found_nothing(client):
    clean = sharp_scene(seed=1)
    res = client.run("restore", {"image": clean}, {"task": "auto"})
    assert res.meta["tasks"] == [] and res.meta["applied"] == []
    assert res.meta["summary"].startswith(NOTHING) and np.array_equal(res.image, clean)
    assert res.meta["found"]["scratches"]["count"] == 0 and res.meta["found"]["blur"]["kind"] == "none"


def test_scratched_photo_is_repaired_and_reported(client):
    damaged, truth = add_scratches(sharp_scene(seed=2), seed=2, lines=4, dust=8)
    res = client.run("restore", {"image": damaged}, {"task": "auto", "seed": 0})
    assert res.meta["tasks"] == ["repair"]
    found = res.meta["found"]
    assert found["scratches"]["count"] + found["hairs"]["count"] >= 2 and found["dust"]["count"] >= 3
    assert res.meta["applied"][0]["task"] == "repair" and res.meta["applied"][0]["pixels"] >= truth.sum()
    assert "scratch" in res.meta["summary"] and res.meta["summary"].endswith("applied: repair")
    assert link.result_summary(res.meta) == res.meta["summary"] and link.result_summary({"seed": 1}) is None


def test_jpeg_and_noise_are_chosen_and_reported(client):
    res = client.run("restore", {"image": jpeg(clean_scene(64, 80, 2), 25)}, {"task": "auto"})
    assert res.meta["tasks"] == ["jpeg"] and res.meta["applied"] == [{"task": "jpeg", "quality": 25}]
    assert "JPEG q~25" in res.meta["summary"]  # a JPEG this coarse is not read for blur
    res = client.run("restore", {"image": add_noise(sharp_scene(seed=3), 20)}, {"task": "auto"})
    assert res.meta["tasks"] == ["denoise"] and abs(res.meta["applied"][0]["sigma"] - 20) < 3


@pytest.mark.parametrize("sigma", [1.5, 2.5])
def test_gaussian_blur_is_measured_and_undone(client, sigma):
    clean = sharp_scene(seed=4)
    res = client.run("restore", {"image": blurred(clean, gaussian_kernel(sigma))}, {"task": "auto", "steps": 2})
    assert res.meta["tasks"] == ["deblur"], res.meta["found"]
    assert abs(res.meta["applied"][0]["blur_sigma"] - sigma) < 0.35 * sigma
    assert "blur sigma~" in res.meta["summary"]


def test_motion_blur_length_and_angle():
    clean = sharp_scene(192, 192, seed=5)
    for length, angle in ((7, 0.0), (11, 60.0)):
        est = estimate_blur(blurred(clean, motion_kernel(length, angle)))
        assert est.kind == "motion" and abs(est.length - length) <= 1.5, est
        assert abs((est.angle - angle + 90) % 180 - 90) <= 8, est


def test_explicit_deblur_without_sigma_measures_it(client):
    img = blurred(sharp_scene(seed=6), gaussian_kernel(2.0))
    res = client.run("restore", {"image": img}, {"task": "deblur", "steps": 2})
    assert res.meta["tasks"] == ["deblur"] and abs(res.meta["applied"][0]["blur_sigma"] - 2.0) < 0.7


def test_summary_wording():
    found = {"scratches": {"count": 23}, "dust": {"count": 140}, "hairs": {"count": 0},
             "jpeg": {"quality": 35, "significant": True}, "noise": {"sigma": 1.2, "significant": False}}
    text = summary(found, [{"task": "repair", "pixels": 900}, {"task": "jpeg", "quality": 35}])
    assert text == "found: 23 scratches, 140 dust specks, JPEG q~35; applied: repair, jpeg q35"
    assert summary({"noise": {"sigma": 0.4, "significant": False}}, []) == NOTHING


def test_cli_prints_the_summary(tmp_path, capsys, tiny_models_dir):
    path = tmp_path / "clean.png"
    Image.fromarray(sharp_scene(64, 80, seed=7)).save(path)
    engine = ["--models", str(tiny_models_dir), "--device", "cpu", "--quiet"]
    assert main(["restore", str(path), "--task", "auto", "-o", str(tmp_path / "out.png"), *engine]) == 0
    assert NOTHING in capsys.readouterr().out
