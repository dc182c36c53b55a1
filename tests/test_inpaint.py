"""`inpaint` through the real engine on loopback, with the tiny trained test model."""
from __future__ import annotations

import numpy as np
import pytest

from engine import images
from engine.client import Client, EngineClientError


@pytest.fixture(scope="module")
def client(tiny_models_dir):
    with Client.in_process(models_dir=tiny_models_dir, device="cpu", timeout=60) as c:
        yield c


def scene(h=48, w=64, channels=3, dtype=np.uint8):
    """A smooth gradient with a few stripes: something a fill can be right or wrong about."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    rgb = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 3)], -1)
    if channels == 4:
        rgb = np.concatenate([rgb, np.full((h, w, 1), 0.75, np.float32)], -1)
    return images.from_float(rgb, dtype) if dtype != np.float32 else rgb.astype(np.float32)


def box_mask(h=48, w=64, y=(16, 30), x=(20, 40)):
    m = np.zeros((h, w, 1), np.uint8)
    m[y[0]:y[1], x[0]:x[1]] = 255
    return m


FAST = {"steps": 4, "seed": 1}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [3, 4])
def test_shape_depth_and_untouched_pixels(client, dtype, channels):
    img, mask = scene(channels=channels, dtype=dtype), box_mask()
    res = client.run("inpaint", {"image": img, "mask": mask}, FAST)
    out = res.image
    assert out.shape == img.shape and out.dtype == img.dtype
    outside = images.feather_mask(mask, images.auto_feather(mask)) == 0
    assert np.array_equal(out[outside], img[outside])
    assert not np.array_equal(out[mask[..., 0] > 0], img[mask[..., 0] > 0])
    if channels == 4:
        assert np.array_equal(out[..., 3][mask[..., 0] == 0], img[..., 3][mask[..., 0] == 0])
    assert res.meta["seed"] == 1 and res.meta["timings"]["total"] > 0


def test_hard_edge_leaves_everything_outside_the_mask(client):
    img, mask = scene(), box_mask()
    out = client.inpaint(img, mask, feather=0, **FAST)
    assert np.array_equal(out[mask[..., 0] == 0], img[mask[..., 0] == 0])


def test_seed_is_deterministic_and_variants_differ(client):
    img, mask = scene(), box_mask()
    a = client.run("inpaint", {"image": img, "mask": mask}, {**FAST, "variants": 2})
    b = client.run("inpaint", {"image": img, "mask": mask}, {**FAST, "variants": 2})
    assert set(a.outputs) == {"image", "image_1"} and a.meta["variants"] == 2
    assert np.array_equal(a.outputs["image"], b.outputs["image"])
    assert np.array_equal(a.outputs["image_1"], b.outputs["image_1"])
    assert not np.array_equal(a.outputs["image"], a.outputs["image_1"])
    assert a.meta["start"] == "tension"  # a thin hole: the first variant is the refined fill, whatever the seed
    c = client.run("inpaint", {"image": img, "mask": mask}, {**FAST, "variants": 2, "seed": 2})
    assert np.array_equal(a.outputs["image"], c.outputs["image"])
    assert not np.array_equal(a.outputs["image_1"], c.outputs["image_1"])


def test_progress_stages_and_previews(client):
    events = []
    client.run("inpaint", {"image": scene(), "mask": box_mask()}, {"steps": 8, "seed": 0}, on_progress=events.append)
    stages = [e["stage"] for e in events]
    assert "diffusion" in stages and stages[-1] == "composite"
    steps = [e["step"] for e in events if e["stage"] != "start"]
    assert steps == sorted(steps) and events[-1]["step"] == events[-1]["total"]
    previews = [e["preview"] for e in events if "preview" in e]
    assert previews and all(p.dtype == np.uint8 and max(p.shape[:2]) <= 128 for p in previews)


def test_refine_strength_sets_how_far_the_result_departs(client):
    img, mask = scene(), box_mask()
    hole = mask[..., 0] > 0
    change = [np.abs(client.inpaint(img, mask, strength=s, steps=8, seed=0).astype(float)[hole] - img[hole]).mean()
              for s in (0.1, 0.7)]
    assert change[0] < change[1]
    assert change[0] < 8  # a light refine keeps what is there


def test_large_refine_is_downscaled_then_detailed(client, monkeypatch):
    monkeypatch.setenv("SFUMATO_WORK_CAP", "32")
    img, mask = scene(64, 96), box_mask(64, 96, (10, 54), (20, 80))
    res = client.run("inpaint", {"image": img, "mask": mask}, {"steps": 3, "seed": 0, "strength": 0.6})
    assert max(res.meta["work_size"]) <= 32 and res.meta["timings"]["detail"] >= 0
    assert res.image.shape == img.shape


def texture(h=96, w=96):
    """Stripes and a checkerboard: a large hole in it has one right answer that a smear misses."""
    yy, xx = np.mgrid[:h, :w]
    rgb = np.stack([(xx // 6 + yy // 6) % 2, 0.5 + 0.4 * np.sin(xx / 2.0), 0.3 + 0 * xx], -1)
    return images.from_float(rgb.astype(np.float32), np.uint8)


def test_large_hole_is_synthesised_at_full_resolution_with_texture(client, monkeypatch):
    monkeypatch.setenv("SFUMATO_WORK_CAP", "32")
    img, mask = texture(), box_mask(96, 96, (24, 72), (24, 72))
    res = client.run("inpaint", {"image": img, "mask": mask}, {"steps": 4, "seed": 0, "variants": 2})
    assert res.meta["start"] == "synthesis" and res.meta["work_size"] == [96, 96]
    hole = mask[..., 0] > 0
    for out in (res.outputs["image"], res.outputs["image_1"]):
        err = np.abs(out[hole].astype(float) - img[hole]).mean()
        assert err < 0.1 * np.abs(img[~hole].astype(float).mean(axis=0) - img[hole]).mean()
        assert out[hole].astype(float).std() > 0.8 * img.astype(float)[hole].std()  # texture, not a smear


def test_source_mask_and_remove_keep_patches_out_of_excluded_areas(client):
    """Left: noise (every pixel unique); right: the checkerboard. With a source mask over the
    right, the patch fill copies only the right's pixels. The seam blend may shift a fill by a
    smooth offset where a channel steps at the border, so membership is read on the blue
    channel, which is constant over the right (no step, no offset) and random in the noise."""
    rng = np.random.default_rng(0)
    img = texture(80, 96)
    img[:, :40] = rng.integers(0, 256, (80, 40, 3), dtype=np.uint8)
    mask = box_mask(80, 96, (25, 55), (30, 60))
    source = np.zeros((80, 96, 1), np.uint8)
    source[:, 62:] = 255
    out = client.run("inpaint", {"image": img, "mask": mask, "source": source},
                     {"method": "patch", "seed": 0, "feather": 0}).image
    hole = mask[..., 0] > 0
    allowed = set(img[source[..., 0] > 0][:, 2].tolist())
    assert len(allowed) == 1 and set(out[hole][:, 2].tolist()) <= allowed
    res = client.run("inpaint", {"image": img, "mask": mask}, {"method": "patch", "seed": 0, "remove": True, "feather": 0})
    grown = res.image[..., :3] != img  # removal takes a few pixels beyond the mask
    assert grown.any(axis=2)[~hole].any()
    with pytest.raises(EngineClientError) as info:
        client.run("inpaint", {"image": img, "mask": mask, "source": source[:40]}, {"method": "patch"})
    assert info.value.field == "inputs.source"


def test_outpainting_fills_transparent_canvas(client):
    img = scene(channels=4)
    img[:, 44:, :] = 0  # added, fully transparent canvas on the right
    mask = np.zeros(img.shape[:2] + (1,), np.uint8)
    mask[:, 44:] = 255
    out = client.inpaint(img, mask, **FAST)
    assert np.all(out[:, 44:, 3] == 255)
    assert out[:, 44:, :3].mean() > 20  # not left black
    assert np.array_equal(out[:, :30], img[:, :30])


def test_empty_mask_returns_the_image(client):
    img = scene(dtype=np.uint16)
    out = client.inpaint(img, np.zeros(img.shape[:2] + (1,), np.uint8), **FAST)
    assert np.array_equal(out, img)


def test_patch_method_needs_no_model_and_beats_the_mean_colour(client):
    img, mask = scene(64, 64), box_mask(64, 64, (20, 40), (22, 42))
    out = client.inpaint(img, mask, method="patch", seed=0, feather=0).astype(float)
    hole = mask[..., 0] > 0
    mean_fill = img[~hole].mean(axis=0)
    err_patch = ((out[hole] - img[hole]) ** 2).mean()
    err_mean = ((mean_fill - img[hole]) ** 2).mean()
    assert err_patch < 0.5 * err_mean


def test_cancel_mid_operation(client):
    img, mask = scene(96, 128), box_mask(96, 128, (4, 92), (4, 124))  # a refine: a long sampler run
    jobs, stages = [], []

    def on_progress(event):  # runs in the thread waiting on the result
        stages.append(event["stage"])
        if event["stage"] == "diffusion" and len(stages) < 100:
            jobs[0].cancel()

    jobs.append(client.submit("inpaint", {"image": img, "mask": mask}, {"steps": 200, "seed": 0, "strength": 0.9},
                              on_progress=on_progress))
    with pytest.raises(EngineClientError) as info:
        jobs[0].result(60)
    assert info.value.code == "cancelled"
    assert stages.count("diffusion") < 50 and "composite" not in stages
    assert client.inpaint(img, mask, **FAST).shape == img.shape  # the engine keeps serving


@pytest.mark.parametrize("params, code, field", [
    ({"strength": 2.0}, "bad_param", "params.strength"),
    ({"method": "magic"}, "bad_param", "params.method"),
    ({"sampler": "ddim"}, "bad_param", "params.sampler"),
    ({"variants": 50}, "too_large", "params.variants"),
    ({"steps": 0}, "bad_param", "params.steps"),
    ({"model": "nope"}, "model_missing", "params.model"),
    ({"colour": 1}, "bad_param", "params.colour"),
])
def test_bad_params_are_errors(client, params, code, field):
    with pytest.raises(EngineClientError) as info:
        client.run("inpaint", {"image": scene(), "mask": box_mask()}, params)
    assert (info.value.code, info.value.field) == (code, field)


def test_bad_inputs_are_errors(client):
    with pytest.raises(EngineClientError) as info:
        client.run("inpaint", {"image": scene()}, {})
    assert info.value.code == "bad_param" and info.value.field == "inputs.mask"
    with pytest.raises(EngineClientError) as info:
        client.run("inpaint", {"image": scene(), "mask": box_mask(40, 64)}, {})
    assert info.value.code == "bad_param" and info.value.field == "inputs.mask"


def test_plan_keeps_strokes_on_the_thin_path_and_synthesises_deep_holes():
    """Thin holes are filled from their border at full size; deep and object-shaped ones by synthesis."""
    from engine.diffusion.schedule import EDM
    from engine.tasks.inpaint import THIN_DEPTH, plan

    stroke = plan(320, 480, 30, THIN_DEPTH, 1.0, 20, cap=256, stride=8, sigmas=EDM)  # wide strokes that cross
    assert stroke.work == (320, 480) and stroke.start == "tension" and not stroke.detail and not stroke.noise
    hairline = plan(320, 480, 2, 2, 1.0, 20, cap=256, stride=8, sigmas=EDM, hairline=True)
    assert hairline.start == "tension" and hairline.sigma_start < stroke.sigma_start  # the spline is nearly right
    crossing = plan(320, 480, 45, THIN_DEPTH + 2, 1.0, 20, cap=256, stride=8, sigmas=EDM, spread=480)  # strokes over a photo
    assert crossing.work == (320, 480) and crossing.start == "tension"
    obj = plan(320, 320, 32, THIN_DEPTH + 2, 1.0, 20, cap=256, stride=8, sigmas=EDM, spread=64)  # an object, wide context
    assert obj.work == (320, 320) and obj.start == "synthesis"  # exemplar completion at full resolution
    deep = plan(320, 480, 60, 2 * THIN_DEPTH, 1.0, 20, cap=256, stride=8, sigmas=EDM)
    assert deep.work == (320, 480) and deep.start == "synthesis"
    box = plan(128, 128, 32, THIN_DEPTH + 0.25, 1.0, 20, cap=256, stride=8, sigmas=EDM)  # a 64 px box
    assert box.start == "synthesis"
    assert plan(320, 480, 3, 2, 0.5, 20, cap=256, stride=8, sigmas=EDM).start == "original"  # refine: SDEdit
    blob = plan(320, 480, 30, THIN_DEPTH - 4, 1.0, 20, cap=256, stride=8, sigmas=EDM, blob=True)  # an object-shaped hole
    assert blob.start == "synthesis"  # not the thin path
