"""`inpaint --model NAME` with a zoo inpainting checkpoint, through a real engine.

The checkpoints are spandrel's real LaMa architecture (and a tiny real Compact upscaler, to be
refused) built with RANDOM weights and saved as .safetensors into a temporary models folder:
these tests check the plumbing (detection from the file, work area, padding, compositing,
depths, alpha, errors, cancel), not the quality of any fill. A random LaMa paints a near-flat
grey; that it differs from what was under the hole shows the network's output is used.
MI-GAN is not among spandrel 0.4's architectures, so there is nothing of it to build here.
Skipped with the reason when the `zoo` extra (spandrel) is missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import images
from engine.client import Client, EngineClientError

pytestmark = pytest.mark.usefixtures("zoo_extra")
H, W = 48, 64
HOLE = (slice(16, 32), slice(20, 44))


def _save(net: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file
    # float16 halves the file (LaMa has 51 M parameters); loading makes it float32 again
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path))


@pytest.fixture(scope="module")
def zoo_dir(zoo_extra, tmp_path_factory) -> Path:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.LaMa import LaMa
    root = tmp_path_factory.mktemp("zoo_inpaint")
    torch.manual_seed(0)
    _save(LaMa(in_nc=4, out_nc=3), root / "lama.safetensors")  # image + mask in, as the released big-lama
    _save(Compact(num_feat=8, num_conv=2, upscale=2), root / "tiny-x2.safetensors")
    return root


@pytest.fixture(scope="module")
def lama(zoo_dir):
    """The LaMa file read, detected and built as the engine does (engine.zoo.checkpoint.load)."""
    from engine.zoo.checkpoint import load
    return load(zoo_dir / "lama.safetensors")


@pytest.fixture(scope="module")
def client(zoo_dir):
    with Client.in_process(models_dir=zoo_dir, device="cpu", timeout=120) as c:
        yield c


def scene(h: int = H, w: int = W) -> np.ndarray:
    """A smooth gradient with stripes, and a bright white object where the hole will be."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx / w, yy / h, 0.3 + 0.2 * np.sin(xx / 3)], -1)
    rgb[HOLE] = 1.0
    return rgb


def hole_mask(h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w, 1), np.uint8)
    m[HOLE] = 255
    return m


def test_spandrel_detects_the_files_and_welcome_lists_what_they_serve(client, lama):
    zm = lama
    assert zm.model.architecture.id == "LaMa" and type(zm.model).__name__ == "MaskedImageModelDescriptor"
    models = {m["name"]: m for m in client.models()}
    lama = models["lama"]
    assert (lama["kind"], lama["architecture"], lama["purpose"], lama["channels"]) == ("zoo", "LaMa", "inpaint", 3)
    assert lama["serves"] == {"inpaint": ["fill", "remove", "outpaint"]}
    assert models["tiny-x2"]["serves"] == {"restore": ["upscale"]}
    assert "zoo" in client.hello()["ops"]["inpaint"]["params"]["model"]["model_kinds"]


@pytest.mark.parametrize("dtype, alpha", [(np.uint8, False), (np.uint8, True), (np.uint16, False),
                                          (np.uint16, True), (np.float32, True)])
def test_outside_the_mask_stays_bit_exact_and_the_hole_is_the_networks(client, dtype, alpha):
    rgb = scene()
    if alpha:
        a = np.linspace(0.3, 1.0, H * W, dtype=np.float32).reshape(H, W, 1)
        rgb = np.concatenate([rgb, a], -1)
    img = images.from_float(rgb, dtype)
    mask = hole_mask()
    res = client.run("inpaint", {"image": img, "mask": mask}, {"model": "lama", "feather": 2})
    out = res.image
    assert out.shape == img.shape and out.dtype == img.dtype
    near = images.dilate(mask[..., 0] > 0, 2)  # the hole and its 2 px feather
    assert np.array_equal(out[~near], img[~near])
    if alpha:
        assert np.array_equal(out[..., 3], img[..., 3])  # alpha that is not outpainted stays as it was
    white = 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)
    inside = out[HOLE][..., :3].astype(np.float64) / white
    assert inside.mean() < 0.9, inside.mean()  # the white object is gone: the network's grey fill
    meta = res.meta
    assert meta["architecture"] == "LaMa" and meta["deterministic"] is True and meta["model"] == "lama"
    y0, x0, y1, x1 = meta["work_area"]
    assert (y1 - y0) % 8 == 0 and (x1 - x0) % 8 == 0 and meta["network_size"] == [y1 - y0, x1 - x0]


