"""`stylize` through the real engine on loopback, with the tiny trained test model."""
from __future__ import annotations

import numpy as np
import pytest

from degrade import clean_scene
from engine import images
from engine.client import Client, EngineClientError
from bench.style_metrics import content_distance, style_distance
from engine.images import gaussian_blur
from engine.tasks.stylize import match_colours


@pytest.fixture(scope="module")
def client(tiny_models_dir):
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as c:
        yield c


def strokes(h=64, w=64, seed=0) -> np.ndarray:
    """A procedural 'painting': short oriented strokes in a blue-yellow palette."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32) + np.array([0.1, 0.2, 0.5], np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(120):
        cy, cx, a = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, np.pi)
        along = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
        across = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        stroke = (np.abs(along) < 6) & (np.abs(across) < 1.5)
        img[stroke] = rng.choice([[0.9, 0.8, 0.2], [0.2, 0.3, 0.8], [0.05, 0.1, 0.3]])
    return (img * 255).astype(np.uint8)


FAST = {"steps": 3, "seed": 1, "resolution": 64}


def content(dtype=np.uint8, channels=3, h=48, w=64):
    rgb = images.to_float(clean_scene(h, w, 7))
    if channels == 4:
        rgb = np.concatenate([rgb, np.full((h, w, 1), 0.6, np.float32)], -1)
    return images.from_float(rgb, dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_shape_dtype_depth_and_alpha(client, dtype):
    img = content(dtype, 4)
    res = client.run("stylize", {"image": img, "style": strokes()}, FAST)
    assert res.image.shape == img.shape and res.image.dtype == img.dtype
    assert np.array_equal(res.image[..., 3], img[..., 3])
    assert res.meta["reference"] and res.meta["seed"] == 1


def test_palette_moves_to_the_reference_and_layout_stays(client):
    img, ref = content(), strokes()
    out = client.stylize(img, ref, **FAST)
    f, o, r = (images.to_float(a).reshape(-1, 3) for a in (img, out, ref))
    assert np.abs(o.mean(0) - r.mean(0)).sum() < 0.5 * np.abs(f.mean(0) - r.mean(0)).sum()
    # the composition survives: the blurred luminance still correlates with the original's
    lum = lambda a: images.to_model(images.to_float(a)).mean(1, keepdim=True)  # noqa: E731
    a, b = gaussian_blur(lum(img), 3, "reflect").flatten().numpy(), gaussian_blur(lum(out), 3, "reflect").flatten().numpy()
    assert np.corrcoef(a, b)[0, 1] > 0.6


def test_colour_transfer_matches_mean_and_covariance():
    import torch

    x = torch.rand(1, 3, 32, 32) * 0.5 - 0.6
    ref = torch.stack([torch.rand(40, 40), torch.rand(40, 40) * 0.3 + 0.5, torch.rand(40, 40) * 0.2])[None] * 2 - 1
    y = match_colours(x, ref.clamp(-1, 1))
    py, pr = y[0].reshape(3, -1), ref[0].reshape(3, -1)
    assert torch.allclose(py.mean(1), pr.mean(1), atol=0.02)
    assert torch.allclose(torch.cov(py), torch.cov(pr), atol=0.02)


def test_pixels_outside_the_mask_are_unchanged(client):
    img = content()
    mask = np.zeros((48, 64, 1), np.uint8)
    mask[8:40, 10:50] = 255
    out = client.stylize(img, strokes(), mask=mask, feather=0, **FAST)
    assert np.array_equal(out[mask[..., 0] == 0], img[mask[..., 0] == 0])
    assert not np.array_equal(out[mask[..., 0] > 0], img[mask[..., 0] > 0])


def test_seed_is_deterministic(client):
    img, ref = content(), strokes()
    a = client.stylize(img, ref, **FAST)
    b = client.stylize(img, ref, **FAST)
    c = client.stylize(img, ref, **{**FAST, "seed": 2})
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_style_model_alone(client):
    res = client.run("stylize", {"image": content()}, {**FAST, "style_model": "builtin"})
    assert res.image.shape == (48, 64, 3) and res.meta["model"] == "builtin" and not res.meta["reference"]


def test_cancel_mid_operation(client):
    jobs, stages = [], []

    def on_progress(event):
        stages.append(event["stage"])
        if event["stage"] == "synthesis":
            jobs[0].cancel()

    jobs.append(client.submit("stylize", {"image": content(h=160, w=200), "style": strokes(160, 160)},
                              {"seed": 0, "resolution": 200}, on_progress=on_progress))
    with pytest.raises(EngineClientError) as info:
        jobs[0].result(60)
    assert info.value.code == "cancelled"
    assert stages.count("synthesis") < 5 and "composite" not in stages


@pytest.mark.parametrize("inputs, params, code, field", [
    ({}, {}, "bad_param", "inputs.style"),
    ({"style": "ref"}, {"strength": 2.0}, "bad_param", "params.strength"),
    ({"style": "ref"}, {"structure": -0.1}, "bad_param", "params.structure"),
    ({"style": "ref"}, {"steps": 1000}, "too_large", "params.steps"),
    ({}, {"style_model": "nope"}, "model_missing", "params.style_model"),
    ({"style": "tiny"}, {}, "bad_param", "inputs.style"),
])
def test_bad_params_are_errors(client, inputs, params, code, field):
    given = {"image": content()}
    if inputs.get("style") == "ref":
        given["style"] = strokes()
    elif inputs.get("style") == "tiny":
        given["style"] = strokes(8, 8)
    with pytest.raises(EngineClientError) as info:
        client.run("stylize", given, {**FAST, **params})
    assert (info.value.code, info.value.field) == (code, field)


def photo(h=96, w=128) -> np.ndarray:
    """A photo-like scene with edges at several orientations."""
    return content(h=h, w=w)


def sweep(client, param: str, values, **fixed) -> list[np.ndarray]:
    img, ref = photo(), strokes(128, 128)
    return [images.to_float(client.stylize(img, ref, seed=3, resolution=128, **{**fixed, param: v}))
            for v in values]


def test_strength_moves_the_texture_to_the_painting(client):
    ref = images.to_float(strokes(128, 128))
    d = [style_distance(o, ref) for o in sweep(client, "strength", (0.0, 0.5, 1.0))]
    assert d[0] > d[1] > d[2], d


def test_structure_keeps_the_photo(client):
    f = images.to_float(photo())
    d = [content_distance(o, f) for o in sweep(client, "structure", (0.0, 0.5, 1.0))]
    assert d[0] > d[1] > d[2], d


def test_stroke_scale_enlarges_the_strokes(client):
    def fine_detail(a: np.ndarray) -> float:  # high-frequency energy: smaller for larger strokes
        g = a.mean(-1)
        return float(np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]).mean())
    d = [fine_detail(o) for o in sweep(client, "stroke_scale", (0.5, 1.0, 2.0))]
    assert d[0] > d[1] > d[2], d


def test_palette_moves_the_colours(client):
    ref = images.to_float(strokes(128, 128)).reshape(-1, 3)
    outs = sweep(client, "palette", (0.0, 0.5, 1.0))
    d = [float(np.abs(o.reshape(-1, 3).mean(0) - ref.mean(0)).sum()) for o in outs]
    assert d[0] > d[1] > d[2], d
