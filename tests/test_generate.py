"""`generate` through the real engine on loopback, with the tiny trained test model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.client import Client, EngineClientError
from engine.diffusion.denoiser import circular_twin, make_cond
from engine.registry import ModelRegistry
from engine.tasks.generate import periodic_resize


@pytest.fixture(scope="module")
def client(tiny_models_dir):
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as c:
        yield c


FAST = {"steps": 4, "seed": 3}


def seam_ratio(img: np.ndarray) -> float:
    """Mean jump across the wrap-around edges over the mean jump between neighbours inside."""
    f = img.astype(np.float64)
    wrap = (np.abs(f[:, -1] - f[:, 0]).mean() + np.abs(f[-1] - f[0]).mean()) / 2
    inner = (np.abs(np.diff(f, axis=1)).mean() + np.abs(np.diff(f, axis=0)).mean()) / 2
    return wrap / max(inner, 1e-9)


@pytest.mark.parametrize("width, height", [(64, 48), (37, 21)])
def test_shape_depth_and_determinism(client, width, height):
    res = client.run("generate", {}, {"width": width, "height": height, **FAST})
    assert res.image.shape == (height, width, 3) and res.image.dtype == np.uint8
    assert res.meta["seed"] == 3 and res.meta["size"] == [height, width]
    again = client.generate(width, height, **FAST)
    assert np.array_equal(res.image, again)


def test_variants_differ_and_seeds_matter(client):
    res = client.run("generate", {}, {"width": 32, "height": 32, "variants": 3, **FAST})
    assert set(res.outputs) == {"image", "image_1", "image_2"}
    assert not np.array_equal(res.outputs["image"], res.outputs["image_1"])
    other = client.generate(32, 32, steps=4, seed=4)
    assert not np.array_equal(res.outputs["image"], other)


@pytest.mark.parametrize("width, height", [(64, 48), (60, 44)])
def test_tileable_output_tiles_seamlessly(client, width, height):
    out = client.generate(width, height, tileable=True, **FAST)
    tiled = np.tile(out, (2, 2, 1))  # the 2x2 tiling's inner seams are the wrap-around edges
    assert tiled.shape == (2 * height, 2 * width, 3)
    assert seam_ratio(out) < 1.6


def test_circular_twin_is_translation_equivariant_and_leaves_the_model_alone(tiny_models_dir):
    den = ModelRegistry(tiny_models_dir).get()
    twin = circular_twin(den)
    assert twin is circular_twin(den) and twin.descriptor.padding_mode == "circular"
    assert den.descriptor.padding_mode == "zeros" and twin.net.stem.weight is den.net.stem.weight
    modes = {m.padding_mode for m in den.net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)}
    assert modes == {"zeros"}
    x = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    cond = make_cond(None, None, x)
    with torch.no_grad():
        a = torch.roll(twin(x, 1.0, cond), (8, 16), dims=(2, 3))
        b = twin(torch.roll(x, (8, 16), dims=(2, 3)), 1.0, cond)
    assert torch.allclose(a, b, atol=1e-4)


def test_periodic_resize_stays_periodic():
    y, x = torch.meshgrid(torch.arange(40.0), torch.arange(56.0), indexing="ij")
    wave = torch.sin(2 * torch.pi * x / 56)[None, None].expand(1, 3, -1, -1)
    resized = periodic_resize(wave, (40, 50))
    expected = torch.sin(2 * torch.pi * (torch.arange(50.0) + 0.5) / 50 - torch.pi / 56)
    assert torch.allclose(resized[0, 0, 0], expected, atol=0.03)


def test_reference_texture_takes_its_colours_and_depth(client):
    rng = np.random.default_rng(0)
    ref = np.zeros((48, 48, 3), np.uint16)
    ref[..., 0] = 50000 + rng.integers(0, 8000, (48, 48))
    ref[..., 2] = 12000
    res = client.run("generate", {"reference": ref}, {"width": 40, "height": 32, **FAST})
    out = res.image
    assert out.dtype == np.uint16 and out.shape == (32, 40, 3) and res.meta["reference"]
    mean = out.reshape(-1, 3).mean(0) / 65535
    assert abs(mean[0] - 0.82) < 0.25 and mean[0] > mean[1] + 0.2


def test_progress_and_cancel(client):
    events, jobs = [], []

    def on_progress(event):
        events.append(event)
        if event["stage"] == "diffusion" and event["step"] >= 2:
            jobs[0].cancel()

    jobs.append(client.submit("generate", {}, {"width": 32, "height": 32, "steps": 200, "seed": 0},
                              on_progress=on_progress))
    with pytest.raises(EngineClientError) as info:
        jobs[0].result(60)
    assert info.value.code == "cancelled"
    assert any("preview" in e for e in events) or len(events) < 6
    assert max(e["step"] for e in events) < 100


@pytest.mark.parametrize("params, code, field", [
    ({"width": 0}, "bad_param", "params.width"),
    ({"width": 2048, "height": 2048, "variants": 2}, "too_large", "params.width"),
    ({"tileable": "yes"}, "bad_param", "params.tileable"),
    ({"steps": 1000}, "too_large", "params.steps"),
    ({"model": "nope"}, "model_missing", "params.model"),
])
def test_bad_params_are_errors(client, params, code, field):
    with pytest.raises(EngineClientError) as info:
        client.run("generate", {}, {"width": 32, "height": 32, **params})
    assert (info.value.code, info.value.field) == (code, field)
