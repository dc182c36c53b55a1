"""`restore` through the real engine on loopback, with the tiny trained test model."""
from __future__ import annotations

import numpy as np
import pytest

from degrade import add_noise, add_scratches, clean_scene, jpeg, psnr
from engine import images
from engine.client import Client, EngineClientError


@pytest.fixture(scope="module")
def client(tiny_models_dir):
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as c:
        yield c


def noisy(h=48, w=64, channels=3, dtype=np.uint8, sigma=15):
    rgb = images.to_float(add_noise(clean_scene(h, w, 1), sigma))
    if channels == 4:
        rgb = np.concatenate([rgb, np.linspace(0.2, 1, h * w, dtype=np.float32).reshape(h, w, 1)], -1)
    return images.from_float(rgb, dtype)


def box_mask(h=48, w=64):
    m = np.zeros((h, w, 1), np.uint8)
    m[12:36, 16:44] = 255
    return m


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [3, 4])
def test_shape_dtype_depth_and_alpha(client, dtype, channels):
    img = noisy(channels=channels, dtype=dtype)
    res = client.run("restore", {"image": img}, {"task": "denoise", "sigma": 15})
    out = res.image
    assert out.shape == img.shape and out.dtype == img.dtype
    assert not np.array_equal(out[..., :3], img[..., :3])
    if channels == 4:
        assert np.array_equal(out[..., 3], img[..., 3])
    assert res.meta["tasks"] == ["denoise"] and res.meta["sigma"] == 15


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_size(client, scale):
    img = noisy(32, 40, channels=4, dtype=np.uint16)
    out = client.restore(img, task="upscale", scale=scale, steps=2)
    assert out.shape == (32 * scale, 40 * scale, 4) and out.dtype == np.uint16


@pytest.mark.parametrize("task", ["denoise", "jpeg", "deblur", "repair", "upscale"])
def test_pixels_outside_the_mask_are_unchanged(client, task):
    img, mask = noisy(), box_mask()
    params = {"task": task, "steps": 2, "seed": 0, "quality": 30, "blur_sigma": 1.0, "defects": "mask"}
    out = client.restore(img, mask=mask, **params)
    if task == "upscale":  # outside the mask: plain bicubic enlargement; inside: the model's
        assert out.shape == (96, 128, 3)
        return
    outside = images.feather_mask(mask, images.auto_feather(mask)) == 0
    assert np.array_equal(out[outside], img[outside])
    assert not np.array_equal(out[mask[..., 0] > 0], img[mask[..., 0] > 0])
    hard = client.restore(img, mask=mask, feather=0, **params)
    assert np.array_equal(hard[mask[..., 0] == 0], img[mask[..., 0] == 0])


def test_tasks_chain_in_order_and_auto_measures(client):
    clean = clean_scene(64, 80, 2)
    res = client.run("restore", {"image": jpeg(clean, 25)}, {"task": "denoise, jpeg", "sigma": 5})
    assert res.meta["tasks"] == ["jpeg", "denoise"] and res.meta["estimates"]["jpeg_quality"] == 25
    res = client.run("restore", {"image": jpeg(clean, 25)}, {"task": "auto"})
    assert res.meta["tasks"] == ["jpeg"] and res.meta["quality"] == 25
    res = client.run("restore", {"image": add_noise(clean, 20)}, {"task": "auto"})
    assert res.meta["tasks"] == ["denoise"] and abs(res.meta["sigma"] - 20) < 4
    # auto on a clean photo: tests/test_oldphoto_auto.py (this scene is soft-edged on purpose)


def test_repair_removes_scratches(client):
    clean = clean_scene(96, 128, 3)
    damaged, truth = add_scratches(clean, seed=3, lines=4, dust=6)
    res = client.run("restore", {"image": damaged}, {"task": "repair", "seed": 0})
    assert res.meta["defect_pixels"] >= truth.sum()
    assert psnr(res.image, clean) > psnr(damaged, clean) + 4


def test_seed_makes_repair_deterministic(client):
    img, mask = noisy(), box_mask()
    a = client.restore(img, mask=mask, task="repair", defects="mask", steps=3, seed=5)
    b = client.restore(img, mask=mask, task="repair", defects="mask", steps=3, seed=5)
    c = client.restore(img, mask=mask, task="repair", defects="mask", steps=3, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_progress_stages_and_previews(client):
    events = []
    client.run("restore", {"image": noisy(96, 96)}, {"task": "jpeg,upscale", "quality": 40, "steps": 3, "tile": 64},
               on_progress=events.append)
    stages = [e["stage"] for e in events if e["stage"] != "start"]
    assert stages[0] == "analyse" and stages[-1] == "composite" and "jpeg" in stages and "upscale" in stages
    steps = [e["step"] for e in events if e["stage"] != "start"]
    assert steps == sorted(steps) and events[-1]["step"] == events[-1]["total"]
    assert any("preview" in e and e["preview"].dtype == np.uint8 for e in events)


def test_cancel_mid_operation(client):
    jobs, stages = [], []

    def on_progress(event):
        stages.append(event["stage"])
        if event["stage"] == "upscale":
            jobs[0].cancel()

    jobs.append(client.submit("restore", {"image": noisy(64, 64)}, {"task": "upscale", "steps": 100, "tile": 64},
                              on_progress=on_progress))
    with pytest.raises(EngineClientError) as info:
        jobs[0].result(60)
    assert info.value.code == "cancelled"
    assert stages.count("upscale") < 30 and "composite" not in stages
    assert client.restore(noisy(), task="denoise", sigma=10).shape == (48, 64, 3)  # still serving


@pytest.mark.parametrize("params, code, field", [
    ({"task": "sharpen"}, "bad_param", "params.task"),
    ({"task": "auto,denoise"}, "bad_param", "params.task"),
    ({"task": "upscale", "scale": 3}, "bad_param", "params.scale"),
    ({"task": "deblur", "blur_sigma": 1.0, "motion_length": 5}, "bad_param", "params.motion_length"),
    ({"task": "repair", "defects": "mask"}, "bad_param", "inputs.mask"),
    ({"task": "denoise", "sigma": -1}, "bad_param", "params.sigma"),
    ({"task": "jpeg", "quality": 101}, "bad_param", "params.quality"),
    ({"steps": 1000}, "too_large", "params.steps"),
    ({"model": "nope", "task": "denoise", "sigma": 5}, "model_missing", "params.model"),
    ({"strength": 1}, "bad_param", "params.strength"),
])
def test_bad_params_are_errors(client, params, code, field):
    with pytest.raises(EngineClientError) as info:
        client.run("restore", {"image": noisy()}, params)
    assert (info.value.code, info.value.field) == (code, field)


def test_bad_inputs_are_errors(client):
    with pytest.raises(EngineClientError) as info:
        client.run("restore", {"image": noisy(), "mask": box_mask(40, 64)}, {"task": "denoise"})
    assert info.value.code == "bad_param" and info.value.field == "inputs.mask"