def test_the_fill_is_the_networks_output_in_the_hole_and_the_input_elsewhere(lama, monkeypatch):
    """inpaint_zoo.fill on its own against spandrel's own call, at full size and downscaled."""
    from engine.devices import WORK_SIDE
    from engine.tasks.base import JobContext
    from engine.tasks.inpaint_zoo import fill
    zm = lama
    rgb, regen = scene(40, 56), hole_mask(40, 56)[..., 0] > 0
    meta: dict = {}
    (got,), _ = fill(zm, rgb, regen, 0, 1, JobContext("t"), meta)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    with torch.inference_mode():
        ref = zm.model(x, torch.from_numpy(regen.astype(np.float32))[None, None])[0].permute(1, 2, 0).numpy()
    assert meta["network_size"] == [40, 56]
    assert np.array_equal(got[~regen], rgb[~regen]) and np.allclose(got[regen], ref[regen], atol=1e-5)
    # a work area over the device's budget runs downscaled; only the fill is enlarged back
    monkeypatch.setitem(WORK_SIDE["cpu"], "inpaint_zoo", 28)
    (small,), _ = fill(zm, rgb, regen, 0, 1, JobContext("t"), meta)
    assert meta["network_size"] == [20, 28] and small.shape == rgb.shape
    assert np.array_equal(small[~regen], rgb[~regen]) and np.abs(small[regen] - rgb[regen]).mean() > 0.1


def test_outpainting_transparent_canvas_becomes_opaque(client):
    rgb = scene()
    alpha = np.ones((H, W, 1), np.float32)
    alpha[:, 48:] = 0.0  # the added canvas
    img = images.from_float(np.concatenate([rgb, alpha], -1), np.uint8)
    mask = np.zeros((H, W, 1), np.uint8)
    mask[:, 48:] = 255
    out = client.inpaint(img, mask, model="lama", feather=0)
    assert (out[:, 48:, 3] == 255).all() and np.array_equal(out[:, :48], img[:, :48])


@pytest.mark.parametrize("op, params, field, says", [
    ("inpaint", {"model": "tiny-x2"}, "params.model", "does not inpaint (RealESRGAN Compact, upscale x2; it serves restore"),
    ("inpaint", {"model": "lama", "variants": 2}, "params.variants", "deterministic"),
    ("inpaint", {"model": "lama", "strength": 0.5}, "params.strength", "strength 1"),
    ("inpaint", {"model": "../lama"}, "params.model", "not a path"),
    ("restore", {"model": "lama", "task": "auto"}, "params.model", "does not restore (LaMa, inpaint; it serves inpaint"),
])
def test_what_a_model_cannot_do_is_bad_param(client, op, params, field, says):
    inputs = {"image": images.from_float(scene(), np.uint8), "mask": hole_mask()}
    with pytest.raises(EngineClientError) as info:
        client.run(op, inputs, params)
    assert (info.value.code, info.value.field) == ("bad_param", field) and says in info.value.message, info.value


def test_the_restore_model_still_restores(client):
    img = images.from_float(scene(16, 16), np.uint8)
    assert client.restore(img, task="upscale", scale=2, model="tiny-x2").shape == (32, 32, 3)


def test_cancel_around_the_network_call(client):
    img, mask = images.from_float(scene(), np.uint8), hole_mask()
    jobs, stages = [], []

    def on_progress(event):
        stages.append(event["stage"])
        if event["stage"] == "network":
            jobs[0].cancel()

    jobs.append(client.submit("inpaint", {"image": img, "mask": mask}, {"model": "lama"}, on_progress=on_progress))
    with pytest.raises(EngineClientError) as info:
        jobs[0].result(60)
    assert info.value.code == "cancelled" and "composite" not in stages
    assert client.inpaint(img, mask, model="lama").shape == img.shape  # the engine keeps serving


def test_cli_inpaints_with_the_zoo_model_and_lists_it(zoo_dir, tmp_path, capsys):
    from PIL import Image
    from engine.cli import main
    Image.fromarray(images.from_float(scene(), np.uint8)).save(tmp_path / "in.png")
    Image.fromarray(hole_mask()[..., 0]).save(tmp_path / "mask.png")
    rc = main(["inpaint", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "--model", "lama",
               "--models", str(zoo_dir), "--quiet", "-o", str(tmp_path / "out.png")])
    assert rc == 0, capsys.readouterr().err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (H, W, 3) and out[HOLE].mean() < 0.9 * 255
    capsys.readouterr()
    assert main(["models", "--models", str(zoo_dir)]) == 0
    assert "lama: zoo, LaMa inpaint x1, 50975875 parameters (inpaint: fill, remove, outpaint)" in capsys.readouterr().out
    assert main(["models", "info", "lama", "--models", str(zoo_dir)]) == 0
    assert '"inpaint": [\n      "fill",' in capsys.readouterr().out
